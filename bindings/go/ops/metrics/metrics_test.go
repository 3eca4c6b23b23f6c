package metrics

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

func TestCollector(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0, AuditCapacity: 100})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	c := New(f)
	if problems, err := testutil.CollectAndLint(c); err != nil || len(problems) > 0 {
		t.Fatalf("lint: %v %v", err, problems)
	}

	_ = f.RegisterCloudNode("a", 8192)
	_ = f.RegisterSystemNode("local-node", 0)
	_, _ = f.Transition("a", lifecycle.StateInitializing, "cloud_init_started")
	_ = f.Advance(10 * time.Minute)
	_, _ = f.Transition("a", lifecycle.StateReady, "cloud_init_completed")
	_, err = f.BeginDecommission("a", "reactive_policy") // too young
	if !errors.Is(err, lifecycle.ReasonReadyTooYoung) {
		t.Fatal(err)
	}
	_, _ = f.BeginDecommission("local-node", "manual")
	_ = f.Advance(time.Hour)
	ticket, err := f.BeginDecommission("a", "reactive_policy")
	if err != nil {
		t.Fatal(err)
	}
	_ = f.CompleteDecommission(ticket)

	want := `
# HELP nl_decommissions_total Decommission protocol steps by outcome (started, completed, cancelled, rejected, failed) and decision_by.
# TYPE nl_decommissions_total counter
nl_decommissions_total{decision_by="manual",result="rejected"} 1
nl_decommissions_total{decision_by="reactive_policy",result="completed"} 1
nl_decommissions_total{decision_by="reactive_policy",result="rejected"} 1
nl_decommissions_total{decision_by="reactive_policy",result="started"} 1
# HELP nl_verdict_rejections_total Decommissions and transitions refused by the safety rules, by primary reason.
# TYPE nl_verdict_rejections_total counter
nl_verdict_rejections_total{reason="ready_too_young"} 1
nl_verdict_rejections_total{reason="system_node"} 1
# HELP nl_lifecycle_transitions_total Lifecycle transitions by from and to state.
# TYPE nl_lifecycle_transitions_total counter
nl_lifecycle_transitions_total{from="draining",to="decommissioned"} 1
nl_lifecycle_transitions_total{from="initializing",to="ready"} 1
nl_lifecycle_transitions_total{from="provisioning",to="initializing"} 1
nl_lifecycle_transitions_total{from="ready",to="draining"} 1
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "nl_decommissions_total", "nl_verdict_rejections_total", "nl_lifecycle_transitions_total"); err != nil {
		t.Fatal(err)
	}
	// A second scrape counts nothing twice.
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), "nl_decommissions_total", "nl_verdict_rejections_total", "nl_lifecycle_transitions_total"); err != nil {
		t.Fatal(err)
	}
	gauges := `
# HELP nl_audit_ring_capacity Capacity of the audit ring.
# TYPE nl_audit_ring_capacity gauge
nl_audit_ring_capacity 100
# HELP nl_audit_entries_missed_total Audit entries evicted before this collector saw them (its counters miss them).
# TYPE nl_audit_entries_missed_total counter
nl_audit_entries_missed_total 0
`
	if err := testutil.CollectAndCompare(c, strings.NewReader(gauges), "nl_audit_ring_capacity", "nl_audit_entries_missed_total"); err != nil {
		t.Fatal(err)
	}
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	families, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sawHistogram, sawNodes bool
	for _, mf := range families {
		switch mf.GetName() {
		case "nl_node_time_in_state_seconds":
			for _, m := range mf.GetMetric() {
				// "a" spent 10 minutes initializing.
				if m.GetLabel()[0].GetValue() == "initializing" && m.GetHistogram().GetSampleSum() == 600 {
					sawHistogram = true
				}
			}
		case "nl_nodes":
			for _, m := range mf.GetMetric() {
				labels := map[string]string{}
				for _, l := range m.GetLabel() {
					labels[l.GetName()] = l.GetValue()
				}
				// local-node is active and healthy; "a" is decommissioned with unknown health.
				if labels["state"] == "active" && labels["health"] == "healthy" && m.GetGauge().GetValue() == 1 {
					sawNodes = true
				}
			}
		}
	}
	if !sawHistogram || !sawNodes {
		t.Fatalf("histogram %v, nodes gauge %v", sawHistogram, sawNodes)
	}

	// Entries evicted between scrapes are counted as missed.
	for i := 0; i < 250; i++ {
		_, _ = f.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleUp, NodeID: "x"})
	}
	if got := testutil.ToFloat64(prometheus.CollectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric, 100)
		c.Collect(all)
		close(all)
		for m := range all {
			if strings.Contains(m.Desc().String(), "nl_audit_entries_missed_total") {
				ch <- m
			}
		}
	})); got != 150 {
		t.Fatalf("missed: %v", got)
	}
}

func TestGaugesShowCordonsClaimsHoldsAndExpiries(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for _, id := range []string{"a", "b"} {
		if _, err := f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}); err != nil {
			t.Fatal(err)
		}
	}
	must := func(_ any, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(f.AddContainer("a", "c1", 1024))
	must(f.Claim("a", 512, 0))
	must(f.Claim("b", 256, time.Minute))
	must(f.PlaceHold("b", "world", "data"))
	must(f.Cordon("b", "disk_full", "97%", false))
	must(f.Cordon("b", "maintenance", "kernel", false))
	c := New(f)
	want := `
# HELP nl_claims_pending Claims and reservations not yet confirmed or released.
# TYPE nl_claims_pending gauge
nl_claims_pending 2
# HELP nl_containers Running containers known to the fleet.
# TYPE nl_containers gauge
nl_containers 1
# HELP nl_cordons Cordons on all nodes.
# TYPE nl_cordons gauge
nl_cordons 2
# HELP nl_holds Holds on all nodes.
# TYPE nl_holds gauge
nl_holds 1
# HELP nl_nodes_cordoned Nodes with at least one cordon (no new containers).
# TYPE nl_nodes_cordoned gauge
nl_nodes_cordoned 1
# HELP nl_ram_bytes RAM over all nodes by kind (total, allocated, reserved).
# TYPE nl_ram_bytes gauge
nl_ram_bytes{kind="allocated"} 1.073741824e+09
nl_ram_bytes{kind="reserved"} 8.05306368e+08
nl_ram_bytes{kind="total"} 1.7179869184e+10
`
	names := []string{"nl_claims_pending", "nl_containers", "nl_cordons", "nl_holds", "nl_nodes_cordoned", "nl_ram_bytes"}
	if err := testutil.CollectAndCompare(c, strings.NewReader(want), names...); err != nil {
		t.Fatal(err)
	}
	// The one-minute claim expires on tick; the counter counts it once.
	if err := f.Advance(2 * time.Minute); err != nil {
		t.Fatal(err)
	}
	must(f.Tick())
	expired := `
# HELP nl_claims_expired_total Claims and reservations released by their TTL.
# TYPE nl_claims_expired_total counter
nl_claims_expired_total 1
`
	for i := 0; i < 2; i++ {
		if err := testutil.CollectAndCompare(c, strings.NewReader(expired), "nl_claims_expired_total"); err != nil {
			t.Fatal(err)
		}
	}
}
