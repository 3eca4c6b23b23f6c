package lifecycle

import (
	"errors"
	"fmt"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 64 goroutines run 1 million mixed operations (NL_STRESS_OPS scales it) on one fleet under
// the race detector, with a watchdog against deadlock. At the end: no node with containers,
// reservations or holds is draining or decommissioned, and the audit accounting balances.
func TestStressOneMillionOperations(t *testing.T) {
	total := 1_000_000
	if v, err := strconv.Atoi(os.Getenv("NL_STRESS_OPS")); err == nil && v > 0 {
		total = v
	}
	if testing.Short() {
		total = 20_000
	}
	const goroutines = 64
	const nodes = 48
	f, err := New(Options{ManualClockStart: t0, ReadyGrace: time.Minute, IdleGrace: time.Minute, PostSyncGrace: time.Minute, AuditCapacity: 4096})
	must(t, err)
	defer f.Close()
	for i := 0; i < nodes; i++ {
		readyNode(t, f, fmt.Sprintf("n%02d", i))
	}
	must(t, f.RegisterSystemNode("local-node", 0))
	must(t, f.Advance(time.Hour))

	var done, begun, decommissionEntries atomic.Int64
	var wg sync.WaitGroup
	per := total / goroutines
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			seed := uint64(g)*0x9E3779B97F4A7C15 | 1
			rnd := func(n int) int {
				seed ^= seed << 13
				seed ^= seed >> 7
				seed ^= seed << 17
				return int(seed % uint64(n))
			}
			for i := 0; i < per; i++ {
				done.Add(1)
				node := fmt.Sprintf("n%02d", rnd(nodes))
				cid := fmt.Sprintf("c%d", rnd(4))
				switch rnd(14) {
				case 0, 1:
					_, _ = f.AddContainer(node, cid, 16)
				case 2, 3:
					_, _ = f.RemoveContainer(node, cid)
				case 4:
					if _, err := f.Reserve(node, cid, 8); err == nil {
						_, _ = f.ConfirmReservation(node, cid)
					}
				case 5:
					_, _ = f.ReleaseReservation(node, cid)
				case 6:
					_, _ = f.PlaceHold(node, "h", "")
				case 7:
					_, _ = f.ReleaseHold(node, "h")
				case 8, 9:
					_, _ = f.Evaluate(node)
				case 10:
					_ = f.Advance(time.Duration(rnd(30)) * time.Second)
				case 11:
					_, _ = f.ReportHealth(node, rnd(10) != 0)
				default:
					// node_decommission entries come from every begin (rejected or started), from
					// fail, and from a cancel on an unhealthy node (which never left its state; a
					// cancel on a draining node records a lifecycle transition instead).
					ticket, err := f.BeginDecommission(node, "reactive_policy")
					if err != nil {
						if !errors.Is(err, ErrRejected) {
							t.Errorf("begin: %v", err)
						}
						decommissionEntries.Add(1)
						continue
					}
					begun.Add(1)
					decommissionEntries.Add(1)
					if rnd(3) == 0 && f.FailDecommission(ticket, errors.New("flaky provider")) == nil {
						decommissionEntries.Add(1)
					}
					if st, err := f.CancelDecommission(ticket, "retry later"); err != nil {
						t.Errorf("cancel: %v", err)
					} else if st == StateUnhealthy {
						decommissionEntries.Add(1)
					}
				}
			}
		}(g)
	}
	finished := make(chan struct{})
	go func() { wg.Wait(); close(finished) }()
	select {
	case <-finished:
	case <-time.After(10 * time.Minute):
		t.Fatalf("watchdog: deadlock or livelock, %d of %d operations done", done.Load(), per*goroutines)
	}

	all, err := f.Nodes()
	must(t, err)
	for _, n := range all {
		occupied := len(n.Containers)+len(n.Claims)+len(n.Holds) > 0
		if occupied && (n.State == StateDraining || n.State == StateDecommissioned) {
			t.Errorf("%s is %s while occupied", n.ID, n.State)
		}
		if n.Decommission != nil {
			t.Errorf("%s still holds ticket %d: every begin was resolved", n.ID, n.Decommission.Ticket.ID)
		}
	}
	stats, err := f.AuditStats()
	must(t, err)
	if stats.Retained+stats.Evicted != stats.TotalRecorded {
		t.Errorf("audit accounting: %+v", stats)
	}
	if got, want := stats.ByAction[ActionNodeDecommission], uint64(decommissionEntries.Load()); got != want {
		t.Errorf("node_decommission entries %d, outcomes %d", got, want)
	}
	if begun.Load() == 0 {
		t.Error("the mix never began a decommission")
	}
	if done.Load() != int64(per*goroutines) {
		t.Errorf("ran %d of %d operations", done.Load(), per*goroutines)
	}
	t.Logf("%d operations, %d decommissions begun, %d audit entries recorded", done.Load(), begun.Load(), stats.TotalRecorded)
}
