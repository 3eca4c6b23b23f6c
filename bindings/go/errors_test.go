package lifecycle

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestErrorPaths(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	cases := []struct {
		name string
		err  error
		want error
	}{
		{"unknown node", func() error { _, err := f.Evaluate("ghost"); return err }(), ErrNodeNotFound},
		{"same id, other origin", f.RegisterSystemNode("n1", 1), ErrNodeExists},
		{"invalid transition", func() error { _, err := f.Transition("n1", StateProvisioning, "x"); return err }(), ErrInvalidTransition},
		{"unknown state", func() error { _, err := f.Transition("n1", State(42), "x"); return err }(), ErrUnknownEnum},
		{"empty reason", func() error { _, err := f.Transition("n1", StateActive, ""); return err }(), ErrInvalidArgument},
		{"empty decision_by", func() error { _, err := f.BeginDecommission("n1", ""); return err }(), ErrInvalidArgument},
		{"stale ticket", f.CompleteDecommission(Ticket{NodeID: "n1"}), ErrTicketInvalid},
		{"fail stale ticket", f.FailDecommission(Ticket{NodeID: "n1"}, errors.New("x")), ErrTicketInvalid},
		{"cancel stale ticket", func() error { _, err := f.CancelDecommission(Ticket{NodeID: "n1"}, "x"); return err }(), ErrTicketInvalid},
		{"capacity", func() error { _, err := f.Reserve("n1", "big", 9000); return err }(), ErrInsufficientCapacity},
		{"invalid utf8", func() error { _, err := f.Evaluate("\xff\xfe"); return err }(), ErrInvalidUTF8},
		{"confirm without reservation", func() error { _, err := f.ConfirmReservation("n1", "x"); return err }(), ErrInvalidArgument},
		{"forget live node", f.Forget("n1"), ErrInvalidArgument},
		{"bad node spec origin", func() error { _, err := f.Register(NodeSpec{ID: "x", Origin: Origin(9)}); return err }(), ErrUnknownEnum},
		{"nil delete func", func() error {
			_, err := f.Decommission(context.Background(), "n1", "manual", nil)
			return err
		}(), ErrNullArgument},
	}
	for _, c := range cases {
		if !errors.Is(c.err, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, c.err, c.want)
		}
		if errors.Is(c.err, ErrRejected) {
			t.Errorf("%s: %v must not count as a rejection", c.name, c.err)
		}
	}
	// None of them changed the node.
	n, err := f.Node("n1")
	must(t, err)
	if n.State != StateReady || len(n.Claims) != 0 {
		t.Fatalf("node changed: %+v", n)
	}

	wall, err := New(Options{})
	must(t, err)
	defer wall.Close()
	if err := wall.Advance(time.Second); !errors.Is(err, ErrNotManualClock) {
		t.Fatalf("advance on wall clock: %v", err)
	}
	if _, err := New(Options{AuditCapacity: -1}); !errors.Is(err, ErrInvalidSetting) || asError(t, err).Field != "AuditCapacity" {
		t.Fatalf("negative capacity: %v", err)
	}
	if _, err := New(Options{IdleGrace: 400 * 24 * time.Hour}); !errors.Is(err, ErrInvalidSetting) || asError(t, err).Field != "IdleGrace" {
		t.Fatalf("absurd grace: %v", err)
	}
}

func TestRejectionCarriesEveryReason(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	_, err := f.Reserve("n1", "r1", 100)
	must(t, err)
	_, err = f.PlaceHold("n1", "world:srv-1", "stopped server data")
	must(t, err)
	_, err = f.BeginDecommission("n1", "reactive_policy")
	e := asError(t, err)
	want := []Reason{ReasonHasReservations, ReasonHasHolds, ReasonReadyTooYoung}
	if len(e.Verdict.Reasons) != len(want) {
		t.Fatalf("reasons %v, want %v", e.Verdict.Reasons, want)
	}
	for i, r := range want {
		if e.Verdict.Reasons[i] != r || !errors.Is(err, r) {
			t.Fatalf("reason %d: %v, want %v", i, e.Verdict.Reasons[i], r)
		}
	}
	if !e.Verdict.RetryAfter.IsZero() {
		t.Fatal("occupancy is not a timer: no retry-after")
	}
	v, err := f.Explain("n1")
	must(t, err)
	if len(v.Explanation.Messages) != 3 || v.Explanation.Messages[0] != "node has 1 pending reservation" {
		t.Fatalf("explain: %+v", v)
	}
}

