//go:build !cgo || nl_wasm

package lifecycle_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
	"github.com/payperplay/node-lifecycle/bindings/go/lifecycletest"
)

func openReplicaT(t *testing.T, store lifecycle.SharedStore, id string, onLeader func(bool)) *lifecycle.Fleet {
	t.Helper()
	f, err := lifecycle.New(lifecycle.Options{ReadyGrace: lifecycle.Off, Shared: &lifecycle.Replication{Store: store, ReplicaID: id,
		LeaseTTL: 300 * time.Millisecond, Poll: 20 * time.Millisecond, OnLeadership: onLeader}})
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// firstLeadership returns an OnLeadership callback and a wait that returns once the callback
// reported leadership, failing the test after five seconds instead of hanging it.
func firstLeadership(t *testing.T) (func(bool), func()) {
	led := make(chan struct{})
	var once sync.Once
	return func(leader bool) {
			if leader {
				once.Do(func() { close(led) })
			}
		}, func() {
			t.Helper()
			select {
			case <-led:
			case <-time.After(5 * time.Second):
				t.Fatal("timed out waiting for OnLeadership(true)")
			}
		}
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One leader, one standby: the standby answers reads from the leader's writes and refuses
// every mutation with lifecycle.ErrNotLeader.
func TestReplicaStandbyReadsAndRefusesMutations(t *testing.T) {
	store := lifecycletest.NewMemStore()
	a := openReplicaT(t, store, "a", nil)
	b := openReplicaT(t, store, "b", nil)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("leaders: a %v, b %v", a.IsLeader(), b.IsLeader())
	}
	c := &conductorOK{t}
	c.ok(a.Register(lifecycle.NodeSpec{ID: "n1", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}))
	_, err := a.Claim("n1", 1024, 0)
	must(t, err)
	waitFor(t, "the standby to see n1", func() bool {
		n, err := b.Node("n1")
		return err == nil && n.ReservedRAMMB == 1024
	})
	if v, err := b.Evaluate("n1"); err != nil || v.Allowed {
		t.Fatalf("standby verdict: %+v %v", v, err)
	}
	for name, call := range map[string]func() error{
		"Register": func() error {
			_, err := b.Register(lifecycle.NodeSpec{ID: "n2", Origin: lifecycle.OriginCloud})
			return err
		},
		"AddContainer":   func() error { _, err := b.AddContainer("n1", "mc", 10); return err },
		"BeginDecommiss": func() error { _, err := b.BeginDecommission("n1", "reactive_policy"); return err },
		"RecordAudit": func() error {
			_, err := b.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleUp, Result: lifecycle.ResultSuccess})
			return err
		},
		"Tick": func() error { _, err := b.Tick(); return err },
	} {
		if err := call(); !errors.Is(err, lifecycle.ErrNotLeader) {
			t.Errorf("%s on the standby: %v", name, err)
		}
	}
	if _, err := b.Node("n2"); !errors.Is(err, lifecycle.ErrNodeNotFound) {
		t.Fatalf("a refused mutation left a trace: %v", err)
	}
}

// The leader stops renewing (it hangs, or its host died): the standby takes over with every
// acknowledged change — node, claim, cordon, hold, ticket, audit sequence — and the deposed
// leader's next write is lifecycle.ErrFenced and never seen by anyone.
func TestReplicaFailoverKeepsEverythingAndFencesTheOldLeader(t *testing.T) {
	store := lifecycletest.NewMemStore()
	a := openReplicaT(t, store, "a", nil)
	onLeader, promoted := firstLeadership(t)
	b := openReplicaT(t, store, "b", onLeader)
	c := &conductorOK{t}
	c.ok(a.Register(lifecycle.NodeSpec{ID: "n1", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}))
	c.ok(a.Register(lifecycle.NodeSpec{ID: "n2", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}))
	claim, err := a.Claim("n1", 2048, time.Hour)
	must(t, err)
	c.ok(a.Cordon("n1", "disk_full", "disk at 95%", false))
	c.ok(a.PlaceHold("n2", "world:mc-9", "sleeping server data"))
	cost := 0.0119
	c.ok(a.Update("n1", lifecycle.NodeUpdate{HourlyCost: &cost}))
	c.ok(a.ReleaseHold("n2", "world:mc-9"))
	ticket, err := a.BeginDecommission("n2", "reactive_policy")
	must(t, err)
	stats, err := a.AuditStats()
	must(t, err)

	// a stops renewing: its lease lapses, b takes over.
	store.ExpireLease()
	promoted()
	if !b.IsLeader() {
		t.Fatal("b did not become leader")
	}
	// The deposed leader's write is refused and never acknowledged.
	before := store.Writes()
	_, err = a.Register(lifecycle.NodeSpec{ID: "ghost", Origin: lifecycle.OriginCloud, TotalRAMMB: 1})
	if !errors.Is(err, lifecycle.ErrFenced) && !errors.Is(err, lifecycle.ErrNotLeader) {
		t.Fatalf("a deposed leader's write: %v", err)
	}
	if store.Writes() != before {
		t.Fatalf("the store accepted %d writes from the deposed leader", store.Writes()-before)
	}
	waitFor(t, "a to step down", func() bool { return !a.IsLeader() })

	// b has everything a acknowledged.
	n1, err := b.Node("n1")
	must(t, err)
	if n1.ReservedRAMMB != 2048 || len(n1.Cordons) != 1 || n1.Cordons[0].Name != "disk_full" || n1.HourlyCost != cost {
		t.Fatalf("n1 after failover: %+v", n1)
	}
	got, ok, err := b.TicketFor("n2")
	must(t, err)
	if !ok || got != ticket {
		t.Fatalf("the ticket after failover: %v %v (want %v)", got, ok, ticket)
	}
	if _, err := b.Node("ghost"); !errors.Is(err, lifecycle.ErrNodeNotFound) {
		t.Fatalf("the fenced write is visible: %v", err)
	}
	seq, err := b.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleUp, NodeID: "n1", Result: lifecycle.ResultSuccess, Reason: "after failover"})
	must(t, err)
	if seq < stats.NextSeq {
		t.Fatalf("audit sequence went back: %d, the old leader was at %d", seq, stats.NextSeq)
	}
	// The new leader finishes what the old one began, and the claim is still the claim.
	must(t, b.CompleteDecommission(ticket))
	_, err = b.ConfirmClaim(claim, "mc-1")
	if !errors.Is(err, lifecycle.ErrNotSchedulable) { // the disk_full cordon still stands
		t.Fatalf("confirming the claim under the cordon: %v", err)
	}
	released, err := b.ReleaseClaim(claim)
	must(t, err)
	if !released {
		t.Fatal("the claim did not survive the failover")
	}
}

