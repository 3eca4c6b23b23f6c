package lifecycle

// #include "node_lifecycle.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"time"
)

// Capacity is the RAM of a group of nodes.
type Capacity struct {
	Nodes          uint64 `json:"nodes"`
	TotalRAMMB     uint64 `json:"total_ram_mb"`
	AllocatedRAMMB uint64 `json:"allocated_ram_mb"`
	ReservedRAMMB  uint64 `json:"reserved_ram_mb"`
	FreeRAMMB      uint64 `json:"free_ram_mb"`
}

// ComingNode is a node still starting that will add capacity.
type ComingNode struct {
	NodeID     string
	State      State
	TotalRAMMB uint64
	// ReadyDeadline is the latest it is expected ready (after it, it becomes unhealthy).
	ReadyDeadline time.Time
}

// Projection is the fleet's capacity now, coming and leaving.
type Projection struct {
	At                   time.Time
	Now                  Capacity // ready, active, idle
	Coming               Capacity // provisioning, initializing
	ComingNodes          []ComingNode
	Leaving              Capacity // draining
	Unusable             Capacity // unhealthy
	UtilisationNow       float64
	UtilisationProjected float64
}

type projectionJSON struct {
	AtMs        int64    `json:"at_ms"`
	Now         Capacity `json:"now"`
	Coming      Capacity `json:"coming"`
	ComingNodes []struct {
		NodeID          string `json:"node_id"`
		State           State  `json:"state"`
		TotalRAMMB      uint64 `json:"total_ram_mb"`
		ReadyDeadlineMs int64  `json:"ready_deadline_ms"`
	} `json:"coming_nodes"`
	Leaving              Capacity `json:"leaving"`
	Unusable             Capacity `json:"unusable"`
	UtilisationNow       float64  `json:"utilisation_now"`
	UtilisationProjected float64  `json:"utilisation_projected"`
}

// Projection returns the fleet's capacity now, coming and leaving, so that a scaling policy
// does not provision twice for the same demand.
func (f *Fleet) Projection() (Projection, error) {
	h, err := f.handle()
	if err != nil {
		return Projection{}, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_projection_json(h, &b, &cerr)
	runtime.KeepAlive(f)
	var j projectionJSON
	if err := decodeJSON(r, b, cerr, &j); err != nil {
		return Projection{}, err
	}
	p := Projection{
		At: time.UnixMilli(j.AtMs), Now: j.Now, Coming: j.Coming, Leaving: j.Leaving, Unusable: j.Unusable,
		UtilisationNow: j.UtilisationNow, UtilisationProjected: j.UtilisationProjected,
		ComingNodes: make([]ComingNode, 0, len(j.ComingNodes)),
	}
	for _, c := range j.ComingNodes {
		p.ComingNodes = append(p.ComingNodes, ComingNode{NodeID: c.NodeID, State: c.State, TotalRAMMB: c.TotalRAMMB, ReadyDeadline: time.UnixMilli(c.ReadyDeadlineMs)})
	}
	return p, nil
}

// AdditionalNodesNeeded answers how many more nodes of nodeRAMMB a further demand of demandMB
// needs, counting the free capacity now and the capacity already coming.
func (f *Fleet) AdditionalNodesNeeded(demandMB, nodeRAMMB uint64) (int, error) {
	h, err := f.handle()
	if err != nil {
		return 0, err
	}
	var n C.uint64_t
	var cerr *C.nl_error
	r := C.nl_fleet_additional_nodes_needed(h, C.uint64_t(demandMB), C.uint64_t(nodeRAMMB), &n, &cerr)
	runtime.KeepAlive(f)
	return int(n), takeError(r, cerr)
}

// ConsolidationPolicy says when consolidation is worth doing. Zero fields mean the defaults
// (min uptime 30m, min idle 15m, min savings 0.10 EUR/h, max utilisation after 70%, cooldown
// 2h, keep 1 worker node). A negative value means zero.
type ConsolidationPolicy struct {
	MinUptime           time.Duration
	MinIdle             time.Duration
	MinSavingsPerHour   float64 // EUR
	MaxUtilisationAfter float64 // 0..1
	Cooldown            time.Duration
	MinWorkerNodes      int
}

// ConsolidationRequest is what ConsolidationPlan is asked.
type ConsolidationRequest struct {
	Policy ConsolidationPolicy
	// NonMigratable names containers that must not move (they pin their node).
	NonMigratable []string
	// LastConsolidation is when the last consolidation ran (for the cooldown); zero if never.
	LastConsolidation time.Time
}

func (r ConsolidationRequest) marshal() ([]byte, error) {
	policy := map[string]any{}
	durations := map[string]time.Duration{"min_uptime_ms": r.Policy.MinUptime, "min_idle_ms": r.Policy.MinIdle, "cooldown_ms": r.Policy.Cooldown}
	for k, d := range durations {
		switch {
		case d < 0:
			policy[k] = 0
		case d > 0:
			policy[k] = d.Milliseconds()
		}
	}
	switch {
	case r.Policy.MinSavingsPerHour < 0:
		policy["min_savings_eur_per_hour"] = 0
	case r.Policy.MinSavingsPerHour > 0:
		policy["min_savings_eur_per_hour"] = r.Policy.MinSavingsPerHour
	}
	if r.Policy.MaxUtilisationAfter != 0 {
		policy["max_utilisation_after"] = r.Policy.MaxUtilisationAfter
	}
	switch {
	case r.Policy.MinWorkerNodes < 0:
		policy["min_worker_nodes"] = 0
	case r.Policy.MinWorkerNodes > 0:
		policy["min_worker_nodes"] = r.Policy.MinWorkerNodes
	}
	body := map[string]any{"policy": policy, "non_migratable_containers": r.NonMigratable}
	if r.NonMigratable == nil {
		body["non_migratable_containers"] = []string{}
	}
	if !r.LastConsolidation.IsZero() {
		body["last_consolidation_at_ms"] = r.LastConsolidation.UnixMilli()
	}
	return json.Marshal(body)
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
	RAMMB       uint64 `json:"ram_mb"`
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

// ConsolidationPlan computes which nodes to remove, where their containers go, the savings,
// and why every other node stays. Every removed node passes the safety rules once its
// containers have moved. Read-only: carry the plan out with RecordMigration and Decommission.
func (f *Fleet) ConsolidationPlan(req ConsolidationRequest) (ConsolidationPlan, error) {
	h, err := f.handle()
	if err != nil {
		return ConsolidationPlan{}, err
	}
	body, err := req.marshal()
	if err != nil {
		return ConsolidationPlan{}, err
	}
	js := string(body)
	jp, jl := cstr(js)
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_consolidation_plan_json(h, jp, jl, &b, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(js)
	var p ConsolidationPlan
	err = decodeJSON(r, b, cerr, &p)
	return p, err
}

// RecordMigration records that a container moved from one node to another: atomically, and
// audited as container_migrate.
func (f *Fleet) RecordMigration(containerID, fromNode, toNode, decisionBy string) error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	cp, cl := cstr(containerID)
	fp, fl := cstr(fromNode)
	tp, tl := cstr(toNode)
	bp, bl := cstr(decisionBy)
	var cerr *C.nl_error
	r := C.nl_fleet_record_migration(h, cp, cl, fp, fl, tp, tl, bp, bl, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(containerID)
	runtime.KeepAlive(fromNode)
	runtime.KeepAlive(toNode)
	runtime.KeepAlive(decisionBy)
	return takeError(r, cerr)
}