func TestFailedDeleteKeepsNodeDrainingAndCanBeRetried(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	must(t, f.Advance(time.Hour))
	boom := errors.New("provider 503")
	ticket, err := f.Decommission(context.Background(), "n1", "reactive_policy", func(context.Context, string) error { return boom })
	if !errors.Is(err, boom) {
		t.Fatalf("want the delete error wrapped, got %v", err)
	}
	n, _ := f.Node("n1")
	if n.State != StateDraining || n.Decommission == nil || n.Decommission.Ticket != ticket {
		t.Fatalf("node: %+v", n)
	}
	failed, err := f.AuditByResult(ResultFailed, 10)
	must(t, err)
	if len(failed) != 1 || failed[0].Error != "provider 503" {
		t.Fatalf("failed entries: %+v", failed)
	}
	// A second decommission is rejected while the ticket is outstanding; the ticket completes.
	if _, err := f.BeginDecommission("n1", "reactive_policy"); !errors.Is(err, ReasonDecommissionInProgress) {
		t.Fatalf("second begin: %v", err)
	}
	must(t, f.CompleteDecommission(ticket))
	if err := f.CompleteDecommission(ticket); !errors.Is(err, ErrTicketInvalid) {
		t.Fatalf("ticket reuse: %v", err)
	}
}

func TestDeletePanicIsRecordedAndReraised(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	must(t, f.Advance(time.Hour))
	func() {
		defer func() {
			if recover() == nil {
				t.Fatal("panic was swallowed")
			}
		}()
		_, _ = f.Decommission(context.Background(), "n1", "manual", func(context.Context, string) error { panic("provider sdk bug") })
	}()
	failed, err := f.AuditByResult(ResultFailed, 10)
	must(t, err)
	if len(failed) != 1 || failed[0].Error != "panic in delete function: provider sdk bug" {
		t.Fatalf("failed entries: %+v", failed)
	}
}

func TestCloseIsIdempotentAndUseAfterCloseIsAnError(t *testing.T) {
	f, err := New(Options{ManualClockStart: t0})
	must(t, err)
	readyNode(t, f, "n1")
	must(t, f.Close())
	must(t, f.Close())
	if _, err := f.Evaluate("n1"); !errors.Is(err, ErrClosed) {
		t.Fatalf("evaluate after close: %v", err)
	}
	if err := f.RegisterCloudNode("n2", 1); !errors.Is(err, ErrClosed) {
		t.Fatalf("register after close: %v", err)
	}
	if _, err := f.AuditRecent(10); !errors.Is(err, ErrClosed) {
		t.Fatalf("audit after close: %v", err)
	}
	if !f.Now().IsZero() {
		t.Fatal("Now after close should be the zero time")
	}
	var nilFleet *Fleet
	if _, err := nilFleet.Evaluate("x"); !errors.Is(err, ErrNullArgument) {
		t.Fatalf("nil fleet: %v", err)
	}
	must(t, nilFleet.Close())
}

func TestEmptyResultsAreEmptyNotNil(t *testing.T) {
	f := newFleet(t)
	for name, q := range map[string]func() ([]AuditEntry, error){
		"recent":    func() ([]AuditEntry, error) { return f.AuditRecent(10) },
		"by node":   func() ([]AuditEntry, error) { return f.AuditByNode("nobody", 10) },
		"by action": func() ([]AuditEntry, error) { return f.AuditByAction(ActionScaleUp, 10) },
	} {
		got, err := q()
		must(t, err)
		if got == nil || len(got) != 0 {
			t.Errorf("%s: %#v", name, got)
		}
	}
	nodes, err := f.Nodes()
	must(t, err)
	if nodes == nil {
		t.Error("Nodes() returned nil")
	}
	page, err := f.AuditSince(0, 10)
	must(t, err)
	if page.Entries == nil {
		t.Error("AuditSince entries nil")
	}
}