// A write whose commit outcome was lost (committed, but the caller saw the connection fail)
// was never acknowledged, so it must not appear: the replica cuts it back before it reopens
// the fleet from the store.
func TestReplicaLostCommitIsNeverVisible(t *testing.T) {
	store := lifecycletest.NewMemStore()
	onLeader, reopened := firstLeadership(t)
	a := openReplicaT(t, store, "a", onLeader)
	c := &conductorOK{t}
	c.ok(a.Register(lifecycle.NodeSpec{ID: "before", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}))
	store.LoseCommits(1)
	if _, err := a.Register(lifecycle.NodeSpec{ID: "ghost", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}); err == nil {
		t.Fatal("a write whose commit was lost was acknowledged")
	}
	reopened()
	if _, err := a.Node("ghost"); !errors.Is(err, lifecycle.ErrNodeNotFound) {
		t.Fatalf("the unacknowledged write is visible after the reopen: %v", err)
	}
	if _, err := a.Node("before"); err != nil {
		t.Fatal(err)
	}
	c.ok(a.Register(lifecycle.NodeSpec{ID: "after", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}))
	// A second replica opening the store sees the same.
	files, _, _ := store.Load(context.Background())
	if len(files) == 0 {
		t.Fatal("empty store")
	}
	b := openReplicaT(t, store, "b", nil)
	if _, err := b.Node("ghost"); !errors.Is(err, lifecycle.ErrNodeNotFound) {
		t.Fatalf("another replica sees the unacknowledged write: %v", err)
	}
	if _, err := b.Node("after"); err != nil {
		t.Fatal(err)
	}
}

// A graceful Close releases the lease: the standby takes over within a poll, not a TTL.
func TestReplicaCloseHandsOverAtOnce(t *testing.T) {
	store := lifecycletest.NewMemStore()
	a, err := lifecycle.New(lifecycle.Options{Shared: &lifecycle.Replication{Store: store, ReplicaID: "a", LeaseTTL: time.Hour, Poll: 10 * time.Millisecond}})
	must(t, err)
	b := openReplicaT(t, store, "b", nil)
	c := &conductorOK{t}
	c.ok(a.Register(lifecycle.NodeSpec{ID: "n1", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}))
	must(t, a.Close())
	waitFor(t, "b to lead", b.IsLeader)
	if _, err := b.Node("n1"); err != nil {
		t.Fatal(err)
	}
}

// lifecycle.Options.Shared is refused with a data directory, without a store or without a replica id.
func TestReplicaOptionsAreChecked(t *testing.T) {
	for name, o := range map[string]lifecycle.Options{
		"data dir": {DataDir: t.TempDir(), Shared: &lifecycle.Replication{Store: lifecycletest.NewMemStore(), ReplicaID: "a"}},
		"no store": {Shared: &lifecycle.Replication{ReplicaID: "a"}},
		"no id":    {Shared: &lifecycle.Replication{Store: lifecycletest.NewMemStore()}},
		"ttl":      {Shared: &lifecycle.Replication{Store: lifecycletest.NewMemStore(), ReplicaID: "a", LeaseTTL: time.Microsecond}},
	} {
		if _, err := lifecycle.New(o); !errors.Is(err, lifecycle.ErrInvalidArgument) && !errors.Is(err, lifecycle.ErrInvalidSetting) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

type conductorOK struct{ t *testing.T }

func (c *conductorOK) ok(_ any, err error) {
	c.t.Helper()
	must(c.t, err)
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}
