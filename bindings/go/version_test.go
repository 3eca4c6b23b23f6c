package lifecycle

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// The library this test binary runs on — the freshly built one with -tags nl_dev, the one
// shipped in lib/ or wasm/ without — is of this package's version and was built from the
// source of the checkout the test runs in. Run against the shipped artifacts (make
// dist-check), this is the provenance proof: the embedded fingerprint is the SHA-256 the
// build computed over the exact files it compiled.
func TestTheLibraryIsThisVersionBuiltFromThisSource(t *testing.T) {
	version, fingerprint := Version()
	if version != BindingVersion {
		t.Fatalf("library %q, package %s", version, BindingVersion)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(fingerprint) {
		t.Fatalf("fingerprint %q is not a hex SHA-256", fingerprint)
	}
	root := filepath.Join("..", "..")
	if _, err := os.Stat(filepath.Join(root, "Cargo.toml")); err != nil {
		t.Skip("not inside the repository (no crate beside the package)")
	}
	if want := sourceFingerprint(t, root); fingerprint != want {
		t.Fatalf("the %s library was built from other source: fingerprint %s, the tree's %s "+
			"(inside the repository: make go-lib go-wasm; for the shipped artifacts: scripts/build-dist)",
			BackendName, fingerprint, want)
	}
}

// sourceFingerprint is build.rs's fingerprint (and scripts/source-fingerprint's): SHA-256 over
// the `sha256sum` lines of Cargo.toml, Cargo.lock, build.rs, cbindgen.toml and src/**/*.rs,
// sorted by path.
func sourceFingerprint(t *testing.T, root string) string {
	t.Helper()
	files := []string{"Cargo.toml", "Cargo.lock", "build.rs", "cbindgen.toml"}
	err := filepath.WalkDir(filepath.Join(root, "src"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(p, ".rs") {
			rel, _ := filepath.Rel(root, p)
			files = append(files, filepath.ToSlash(rel))
		}
		return err
	})
	must(t, err)
	sort.Strings(files)
	var listing strings.Builder
	for _, f := range files {
		data, err := os.ReadFile(filepath.Join(root, f))
		must(t, err)
		fmt.Fprintf(&listing, "%x  %s\n", sha256.Sum256(data), f)
	}
	return fmt.Sprintf("%x", sha256.Sum256([]byte(listing.String())))
}

// The check itself: a library of another version is refused with a typed error that says what
// to do, before any fleet exists.
func TestALibraryOfAnotherVersionIsRefused(t *testing.T) {
	saved := library
	t.Cleanup(func() { library = saved })
	library = func() libraryInfo { return libraryInfo{version: "0.1.0"} }
	_, err := New(Options{})
	if !errors.Is(err, ErrLibraryMismatch) || !strings.Contains(err.Error(), `"0.1.0"`) ||
		!strings.Contains(err.Error(), BindingVersion) {
		t.Fatalf("New on a 0.1.0 library: %v", err)
	}
}
