package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
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

// smallDisk mounts a tmpfs of the given size at a fresh directory: a disk that really fills
// up. It needs root (CAP_SYS_ADMIN); elsewhere the test is skipped, visibly.
func smallDisk(t *testing.T, bytes int) string {
	t.Helper()
	dir := t.TempDir()
	if err := mountTmpfs(dir, bytes); err != nil {
		t.Skipf("SKIPPED: cannot mount a small tmpfs here (%v); run as root to test a full disk", err)
	}
	t.Cleanup(func() { _ = unmount(dir) })
	return dir
}

// The disk fills up mid-write, space is freed, more writes are acknowledged: at reopen the
// directory holds exactly the acknowledged mutations (once, a journal the process created
// itself kept a hole of zeros where the failed write had been, and reopen said corrupt). The
// error says "no space left" with the native text on both backends.
func TestAFullDiskLosesNothingOnceSpaceIsFreed(t *testing.T) {
	disk := smallDisk(t, 256<<10)
	dir := filepath.Join(disk, "fleet")
	filler := filepath.Join(disk, "filler")
	must(t, os.WriteFile(filler, make([]byte, 64<<10), 0o600))
	opts := Options{ManualClockStart: t0, DataDir: dir}
	f, err := New(opts)
	must(t, err)
	// Closed before the disk is unmounted, whatever happens.
	t.Cleanup(func() { _ = f.Close() })
	label := strings.Repeat("x", 1000)
	var acknowledged []string
	register := func(i int) error {
		id := fmt.Sprintf("node-%04d", i)
		_, err := f.Register(NodeSpec{ID: id, Origin: OriginCloud, TotalRAMMB: 8192,
			Labels: map[string]string{"padding": label}})
		if err == nil {
			acknowledged = append(acknowledged, id)
		}
		return err
	}
	i := 0
	for ; ; i++ {
		err := register(i)
		if err == nil {
			continue
		}
		if !errors.Is(err, ErrStorage) {
			t.Fatalf("register %d on a full disk: want ErrStorage, got %v", i, err)
		}
		if !strings.Contains(err.Error(), "No space left on device (os error 28)") {
			t.Fatalf("a full disk must say so, as the native library does: %v", err)
		}
		break
	}
	if len(acknowledged) < 10 {
		t.Fatalf("the disk filled after %d registrations", len(acknowledged))
	}
	// A refused write changed nothing, and the fleet goes on once there is room again.
	must(t, os.Remove(filler))
	for j := 0; j < 10; j++ {
		must(t, register(i+1+j))
	}
	must(t, f.Close())

	f, err = New(opts)
	if err != nil {
		t.Fatalf("reopen after the disk was full: %v", err)
	}
	t.Cleanup(func() { _ = f.Close() })
	nodes, err := f.Nodes()
	must(t, err)
	var got []string
	for _, n := range nodes {
		got = append(got, n.ID)
	}
	if strings.Join(got, ",") != strings.Join(acknowledged, ",") {
		t.Fatalf("reopened with %d nodes, %d were acknowledged:\ngot  %v\nwant %v", len(got), len(acknowledged), got, acknowledged)
	}
}
