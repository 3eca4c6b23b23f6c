package lifecycle

import (
	"errors"
	"testing"
	"time"
)

func TestPersistentFleetSurvivesReopen(t *testing.T) {
	dir := t.TempDir()
	opts := Options{ManualClockStart: t0, DataDir: dir, SyncEvery: 16, SyncMaxDelay: 100 * time.Millisecond}
	f, err := New(opts)
	must(t, err)
	readyNode(t, f, "n1")
	_, err = f.AddContainer("n1", "mc-1", 1024)
	must(t, err)
	must(t, f.Advance(time.Hour))
	readyNode(t, f, "n2")
	must(t, f.Advance(time.Hour))
	ticket, err := f.BeginDecommission("n2", "reactive_policy")
	must(t, err)
	if _, err := New(opts); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open: %v", err)
	}
	info, err := f.Storage()
	must(t, err)
	if info.Status == nil || info.Status.DataDir != dir || info.OpenReport == nil || info.OpenReport.SnapshotFound {
		t.Fatalf("storage: %+v", info)
	}
	must(t, f.Close())

	opts.ManualClockStart = t0.Add(2 * time.Hour)
	f, err = New(opts)
	must(t, err)
	defer f.Close()
	info, err = f.Storage()
	must(t, err)
	if info.OpenReport.NodesRestored != 2 || !info.OpenReport.SnapshotFound {
		t.Fatalf("open report: %+v", info.OpenReport)
	}
	n1, err := f.Node("n1")
	must(t, err)
	if n1.State != StateActive || n1.Containers["mc-1"] != 1024 || !n1.ContainerSyncPending {
		t.Fatalf("n1 restored: %+v", n1)
	}
	n2, _ := f.Node("n2")
	if n2.State != StateDraining || n2.Decommission == nil || n2.Decommission.Ticket.ID != ticket.ID {
		t.Fatalf("n2 restored: %+v", n2)
	}
	must(t, f.CompleteDecommission(ticket))
	must(t, f.Sync())
	must(t, f.Compact())

	if _, err := New(Options{DataDir: "/dev/null/nope"}); !errors.Is(err, ErrStorage) {
		t.Fatalf("unusable dir: %v", err)
	}
	mem, err := New(Options{})
	must(t, err)
	defer mem.Close()
	info, err = mem.Storage()
	must(t, err)
	if info.OpenReport != nil || info.Status != nil {
		t.Fatalf("in-memory storage info: %+v", info)
	}
}
