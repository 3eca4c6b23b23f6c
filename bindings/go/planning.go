package lifecycle

import (
	"encoding/json"
	"math"
	"time"
)

// Capacity is the RAM of a group of nodes.
type Capacity struct {
	Nodes          int `json:"nodes"`
	TotalRAMMB     int `json:"total_ram_mb"`
	AllocatedRAMMB int `json:"allocated_ram_mb"`
	ReservedRAMMB  int `json:"reserved_ram_mb"`
	FreeRAMMB      int `json:"free_ram_mb"`
}

// ComingNode is a node still starting that will add capacity.
type ComingNode struct {
	NodeID     string
	State      State
	TotalRAMMB int
	// ReadyDeadline is the latest it is expected ready (after it, it becomes unhealthy); zero
	// when the provisioning timeout is off.
	ReadyDeadline time.Time
}

// Projection is the fleet's capacity now, coming and leaving.
type Projection struct {
	At          time.Time
	Now         Capacity // schedulable: ready, active, idle without cordons
	Cordoned    Capacity // ready, active or idle with cordons: running, taking nothing new
	Coming      Capacity // provisioning, initializing
	ComingNodes []ComingNode
	Leaving     Capacity // draining
	Unusable    Capacity // unhealthy
	// System nodes (local, proxy, control plane) are shown here and never counted as
	// capacity for game servers in Now, Coming or the utilisation.
	System Capacity
	// UtilisationNow is (allocated + reserved) / total over schedulable nodes.
	UtilisationNow float64
	// UtilisationProjected counts the capacity coming too.
	UtilisationProjected float64
}

// Projection returns the fleet's capacity now, coming and leaving, so that a scaling policy
// does not provision twice for the same demand.
func (f *Fleet) Projection() (Projection, error) {
	var j struct {
		AtMs        int64    `json:"at_ms"`
		Now         Capacity `json:"now"`
		Cordoned    Capacity `json:"cordoned"`
		Coming      Capacity `json:"coming"`
		ComingNodes []struct {
			NodeID          string `json:"node_id"`
			State           State  `json:"state"`
			TotalRAMMB      int    `json:"total_ram_mb"`
			ReadyDeadlineMs *int64 `json:"ready_deadline_ms"`
		} `json:"coming_nodes"`
		Leaving              Capacity `json:"leaving"`
		Unusable             Capacity `json:"unusable"`
		System               Capacity `json:"system"`
		UtilisationNow       float64  `json:"utilisation_now"`
		UtilisationProjected float64  `json:"utilisation_projected"`
	}
	if err := f.do(op{"op": "projection"}, &j); err != nil {
		return Projection{}, err
	}
	p := Projection{
		At: time.UnixMilli(j.AtMs), Now: j.Now, Cordoned: j.Cordoned, Coming: j.Coming,
		Leaving: j.Leaving, Unusable: j.Unusable, System: j.System,
		UtilisationNow: j.UtilisationNow, UtilisationProjected: j.UtilisationProjected,
		ComingNodes: make([]ComingNode, 0, len(j.ComingNodes)),
	}
	for _, c := range j.ComingNodes {
		p.ComingNodes = append(p.ComingNodes, ComingNode{NodeID: c.NodeID, State: c.State, TotalRAMMB: c.TotalRAMMB, ReadyDeadline: optTime(c.ReadyDeadlineMs)})
	}
	return p, nil
}

// AdditionalNodesNeeded answers how many more nodes of nodeRAMMB a further demand of demandMB
// needs, counting the free capacity now and the capacity already coming.
func (f *Fleet) AdditionalNodesNeeded(demandMB, nodeRAMMB int) (int, error) {
	if err := checkRAM("demandMB", demandMB); err != nil {
		return 0, err
	}
	if nodeRAMMB <= 0 {
		return 0, invalidArgument("nodeRAMMB = %d must be greater than 0", nodeRAMMB)
	}
	var out struct {
		Nodes int `json:"nodes"`
	}
	err := f.do(op{"op": "additional_nodes_needed", "demand_mb": demandMB, "node_ram_mb": nodeRAMMB}, &out)
	return out.Nodes, err
}