func TestPolicyRoundTripAndHealth(t *testing.T) {
	f, err := New(Options{ManualClockStart: t0, IdleGrace: 5 * time.Minute, UnhealthyThreshold: 2, ReadyGrace: Off})
	must(t, err)
	defer f.Close()
	p, err := f.Policy()
	must(t, err)
	if p.IdleGrace != 5*time.Minute || p.UnhealthyThreshold != 2 || p.ReadyGrace != Off || p.PostSyncGrace != 10*time.Minute {
		t.Fatalf("policy: %+v", p)
	}
	readyNode(t, f, "n1")
	v, err := f.Evaluate("n1")
	must(t, err)
	if !v.Allowed {
		t.Fatalf("a ready grace that is off should allow at once: %+v", v)
	}
	h, err := f.ReportHealth("n1", false)
	must(t, err)
	if h.State != StateReady || h.ConsecutiveFailures != 1 {
		t.Fatalf("%+v", h)
	}
	h, err = f.ReportHealth("n1", false)
	must(t, err)
	if h.State != StateUnhealthy || h.Health != HealthUnhealthy {
		t.Fatalf("%+v", h)
	}
	h, err = f.ReportHealth("n1", true)
	must(t, err)
	if h.State != StateReady {
		t.Fatalf("%+v", h)
	}
	v, err = f.Evaluate("n1")
	must(t, err)
	if !v.Has(ReasonContainerSyncPending) {
		t.Fatalf("after recovery the container view must be re-synced: %+v", v)
	}
	_, err = f.SyncContainers("n1", nil)
	must(t, err)
	if v, _ = f.Evaluate("n1"); v.Primary != ReasonContainerSyncPending {
		t.Fatalf("refreshing the view does not end the sync: %+v", v)
	}
	done, err := f.CompleteContainerSync("n1")
	must(t, err)
	if !done {
		t.Fatal("a sync was pending")
	}
	v, _ = f.Evaluate("n1")
	if v.Primary != ReasonRecoveryGrace {
		t.Fatalf("%+v", v)
	}
}

func TestRecoveryAndTimers(t *testing.T) {
	f := newFleet(t)
	must(t, f.RegisterRecoveredNode("back", 4096, t0.Add(-48*time.Hour)))
	must(t, f.RegisterCloudNode("stuck", 4096))
	n, _ := f.Node("back")
	if n.State != StateReady || !n.ContainerSyncPending || !n.ProvisionedAt.Equal(t0.Add(-48*time.Hour)) {
		t.Fatalf("recovered: %+v", n)
	}
	must(t, f.Advance(15*time.Minute))
	rep, err := f.Tick()
	must(t, err)
	if len(rep.ProvisioningTimeouts) != 1 || rep.ProvisioningTimeouts[0] != "stuck" {
		t.Fatalf("tick: %+v", rep)
	}
	done, err := f.FinishRestore()
	must(t, err)
	if done != 1 {
		t.Fatalf("finish restore completed %d", done)
	}
	must(t, f.Advance(10*time.Minute))
	v, _ := f.Evaluate("back")
	if !v.Allowed {
		t.Fatalf("after sync and grace: %+v", v)
	}
	nodes, err := f.EvaluateAll()
	must(t, err)
	if len(nodes) != 2 || nodes[0].NodeID != "back" || nodes[1].NodeID != "stuck" || !nodes[1].Verdict.Allowed {
		t.Fatalf("evaluate all: %+v", nodes)
	}
	explained, err := f.ExplainAll()
	must(t, err)
	for i := range nodes {
		if explained[i].NodeID != nodes[i].NodeID || explained[i].Verdict.Allowed != nodes[i].Verdict.Allowed ||
			len(explained[i].Verdict.Reasons) != len(nodes[i].Verdict.Reasons) {
			t.Fatalf("flat and JSON paths disagree: %+v vs %+v", nodes[i], explained[i])
		}
	}
	empty := newFleet(t)
	none, err := empty.EvaluateAll()
	must(t, err)
	if none == nil || len(none) != 0 {
		t.Fatalf("empty fleet: %#v", none)
	}
}

