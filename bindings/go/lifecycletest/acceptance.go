// Package lifecycletest is test support for programs and backends built on the lifecycle
// package: the library's acceptance suite as a function any way of keeping a fleet can run (in
// memory, a data directory, a store shared by replicas), and MemStore, a SharedStore in memory
// with the fencing rules of pgstore. The library itself never imports it.
package lifecycletest

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// Backend opens fleets for the suite. Open starts a fleet on new, empty storage with the
// options given (they carry the policy and a manual clock; the backend adds where the fleet
// lives). Reopen opens the storage of the last Open again, after that fleet was closed: a
// restart. A backend that cannot restart (in memory) returns nil from Reopen, and the restart
// cases are skipped.
type Backend interface {
	Open(t *testing.T, o lifecycle.Options) *lifecycle.Fleet
	Reopen(t *testing.T, o lifecycle.Options) *lifecycle.Fleet
}

// T0 is the manual clock's start in every case.
var T0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// Run runs every case of the suite as a subtest.
func Run(t *testing.T, b Backend) {
	for _, c := range []struct {
		name string
		run  func(*testing.T, Backend)
	}{
		{"Scenario1NewNodeActiveIdleDecommission", scenario1},
		{"Scenario2ReadyNodeTooYoung", scenario2},
		{"Scenario3NodeHasContainers", scenario3},
		{"Scenario4SystemNodesAreProtected", scenario4},
		{"RestartKeepsEveryDecision", restartKeepsEveryDecision},
		{"PlacementRacesScaleDown", placementRacesScaleDown},
	} {
		t.Run(c.name, func(t *testing.T) { c.run(t, b) })
	}
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func open(t *testing.T, b Backend) *lifecycle.Fleet {
	t.Helper()
	f := b.Open(t, lifecycle.Options{ManualClockStart: T0})
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func readyNode(t *testing.T, f *lifecycle.Fleet, id string) {
	t.Helper()
	must(t, f.RegisterCloudNode(id, 8192))
	_, err := f.Transition(id, lifecycle.StateInitializing, "cloud_init_started")
	must(t, err)
	_, err = f.Transition(id, lifecycle.StateReady, "cloud_init_completed")
	must(t, err)
}

func lastDecommissionEntry(t *testing.T, f *lifecycle.Fleet, node string) lifecycle.AuditEntry {
	t.Helper()
	entries, err := f.AuditByNode(node, 100)
	must(t, err)
	for i := len(entries) - 1; i >= 0; i-- {
		if entries[i].Action == lifecycle.ActionNodeDecommission {
			return entries[i]
		}
	}
	t.Fatalf("no node_decommission entry for %s", node)
	return lifecycle.AuditEntry{}
}

// Scenario 1: a new node goes provisioning → initializing → ready → active → idle, and is
// deleted after the idle grace, audited with its snapshot.
func scenario1(t *testing.T, b Backend) {
	f := open(t, b)
	must(t, f.RegisterCloudNode("cloud-1", 8192))
	n, err := f.Node("cloud-1")
	must(t, err)
	if n.State != lifecycle.StateProvisioning || n.Health != lifecycle.HealthUnknown || !n.ProvisionedAt.Equal(T0) {
		t.Fatalf("registered node: %+v", n)
	}
	_, err = f.Transition("cloud-1", lifecycle.StateInitializing, "cloud_init_started")
	must(t, err)
	must(t, f.Advance(3*time.Minute))
	_, err = f.Transition("cloud-1", lifecycle.StateReady, "cloud_init_completed")
	must(t, err)
	out, err := f.AddContainer("cloud-1", "mc-1", 2048)
	must(t, err)
	if out.State != lifecycle.StateActive || !out.Changed || out.CurrentContainers != 1 {
		t.Fatalf("add: %+v", out)
	}
	must(t, f.Advance(time.Hour))
	out, err = f.RemoveContainer("cloud-1", "mc-1")
	must(t, err)
	if out.State != lifecycle.StateIdle {
		t.Fatalf("remove: %+v", out)
	}
	if _, err := f.BeginDecommission("cloud-1", "reactive_policy"); !errors.Is(err, lifecycle.ReasonIdleTooRecent) {
		t.Fatalf("within the idle grace: %v", err)
	}
	must(t, f.Advance(30*time.Minute))
	deleted := ""
	ticket, err := f.Decommission(context.Background(), "cloud-1", "reactive_policy", func(_ context.Context, id string) error {
		deleted = id
		return nil
	})
	must(t, err)
	n, err = f.Node("cloud-1")
	must(t, err)
	if deleted != "cloud-1" || ticket.ID == (lifecycle.TicketID{}) || n.State != lifecycle.StateDecommissioned || n.TotalContainersEver != 1 ||
		!n.InitializedAt.Equal(T0.Add(3*time.Minute)) || n.TimeInState[lifecycle.StateActive] != time.Hour {
		t.Fatalf("after: deleted %q, %+v", deleted, n)
	}
	e := lastDecommissionEntry(t, f, "cloud-1")
	if e.Result != lifecycle.ResultSuccess || e.DecisionBy != "reactive_policy" || e.Snapshot == nil ||
		e.Snapshot.State != lifecycle.StateDraining || *e.Snapshot.IdleFor != 30*time.Minute {
		t.Fatalf("audit: %+v", e)
	}
}

// Scenario 2: a ready node younger than the ready grace is refused, with when to retry.
func scenario2(t *testing.T, b Backend) {
	f := open(t, b)
	readyNode(t, f, "young")
	_, err := f.BeginDecommission("young", "reactive_policy")
	var e *lifecycle.Error
	if !errors.As(err, &e) || e.Reason() != lifecycle.ReasonReadyTooYoung || e.Verdict == nil ||
		!e.Verdict.RetryAfter.Equal(T0.Add(30*time.Minute)) || !strings.Contains(e.Error(), "ready node too young") {
		t.Fatalf("rejection: %v", err)
	}
	entry := lastDecommissionEntry(t, f, "young")
	if entry.Result != lifecycle.ResultRejected || entry.Reason != "ready node too young (0s since ready, wait 30m0s more)" {
		t.Fatalf("audit: %+v", entry)
	}
}

// Scenario 3: a node with containers is never deleted; the delete function is not called.
func scenario3(t *testing.T, b Backend) {
	f := open(t, b)
	readyNode(t, f, "busy")
	for _, c := range []string{"a", "b"} {
		_, err := f.AddContainer("busy", c, 1024)
		must(t, err)
	}
	must(t, f.Advance(2*time.Hour))
	called := false
	_, err := f.Decommission(context.Background(), "busy", "consolidation_policy", func(context.Context, string) error {
		called = true
		return nil
	})
	if !errors.Is(err, lifecycle.ReasonHasContainers) || called {
		t.Fatalf("err=%v called=%v", err, called)
	}
	entry := lastDecommissionEntry(t, f, "busy")
	if entry.Result != lifecycle.ResultRejected || entry.Reason != "node has 2 containers" || entry.Snapshot.CurrentContainers != 2 {
		t.Fatalf("audit: %+v", entry)
	}
}

// Scenario 4: system nodes are never deleted, whatever their age.
func scenario4(t *testing.T, b Backend) {
	f := open(t, b)
	for _, id := range []string{"local-node", "proxy-node"} {
		must(t, f.RegisterSystemNode(id, 0))
		must(t, f.Advance(24*time.Hour))
		if _, err := f.BeginDecommission(id, "manual"); !errors.Is(err, lifecycle.ReasonSystemNode) {
			t.Fatalf("%s: %v", id, err)
		}
		if e := lastDecommissionEntry(t, f, id); e.Result != lifecycle.ResultRejected || e.Reason != "cannot decommission system node" {
			t.Fatalf("%s audit: %+v", id, e)
		}
	}
	stats, err := f.AuditStats()
	must(t, err)
	if stats.ByResult[lifecycle.ResultRejected] != 2 {
		t.Fatalf("stats: %+v", stats)
	}
}

// A restart keeps nodes, tickets, claims, holds, cordons and the audit sequence, and every
// restored node waits for its container sync before it may be deleted.
func restartKeepsEveryDecision(t *testing.T, b Backend) {
	f := b.Open(t, lifecycle.Options{ManualClockStart: T0, ReadyGrace: lifecycle.Off})
	readyNode(t, f, "claimed")
	readyNode(t, f, "held")
	readyNode(t, f, "draining")
	claim, err := f.Claim("claimed", 2048, time.Hour)
	must(t, err)
	_, err = f.Cordon("claimed", "disk_full", "disk at 97%", false)
	must(t, err)
	_, err = f.PlaceHold("held", "world:mc-7", "sleeping server data")
	must(t, err)
	ticket, err := f.BeginDecommission("draining", "reactive_policy")
	must(t, err)
	stats, err := f.AuditStats()
	must(t, err)
	must(t, f.Close())

	g := b.Reopen(t, lifecycle.Options{ManualClockStart: T0.Add(time.Minute), ReadyGrace: lifecycle.Off})
	if g == nil {
		t.Skip("this backend does not restart")
	}
	t.Cleanup(func() { _ = g.Close() })
	n, err := g.Node("claimed")
	must(t, err)
	if n.ReservedRAMMB != 2048 || len(n.Cordons) != 1 || !n.ContainerSyncPending {
		t.Fatalf("claimed after the restart: %+v", n)
	}
	if v, err := g.Evaluate("held"); err != nil || v.Allowed || !v.Has(lifecycle.ReasonHasHolds) || !v.Has(lifecycle.ReasonContainerSyncPending) {
		t.Fatalf("held after the restart: %+v %v", v, err)
	}
	got, ok, err := g.TicketFor("draining")
	must(t, err)
	if !ok || got != ticket {
		t.Fatalf("ticket after the restart: %v %v", got, ok)
	}
	must(t, g.CompleteDecommission(ticket))
	released, err := g.ReleaseClaim(claim)
	must(t, err)
	if !released {
		t.Fatal("the claim did not survive the restart")
	}
	after, err := g.AuditStats()
	must(t, err)
	if after.NextSeq <= stats.NextSeq {
		t.Fatalf("audit sequence after the restart: %d, before %d", after.NextSeq, stats.NextSeq)
	}
}

// A reservation and a decommission of the same empty node, concurrently, 200 times: exactly
// one wins each time.
func placementRacesScaleDown(t *testing.T, b Backend) {
	f := b.Open(t, lifecycle.Options{ManualClockStart: T0, ReadyGrace: lifecycle.Off})
	t.Cleanup(func() { _ = f.Close() })
	for round := 0; round < 200; round++ {
		id := fmt.Sprintf("n%03d", round)
		readyNode(t, f, id)
		var reserved, begun bool
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			_, err := f.Reserve(id, "mc-"+id, 1024)
			reserved = err == nil
		}()
		go func() {
			defer wg.Done()
			_, err := f.BeginDecommission(id, "reactive_policy")
			begun = err == nil
		}()
		wg.Wait()
		if reserved == begun {
			t.Fatalf("round %d: reserved %v, decommission begun %v: exactly one must win", round, reserved, begun)
		}
	}
}