// ConsolidationPolicy says when consolidation is worth doing. Zero fields mean the defaults
// (min uptime 30m, min idle 15m, min savings 0.10 EUR/h, max utilisation after 70%, cooldown
// 2h, keep 1 worker node); Off switches a duration check off. Negative, NaN or infinite
// values are ErrInvalidSetting.
type ConsolidationPolicy struct {
	MinUptime           time.Duration
	MinIdle             time.Duration
	MinSavingsPerHour   float64 // EUR
	MaxUtilisationAfter float64 // in (0, 1]
	Cooldown            time.Duration
	MinWorkerNodes      int
}

func (p ConsolidationPolicy) toJSON() (map[string]any, error) {
	const owner = "ConsolidationPolicy"
	out := map[string]any{}
	for _, d := range []struct {
		key, field string
		d          time.Duration
	}{
		{"min_uptime_ms", "MinUptime", p.MinUptime},
		{"min_idle_ms", "MinIdle", p.MinIdle},
		{"cooldown_ms", "Cooldown", p.Cooldown},
	} {
		v, err := durationSetting(owner, d.field, d.d)
		if err != nil {
			return nil, err
		}
		out[d.key] = v
	}
	if v := p.MinSavingsPerHour; math.IsNaN(v) || math.IsInf(v, 0) || v < 0 {
		return nil, invalidSetting(owner, "MinSavingsPerHour", "%v must be a finite number of at least 0", v)
	}
	if v := p.MaxUtilisationAfter; math.IsNaN(v) || v < 0 || v > 1 {
		return nil, invalidSetting(owner, "MaxUtilisationAfter", "%v must be in (0, 1] (0 means the default)", v)
	}
	n, err := countSetting(owner, "MinWorkerNodes", p.MinWorkerNodes)
	if err != nil {
		return nil, err
	}
	out["min_savings_eur_per_hour"] = p.MinSavingsPerHour
	out["max_utilisation_after"] = p.MaxUtilisationAfter
	out["min_worker_nodes"] = n
	return out, nil
}

// ConsolidationRequest is what ConsolidationPlan is asked.
type ConsolidationRequest struct {
	Policy ConsolidationPolicy
	// NonMigratable names containers that must not move (they pin their node).
	NonMigratable []string
	// LastConsolidation is when the caller last consolidated by other means (zero if never);
	// the fleet also remembers its own last ExecutePlan, and the later of both starts the
	// cooldown.
	LastConsolidation time.Time
}

// KeptNode says why a node stays.
type KeptNode struct {
	NodeID string `json:"node_id"`
	// Reason: not_a_candidate, fails_safety, too_young, not_idle_long_enough,
	// non_migratable_container, min_worker_nodes, utilisation_limit, does_not_fit,
	// migration_target or plan_refused.
	Reason string `json:"reason"`
	Detail string `json:"detail"`
}

// RemovedNode is a node the plan removes.
type RemovedNode struct {
	NodeID       string  `json:"node_id"`
	InstanceType string  `json:"instance_type"`
	HourlyCost   float64 `json:"hourly_cost_eur"`
}

// ContainerMove moves one container off a removed node.
type ContainerMove struct {
	ContainerID string `json:"container_id"`
	RAMMB       int    `json:"ram_mb"`
	FromNode    string `json:"from_node"`
	ToNode      string `json:"to_node"`
}

// ConsolidationPlan is the planner's answer. When Worthwhile is false, Refusal says why
// (pending_placements, cooldown, nothing_to_remove, savings_below_threshold) and nothing is
// removed.
type ConsolidationPlan struct {
	Worthwhile        bool            `json:"worthwhile"`
	Refusal           string          `json:"refusal"`
	RefusalDetail     string          `json:"refusal_detail"`
	Remove            []RemovedNode   `json:"remove"`
	Moves             []ContainerMove `json:"moves"`
	SavingsPerHour    float64         `json:"savings_eur_per_hour"`
	UtilisationBefore float64         `json:"utilisation_before"`
	UtilisationAfter  float64         `json:"utilisation_after"`
	Kept              []KeptNode      `json:"kept"`
}

