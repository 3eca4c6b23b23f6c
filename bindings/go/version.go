package lifecycle

import (
	"fmt"
	"sync"
)

// BindingVersion is this package's version. The package and the library are released together
// under one version number, and the package refuses to run on a library of another version:
// the boundary between them is not a stable ABI across versions, only within one.
const BindingVersion = "0.3.0"

// CodeLibraryMismatch is never returned by the library: the package returns it when the library
// it runs on is of another version than BindingVersion, which can only happen with
// -tags nl_system and an installed library from another release. (99 is reserved for the
// bindings in the C header's nl_result.)
const CodeLibraryMismatch Code = 99

// ErrLibraryMismatch matches the error New returns on a library of another version.
var ErrLibraryMismatch = &Error{Code: CodeLibraryMismatch}

// Version is the version of the library the package runs on and the fingerprint of the exact
// source it was built from (the SHA-256 the build computes over the crate's sources; see
// docs/DISTRIBUTION.md for how a shipped library is checked against it).
func Version() (version, fingerprint string) {
	i := library()
	return i.version, i.fingerprint
}

// library asks the library once (on the wasm backend that instantiates the module).
var library = sync.OnceValue(queryLibrary)

// checkLibraryVersion refuses a library of another version before any fleet exists.
func checkLibraryVersion() error {
	i := library()
	if i.err != nil {
		return i.err
	}
	if v := i.version; v != BindingVersion {
		return &Error{Code: CodeLibraryMismatch, Message: fmt.Sprintf(
			"library version %q does not match this package's version %s: install the library "+
				"of the same release (or build without -tags nl_system to use the library shipped "+
				"with the module)", v, BindingVersion)}
	}
	return nil
}