func TestAuditCursorAndRecord(t *testing.T) {
	f, err := New(Options{ManualClockStart: t0, AuditCapacity: 3})
	must(t, err)
	defer f.Close()
	for _, id := range []string{"a", "b", "c", "d"} {
		must(t, f.RegisterCloudNode(id, 0))
	}
	seq, err := f.RecordAudit(AuditRecord{Action: ActionScaleUp, Result: ResultSuccess, NodeID: "d", Reason: "demand", DecisionBy: "reactive_policy"})
	must(t, err)
	if seq != 5 {
		t.Fatalf("seq %d", seq)
	}
	page, err := f.AuditSince(0, 100)
	must(t, err)
	if page.Missed != 2 || len(page.Entries) != 3 || page.NextCursor != 5 || page.Entries[2].Snapshot == nil {
		t.Fatalf("page: %+v", page)
	}
	stats, err := f.AuditStats()
	must(t, err)
	if stats.TotalRecorded != 5 || stats.Retained+stats.Evicted != stats.TotalRecorded || stats.LastEntry.Action != ActionScaleUp {
		t.Fatalf("stats: %+v", stats)
	}
}

func TestManualClockAndTimerReasons(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	v, err := f.Evaluate("n1")
	must(t, err)
	if v.Primary != ReasonReadyTooYoung || !v.Primary.IsTimer() || !v.RetryAfter.Equal(t0.Add(30*time.Minute)) {
		t.Fatalf("young: %+v", v)
	}
	// A wall-clock step moves recorded time but never shortens a grace: graces run on the
	// monotonic clock.
	must(t, f.SetClock(t0.Add(30*time.Minute)))
	if !f.Now().Equal(t0.Add(30 * time.Minute)) {
		t.Fatalf("clock: %v", f.Now())
	}
	v, err = f.Evaluate("n1")
	must(t, err)
	if v.Allowed || v.Primary != ReasonReadyTooYoung {
		t.Fatalf("a wall step shortened the ready grace: %+v", v)
	}
	must(t, f.Advance(30*time.Minute))
	v, err = f.Evaluate("n1")
	must(t, err)
	if !v.Allowed {
		t.Fatalf("past the grace: %+v", v)
	}
	for _, r := range []Reason{ReasonHasContainers, ReasonSystemNode, ReasonContainerSyncPending} {
		if r.IsTimer() {
			t.Errorf("%s is not a timer", r)
		}
	}
	wall, err := New(Options{})
	must(t, err)
	defer wall.Close()
	if err := wall.SetClock(t0); !errors.Is(err, ErrNotManualClock) {
		t.Fatalf("SetClock on the wall clock: %v", err)
	}
}

// A one-call Decommission with a context that is already done changes nothing and calls
// nothing: no drain, no audit entry, no ticket, no delete.
func TestDecommissionWithADoneContextChangesNothing(t *testing.T) {
	f := newFleet(t)
	readyNode(t, f, "n1")
	must(t, f.Advance(2*time.Hour)) // past the ready grace: the rules would allow it
	before, err := f.AuditStats()
	must(t, err)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	called := false
	_, err = f.Decommission(ctx, "n1", "reactive_policy", func(context.Context, string) error {
		called = true
		return nil
	})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
	if called {
		t.Fatal("the delete function was called")
	}
	n, err := f.Node("n1")
	must(t, err)
	if n.State != StateReady {
		t.Fatalf("state = %v, want ready", n.State)
	}
	after, err := f.AuditStats()
	must(t, err)
	if after.TotalRecorded != before.TotalRecorded {
		t.Fatalf("%d audit entries were recorded", after.TotalRecorded-before.TotalRecorded)
	}
	if _, ok, err := f.TicketFor("n1"); err != nil || ok {
		t.Fatalf("TicketFor: ok = %v, err = %v; want no ticket", ok, err)
	}
	// The same call with a live context goes through: the test above is not vacuous.
	if _, err := f.Decommission(context.Background(), "n1", "reactive_policy", func(context.Context, string) error {
		called = true
		return nil
	}); err != nil || !called {
		t.Fatalf("live context: err = %v, called = %v", err, called)
	}
}