// MarshalJSON writes the library's form (a plan that is worthwhile has a null refusal), so a
// plan can be sent back to ExecutePlan or stored.
func (p ConsolidationPlan) MarshalJSON() ([]byte, error) {
	type plain ConsolidationPlan
	j := struct {
		plain
		Refusal *string `json:"refusal"`
	}{plain: plain(p), Refusal: optString(p.Refusal)}
	return json.Marshal(j)
}

func (p *ConsolidationPlan) UnmarshalJSON(b []byte) error {
	type plain ConsolidationPlan
	var j struct {
		plain
		Refusal *string `json:"refusal"`
	}
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = ConsolidationPlan(j.plain)
	p.Refusal = fromOptString(j.Refusal)
	return nil
}

// ConsolidationPlan computes which nodes to remove, where their containers go, the savings,
// and why every other node stays. Every removed node passes the safety rules once its
// containers have moved. Read-only: carry the plan out with ExecutePlan.
func (f *Fleet) ConsolidationPlan(req ConsolidationRequest) (ConsolidationPlan, error) {
	policy, err := req.Policy.toJSON()
	if err != nil {
		return ConsolidationPlan{}, err
	}
	request := map[string]any{"policy": policy, "non_migratable_containers": nonNil(req.NonMigratable)}
	if !req.LastConsolidation.IsZero() {
		request["last_consolidation_at_ms"] = req.LastConsolidation.UnixMilli()
	}
	var p ConsolidationPlan
	if err := f.do(op{"op": "consolidation_plan", "request": request}, &p); err != nil {
		return ConsolidationPlan{}, err
	}
	p.Remove, p.Moves, p.Kept = nonNil(p.Remove), nonNil(p.Moves), nonNil(p.Kept)
	return p, nil
}

// PlanExecution is a plan being carried out.
type PlanExecution struct {
	// ID names the execution; its nodes carry the evacuate cordon Cordon
	// ("consolidation:<id>").
	ID     string          `json:"id"`
	Cordon string          `json:"cordon"`
	Remove []string        `json:"remove"`
	Moves  []ContainerMove `json:"moves"`
	// SavingsPerHour is what the plan saves once done (EUR).
	SavingsPerHour float64 `json:"savings_eur_per_hour"`
}

// ExecutePlan starts carrying out a plan made with policy: it re-validates the plan against
// the fleet as it is now (a stale plan is ErrStalePlan, saying why), places an evacuate cordon
// on every node to remove, records the execution time (the cooldown runs from it, across
// restarts) and returns the moves. Then: move each container and RecordMigration it; each
// emptied node can be decommissioned at once (decisionBy "consolidation_policy"), without the
// idle grace. AbandonPlan lifts the cordons of a plan not carried out.
func (f *Fleet) ExecutePlan(plan ConsolidationPlan, policy ConsolidationPolicy) (PlanExecution, error) {
	pj, err := policy.toJSON()
	if err != nil {
		return PlanExecution{}, err
	}
	plan.Remove, plan.Moves, plan.Kept = nonNil(plan.Remove), nonNil(plan.Moves), nonNil(plan.Kept)
	var out PlanExecution
	err = f.do(op{"op": "execute_plan", "plan": plan, "policy": pj}, &out)
	return out, err
}

// AbandonPlan lifts an execution's cordons from every node that still has one (audited) and
// returns those nodes. Nodes already deleted stay deleted.
func (f *Fleet) AbandonPlan(executionID string) ([]string, error) {
	out := []string{}
	err := f.do(op{"op": "abandon_plan", "id": executionID}, &out)
	return out, err
}

// LastConsolidation is when a plan was last executed on this fleet (zero if never); it
// survives restarts of a persistent fleet.
func (f *Fleet) LastConsolidation() (time.Time, error) {
	var ms *int64
	err := f.do(op{"op": "last_consolidation"}, &ms)
	return optTime(ms), err
}
