package lifecycle

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// 32 goroutines mix container events, reservations, holds, evaluations and the decommission
// protocol on one fleet. At the end no node with containers, reservations or holds is draining
// or decommissioned, and every decommission outcome has exactly one audit entry.
func TestConcurrentMixedOperationsKeepInvariants(t *testing.T) {
	const (
		goroutines = 32
		nodes      = 16
		opsEach    = 400
	)
	f, err := New(Options{ManualClockStart: t0, IdleGrace: time.Minute, ReadyGrace: time.Minute, AuditCapacity: 100_000})
	must(t, err)
	defer f.Close()
	for i := 0; i < nodes; i++ {
		readyNode(t, f, fmt.Sprintf("n%d", i))
	}
	must(t, f.Advance(time.Hour))

	var rejectedOrFailed, begun, completed, failed atomic.Int64
	var wg sync.WaitGroup
	for g := 0; g < goroutines; g++ {
		wg.Add(1)
		go func(g int) {
			defer wg.Done()
			for i := 0; i < opsEach; i++ {
				node := fmt.Sprintf("n%d", (g*7+i)%nodes)
				cid := fmt.Sprintf("c%d-%d", g, i%5)
				switch (g + i) % 8 {
				case 0:
					_, _ = f.AddContainer(node, cid, 64)
				case 1:
					_, _ = f.RemoveContainer(node, cid)
				case 2:
					if _, err := f.Reserve(node, cid, 32); err == nil {
						_, _ = f.ReleaseReservation(node, cid)
					}
				case 3:
					if _, err := f.PlaceHold(node, "h", ""); err == nil {
						_, _ = f.ReleaseHold(node, "h")
					}
				case 4:
					_, _ = f.Evaluate(node)
				case 5:
					_ = f.Advance(time.Second)
				default:
					ticket, err := f.BeginDecommission(node, "reactive_policy")
					switch {
					case err == nil:
						begun.Add(1) // the begin's own success entry
						if i%3 == 0 {
							if f.FailDecommission(ticket, errors.New("flaky provider")) == nil {
								failed.Add(1)
							}
							if st, err := f.CancelDecommission(ticket, "retry later"); err == nil && st == StateUnhealthy {
								failed.Add(1) // an unhealthy node never drained: its cancel is a node_decommission entry
							}
						} else if f.CompleteDecommission(ticket) == nil {
							completed.Add(1)
						}
					case errors.Is(err, ErrRejected) || errors.Is(err, ErrNodeNotFound):
						rejectedOrFailed.Add(1)
					default:
						t.Errorf("unexpected error: %v", err)
					}
				}
			}
		}(g)
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		t.Fatal("deadlock: goroutines did not finish within 2 minutes")
	}

	all, err := f.Nodes()
	must(t, err)
	for _, n := range all {
		occupied := len(n.Containers) > 0 || len(n.Claims) > 0 || len(n.Holds) > 0
		if occupied && (n.State == StateDraining || n.State == StateDecommissioned) {
			t.Errorf("node %s is %s while occupied: %+v", n.ID, n.State, n)
		}
	}
	stats, err := f.AuditStats()
	must(t, err)
	wantDecommissionEntries := uint64(rejectedOrFailed.Load() + begun.Load() + completed.Load() + failed.Load())
	if stats.ByAction[ActionNodeDecommission] != wantDecommissionEntries {
		t.Errorf("node_decommission entries %d, outcomes %d", stats.ByAction[ActionNodeDecommission], wantDecommissionEntries)
	}
	if stats.Retained+stats.Evicted != stats.TotalRecorded {
		t.Errorf("audit accounting: %+v", stats)
	}
	if completed.Load() == 0 || rejectedOrFailed.Load() == 0 {
		t.Errorf("the mix did not exercise both outcomes: completed=%d rejected=%d", completed.Load(), rejectedOrFailed.Load())
	}
}

// Close while other goroutines are mid-call: they finish or get ErrClosed; nothing crashes.
func TestCloseDuringConcurrentUse(t *testing.T) {
	f, err := New(Options{ManualClockStart: t0})
	must(t, err)
	readyNode(t, f, "n1")
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				if _, err := f.Evaluate("n1"); err != nil && !errors.Is(err, ErrClosed) {
					t.Errorf("unexpected: %v", err)
					return
				}
			}
		}()
	}
	time.Sleep(time.Millisecond)
	must(t, f.Close())
	wg.Wait()
}
