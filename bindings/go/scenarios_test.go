package lifecycle

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestScenario1NewNodeActiveIdleDecommission(t *testing.T) {
	f := newFleet(t)
	must(t, f.RegisterCloudNode("cloud-1", 8192))
	n, err := f.Node("cloud-1")
	must(t, err)
	if n.State != StateProvisioning || n.Health != HealthUnknown || !n.ProvisionedAt.Equal(t0) {
		t.Fatalf("registered node: %+v", n)
	}
	_, err = f.Transition("cloud-1", StateInitializing, "cloud_init_started")
	must(t, err)
	must(t, f.Advance(3*time.Minute))
	_, err = f.Transition("cloud-1", StateReady, "cloud_init_completed")
	must(t, err)
	out, err := f.AddContainer("cloud-1", "mc-1", 2048)
	must(t, err)
	if out.State != StateActive || !out.Changed || out.CurrentContainers != 1 {
		t.Fatalf("add: %+v", out)
	}
	must(t, f.Advance(time.Hour))
	out, err = f.RemoveContainer("cloud-1", "mc-1")
	must(t, err)
	if out.State != StateIdle {
		t.Fatalf("remove: %+v", out)
	}
	must(t, f.Advance(30*time.Minute))

	deleted := ""
	ticket, err := f.Decommission(context.Background(), "cloud-1", "reactive_policy", func(_ context.Context, id string) error {
		deleted = id
		return nil
	})
	must(t, err)
	if deleted != "cloud-1" || ticket.ID == (TicketID{}) {
		t.Fatalf("deleted=%q ticket=%+v", deleted, ticket)
	}
	n, err = f.Node("cloud-1")
	must(t, err)
	if n.State != StateDecommissioned || n.TotalContainersEver != 1 || !n.InitializedAt.Equal(t0.Add(3*time.Minute)) {
		t.Fatalf("after: %+v", n)
	}
	if n.TimeInState[StateActive] != time.Hour {
		t.Fatalf("time in active = %v", n.TimeInState[StateActive])
	}
	e := lastDecommissionEntry(t, f, "cloud-1")
	if e.Result != ResultSuccess || e.DecisionBy != "reactive_policy" || e.Snapshot == nil ||
		e.Snapshot.State != StateDraining || *e.Snapshot.IdleFor != 30*time.Minute {
		t.Fatalf("audit: %+v snapshot %+v", e, e.Snapshot)
	}
}

func TestScenario2ReadyNodeTooYoung(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "young")
	_, err := f.BeginDecommission("young", "reactive_policy")
	if !errors.Is(err, ErrRejected) || !errors.Is(err, ReasonReadyTooYoung) {
		t.Fatalf("want rejection ready_too_young, got %v", err)
	}
	e := asError(t, err)
	if e.Reason() != ReasonReadyTooYoung || e.Verdict == nil || !e.Verdict.RetryAfter.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("error detail: %+v verdict %+v", e, e.Verdict)
	}
	if !strings.Contains(e.Error(), "ready node too young") {
		t.Fatalf("message: %s", e.Error())
	}
	entry := lastDecommissionEntry(t, f, "young")
	if entry.Result != ResultRejected || entry.ReasonCode != ReasonReadyTooYoung ||
		entry.Reason != "ready node too young (0s since ready, wait 30m0s more)" {
		t.Fatalf("audit: %+v", entry)
	}
}

func TestScenario3NodeHasContainers(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "busy")
	_, err := f.AddContainer("busy", "a", 1024)
	must(t, err)
	_, err = f.AddContainer("busy", "b", 1024)
	must(t, err)
	must(t, f.Advance(2*time.Hour))
	called := false
	_, err = f.Decommission(context.Background(), "busy", "consolidation_policy", func(context.Context, string) error {
		called = true
		return nil
	})
	if !errors.Is(err, ReasonHasContainers) || called {
		t.Fatalf("err=%v called=%v", err, called)
	}
	entry := lastDecommissionEntry(t, f, "busy")
	if entry.Result != ResultRejected || entry.Reason != "node has 2 containers" || entry.Snapshot.CurrentContainers != 2 {
		t.Fatalf("audit: %+v", entry)
	}
}

func TestScenario4SystemNodesAreProtected(t *testing.T) {
	f := newFleet(t)
	for _, id := range []string{"local-node", "proxy-node"} {
		must(t, f.RegisterSystemNode(id, 0))
		must(t, f.Advance(24*time.Hour))
		_, err := f.BeginDecommission(id, "manual")
		if !errors.Is(err, ReasonSystemNode) {
			t.Fatalf("%s: %v", id, err)
		}
		entry := lastDecommissionEntry(t, f, id)
		if entry.Result != ResultRejected || entry.Reason != "cannot decommission system node" {
			t.Fatalf("%s audit: %+v", id, entry)
		}
	}
	stats, err := f.AuditStats()
	must(t, err)
	if stats.ByResult[ResultRejected] != 2 {
		t.Fatalf("stats: %+v", stats)
	}
}
