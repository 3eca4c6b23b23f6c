package lifecycle

import (
	"errors"
	"testing"
	"time"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

func newFleet(t testing.TB) *Fleet {
	t.Helper()
	f, err := New(Options{ManualClockStart: t0})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// readyNode registers a cloud node and completes cloud-init.
func readyNode(t testing.TB, f *Fleet, id string) {
	t.Helper()
	must(t, f.RegisterCloudNode(id, 8192))
	_, err := f.Transition(id, StateInitializing, "cloud_init_started")
	must(t, err)
	_, err = f.Transition(id, StateReady, "cloud_init_completed")
	must(t, err)
}

func lastDecommissionEntry(t testing.TB, f *Fleet, node string) AuditEntry {
	t.Helper()
	entries, err := f.AuditByNode(node, 100)
	must(t, err)
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Action == ActionNodeDecommission {
			return entries[i]
		}
	}
	t.Fatalf("no node_decommission entry for %s", node)
	return AuditEntry{}
}

func asError(t testing.TB, err error) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want *lifecycle.Error, got %T %v", err, err)
	}
	return e
}
