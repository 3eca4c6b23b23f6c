package lifecycle

import (
	"errors"
	"math"
	"testing"
	"time"
)

func idleFleet(t *testing.T) *Fleet {
	f := newFleet(t)
	for _, n := range []struct {
		id   string
		cost float64
	}{{"cheap", 0.05}, {"mid", 0.10}, {"dear", 0.20}} {
		_, err := f.Register(NodeSpec{ID: n.id, Origin: OriginCloud, TotalRAMMB: 8192, HourlyCost: n.cost, InstanceType: "cx32"})
		must(t, err)
		_, err = f.Transition(n.id, StateInitializing, "cloud_init_started")
		must(t, err)
		_, err = f.Transition(n.id, StateReady, "cloud_init_completed")
		must(t, err)
		_, err = f.AddContainer(n.id, n.id+"-c", 1024)
		must(t, err)
	}
	must(t, f.Advance(time.Hour))
	return f
}

func TestConsolidationPlanFromGo(t *testing.T) {
	f := idleFleet(t)
	p, err := f.ConsolidationPlan(ConsolidationRequest{NonMigratable: []string{"dear-c"}})
	must(t, err)
	// dear is pinned by its non-migratable container, so it stays and can take the others'
	// containers: both cheaper nodes go, the most expensive first.
	if !p.Worthwhile || len(p.Remove) != 2 || p.Remove[0].NodeID != "mid" || p.Remove[1].NodeID != "cheap" ||
		math.Abs(p.SavingsPerHour-0.15) > 1e-9 {
		t.Fatalf("plan: %+v", p)
	}
	wantMoves := []ContainerMove{
		{ContainerID: "mid-c", RAMMB: 1024, FromNode: "mid", ToNode: "dear"},
		{ContainerID: "cheap-c", RAMMB: 1024, FromNode: "cheap", ToNode: "dear"},
	}
	if len(p.Moves) != 2 || p.Moves[0] != wantMoves[0] || p.Moves[1] != wantMoves[1] {
		t.Fatalf("moves: %+v", p.Moves)
	}
	if len(p.Kept) != 1 || p.Kept[0].NodeID != "dear" || p.Kept[0].Reason != "non_migratable_container" {
		t.Fatalf("kept: %+v", p.Kept)
	}

	// Carry the move out; the planner's advice is then the fleet's state.
	must(t, f.RecordMigration("mid-c", "mid", "dear", "consolidation_policy"))
	n, _ := f.Node("mid")
	if n.State != StateIdle {
		t.Fatalf("mid after migration: %s", n.State)
	}
	migs, _ := f.AuditByAction(ActionContainerMigrate, 10)
	if len(migs) != 1 || migs[0].ContainerID != "mid-c" || migs[0].DecisionBy != "consolidation_policy" {
		t.Fatalf("audit: %+v", migs)
	}
	if err := f.RecordMigration("mid-c", "mid", "cheap", "x"); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("moving a container that is not there: %v", err)
	}

	p, err = f.ConsolidationPlan(ConsolidationRequest{LastConsolidation: f.Now().Add(-time.Minute)})
	must(t, err)
	if p.Worthwhile || p.Refusal != "cooldown" || len(p.Kept) != 3 || len(p.Remove) != 0 {
		t.Fatalf("cooldown: %+v", p)
	}
	if _, err := f.ConsolidationPlan(ConsolidationRequest{Policy: ConsolidationPolicy{MaxUtilisationAfter: 2}}); !errors.Is(err, ErrInvalidSetting) || asError(t, err).Field != "MaxUtilisationAfter" {
		t.Fatalf("bad policy: %v", err)
	}
}

func TestProjectionFromGo(t *testing.T) {
	f := idleFleet(t)
	must(t, f.RegisterCloudNode("booting", 16384))
	p, err := f.Projection()
	must(t, err)
	if p.Now.Nodes != 3 || p.Now.AllocatedRAMMB != 3072 || p.Coming.TotalRAMMB != 16384 || len(p.ComingNodes) != 1 {
		t.Fatalf("projection: %+v", p)
	}
	if !p.ComingNodes[0].ReadyDeadline.Equal(f.Now().Add(15 * time.Minute)) {
		t.Fatalf("deadline: %v", p.ComingNodes[0].ReadyDeadline)
	}
	n, err := f.AdditionalNodesNeeded(40_000, 8192)
	must(t, err)
	if n != 1 {
		t.Fatalf("additional nodes: %d", n)
	}
	if _, err := f.AdditionalNodesNeeded(1, 0); !errors.Is(err, ErrInvalidArgument) {
		t.Fatalf("zero node size: %v", err)
	}
}
