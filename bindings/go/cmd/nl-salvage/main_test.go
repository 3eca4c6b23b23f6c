package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// fill writes ten nodes to a persistent fleet in dir and closes it.
func fill(t *testing.T, dir string) {
	t.Helper()
	f, err := lifecycle.New(lifecycle.Options{DataDir: dir, ManualClockStart: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), CompactAfterRecords: lifecycle.OffCount})
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 10; i++ {
		if _, err := f.Register(lifecycle.NodeSpec{ID: "n" + string(rune('0'+i)), Origin: lifecycle.OriginCloud}); err != nil {
			t.Fatal(err)
		}
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestAnUndamagedDirectoryIsCopiedWithNothingLost(t *testing.T) {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "salvaged")
	fill(t, dir)
	var stdout, stderr bytes.Buffer
	if code := run([]string{dir, out}, &stdout, &stderr); code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	f, err := lifecycle.New(lifecycle.Options{DataDir: out})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if nodes, err := f.Nodes(); err != nil || len(nodes) != 10 {
		t.Fatalf("salvaged fleet: %d nodes, %v", len(nodes), err)
	}
}

// One flipped byte in the middle of the journal: New refuses the directory as corrupt, the
// command recovers the other nine mutations, reports the lost one, exits 1 and leaves the
// damaged directory as it was.
func TestADamagedJournalIsSalvagedAndTheLossReported(t *testing.T) {
	dir, out := t.TempDir(), filepath.Join(t.TempDir(), "salvaged")
	fill(t, dir)
	journals, _ := filepath.Glob(filepath.Join(dir, "journal-*.nlj"))
	if len(journals) != 1 {
		t.Fatalf("journals: %v", journals)
	}
	b, err := os.ReadFile(journals[0])
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(journals[0], b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := lifecycle.New(lifecycle.Options{DataDir: dir}); !errors.Is(err, lifecycle.ErrCorrupt) {
		t.Fatalf("New on the damaged directory: %v, want ErrCorrupt", err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{dir, out}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr.String())
	}
	var report lifecycle.SalvageReport
	if err := json.Unmarshal(stdout.Bytes(), &report); err != nil {
		t.Fatal(err)
	}
	if len(report.LostSequenceRanges) != 1 || report.LostSequenceRanges[0][0] != report.LostSequenceRanges[0][1] || report.NodesRecovered != 9 {
		t.Fatalf("report: %+v", report)
	}
	// The report names the caller's directories, on either backend.
	if report.OutputDir != out {
		t.Fatalf("output_dir = %q, want %q", report.OutputDir, out)
	}
	if len(report.FilesRead) == 0 {
		t.Fatal("files_read is empty")
	}
	for _, f := range report.FilesRead {
		if strings.ContainsAny(f, `/\`) || !strings.HasPrefix(f, "journal-") && !strings.HasPrefix(f, "snapshot-") {
			t.Fatalf("files_read names %q: want a file name of the directory", f)
		}
	}
	if !strings.Contains(stderr.String(), "data was lost") {
		t.Fatalf("stderr: %s", stderr.String())
	}
	after, _ := os.ReadFile(journals[0])
	if !bytes.Equal(after, b) {
		t.Fatal("salvage wrote the damaged directory")
	}
	f, err := lifecycle.New(lifecycle.Options{DataDir: out})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if nodes, _ := f.Nodes(); len(nodes) != 9 {
		t.Fatalf("salvaged fleet: %d nodes, want 9", len(nodes))
	}
}

func TestUsageAndFailuresExit2(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := run([]string{"only-one"}, &stdout, &stderr); code != 2 {
		t.Fatalf("exit %d", code)
	}
	if code := run([]string{filepath.Join(t.TempDir(), "missing"), t.TempDir()}, &stdout, &stderr); code != 2 {
		t.Fatalf("salvage of a missing directory: exit %d", code)
	}
}

// A target inside the damaged directory is refused, however it is spelled, on both backends,
// and nothing is written there.
func TestATargetInsideTheDamagedDirectoryIsRefused(t *testing.T) {
	dir := t.TempDir()
	fill(t, dir)
	before, _ := os.ReadDir(dir)
	link := filepath.Join(t.TempDir(), "link")
	if err := os.Symlink(dir, link); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{dir, filepath.Join(dir, "out"), filepath.Join(dir, "a", "..", "out"), filepath.Join(link, "out")} {
		_, err := lifecycle.Salvage(dir, target)
		if !errors.Is(err, lifecycle.ErrInvalidArgument) {
			t.Fatalf("%s: want ErrInvalidArgument, got %v", target, err)
		}
		want := "lifecycle: invalid argument: the salvage target " + target + " is inside the damaged directory " + dir +
			": salvage never writes the directory it reads; choose a target outside it"
		if err.Error() != want {
			t.Fatalf("%s:\ngot  %v\nwant %s", target, err, want)
		}
	}
	after, _ := os.ReadDir(dir)
	if len(after) != len(before) {
		t.Fatalf("the damaged directory changed: %d entries, then %d", len(before), len(after))
	}
}
