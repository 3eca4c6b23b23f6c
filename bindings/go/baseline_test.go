package lifecycle

// A faithful re-implementation of the conductor's hand-written lifecycle and audit code, used
// only as the baseline of the benchmarks in bench_test.go. It mirrors the original's costs:
// string states, a transition map built on every check, messages built with fmt.Sprintf, an
// audit logger that appends and trims a slice under a sync.RWMutex and JSON-marshals the state
// snapshot map on every record, and a linear scan for GetByNodeID. (The original also wrote
// each entry to its structured logger; that I/O is left out, which favours the baseline.)

import (
	"encoding/json"
	"fmt"
	"sync"
	"time"
)

type baseState string

const (
	baseProvisioning   baseState = "provisioning"
	baseInitializing   baseState = "initializing"
	baseReady          baseState = "ready"
	baseActive         baseState = "active"
	baseIdle           baseState = "idle"
	baseDraining       baseState = "draining"
	baseDecommissioned baseState = "decommissioned"
	baseUnhealthy      baseState = "unhealthy"
)

type baseMetrics struct {
	ProvisionedAt       time.Time
	InitializedAt       *time.Time
	FirstContainerAt    *time.Time
	LastContainerAt     *time.Time
	TotalContainersEver int
	CurrentContainers   int
}

type baseNode struct {
	ID             string
	LifecycleState baseState
	ContainerCount int
	AllocatedRAMMB int
	Metrics        baseMetrics
}

func (n *baseNode) CanBeDecommissioned() (bool, string) {
	if n.LifecycleState == baseProvisioning || n.LifecycleState == baseInitializing {
		return false, "Node is still starting up"
	}
	if n.ContainerCount > 0 {
		return false, fmt.Sprintf("Node has %d containers", n.ContainerCount)
	}
	if n.AllocatedRAMMB > 0 {
		return false, fmt.Sprintf("Node has %d MB RAM allocated", n.AllocatedRAMMB)
	}
	if n.LifecycleState == baseReady {
		if n.Metrics.InitializedAt == nil {
			return false, "Node initialization timestamp missing"
		}
		age := time.Since(*n.Metrics.InitializedAt)
		grace := 30 * time.Minute
		if age < grace {
			return false, fmt.Sprintf("Ready node too young (%v), wait %v more", age.Round(time.Second), (grace - age).Round(time.Second))
		}
		return true, fmt.Sprintf("Ready node past grace period (age: %v)", age.Round(time.Minute))
	}
	if n.LifecycleState == baseActive || n.LifecycleState == baseIdle {
		if n.Metrics.TotalContainersEver > 0 {
			idle := time.Duration(0)
			if n.Metrics.LastContainerAt != nil {
				idle = time.Since(*n.Metrics.LastContainerAt)
			}
			return true, fmt.Sprintf("Idle node, served %d containers (idle for %v)", n.Metrics.TotalContainersEver, idle.Round(time.Minute))
		}
		return false, "Active node with zero container history (invalid state)"
	}
	if n.LifecycleState == baseDraining {
		return true, "Node is draining and empty"
	}
	if n.LifecycleState == baseUnhealthy {
		return true, "Unhealthy node cleanup"
	}
	return false, fmt.Sprintf("Unknown lifecycle state: %s", n.LifecycleState)
}

func baseIsValidTransition(from, to baseState) bool {
	valid := map[baseState][]baseState{
		baseProvisioning:   {baseInitializing, baseUnhealthy, baseDecommissioned},
		baseInitializing:   {baseReady, baseUnhealthy, baseDecommissioned},
		baseReady:          {baseActive, baseIdle, baseDraining, baseUnhealthy, baseDecommissioned},
		baseActive:         {baseIdle, baseUnhealthy, baseDraining},
		baseIdle:           {baseActive, baseDraining, baseUnhealthy, baseDecommissioned},
		baseDraining:       {baseDecommissioned, baseUnhealthy},
		baseUnhealthy:      {baseDecommissioned, baseReady},
		baseDecommissioned: {},
	}
	for _, s := range valid[from] {
		if s == to {
			return true
		}
	}
	return false
}

func (n *baseNode) TransitionLifecycleState(to baseState, reason string) error {
	if !baseIsValidTransition(n.LifecycleState, to) {
		return fmt.Errorf("invalid lifecycle transition from %s to %s", n.LifecycleState, to)
	}
	n.LifecycleState = to
	now := time.Now()
	switch to {
	case baseActive:
		if n.Metrics.FirstContainerAt == nil {
			n.Metrics.FirstContainerAt = &now
		}
	case baseIdle:
		n.Metrics.LastContainerAt = &now
	}
	return nil
}

// baseRegistry stands in for the conductor's NodeRegistry + ContainerRegistry.
type baseRegistry struct {
	mu    sync.RWMutex
	nodes map[string]*baseNode
}

func (r *baseRegistry) GetNode(id string) (*baseNode, bool) {
	r.mu.RLock()
	defer r.mu.RUnlock()
	n, ok := r.nodes[id]
	return n, ok
}

func (r *baseRegistry) RegisterContainer(nodeID string, ramMB int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[nodeID]
	n.ContainerCount++
	n.AllocatedRAMMB += ramMB
	n.Metrics.CurrentContainers = n.ContainerCount
	n.Metrics.TotalContainersEver++
	if n.Metrics.FirstContainerAt == nil {
		now := time.Now()
		n.Metrics.FirstContainerAt = &now
	}
	if n.LifecycleState == baseReady && n.ContainerCount > 0 {
		_ = n.TransitionLifecycleState(baseActive, "first_container_added")
	} else if n.LifecycleState == baseIdle && n.ContainerCount > 0 {
		_ = n.TransitionLifecycleState(baseActive, "container_added")
	}
}

func (r *baseRegistry) UnregisterContainer(nodeID string, ramMB int) {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := r.nodes[nodeID]
	n.ContainerCount--
	n.AllocatedRAMMB -= ramMB
	n.Metrics.CurrentContainers = n.ContainerCount
	if n.ContainerCount == 0 {
		now := time.Now()
		n.Metrics.LastContainerAt = &now
	}
	if n.LifecycleState == baseActive && n.ContainerCount == 0 {
		_ = n.TransitionLifecycleState(baseIdle, "last_container_removed")
	}
}

type baseAuditEntry struct {
	Timestamp     time.Time              `json:"timestamp"`
	Action        string                 `json:"action"`
	NodeID        string                 `json:"node_id,omitempty"`
	ContainerID   string                 `json:"container_id,omitempty"`
	Reason        string                 `json:"reason"`
	StateSnapshot map[string]interface{} `json:"state_snapshot"`
	DecisionBy    string                 `json:"decision_by"`
	Result        string                 `json:"result"`
	Error         string                 `json:"error,omitempty"`
}

type baseAuditLogger struct {
	entries []baseAuditEntry
	mu      sync.RWMutex
	maxSize int
}

func newBaseAuditLogger(maxSize int) *baseAuditLogger {
	return &baseAuditLogger{entries: make([]baseAuditEntry, 0, maxSize), maxSize: maxSize}
}

func (a *baseAuditLogger) Record(e baseAuditEntry) {
	a.mu.Lock()
	defer a.mu.Unlock()
	e.Timestamp = time.Now()
	a.entries = append(a.entries, e)
	if len(a.entries) > a.maxSize {
		a.entries = a.entries[len(a.entries)-a.maxSize:]
	}
	fields := map[string]interface{}{
		"action": e.Action, "node_id": e.NodeID, "container_id": e.ContainerID,
		"reason": e.Reason, "decision_by": e.DecisionBy, "result": e.Result,
	}
	if len(e.StateSnapshot) > 0 {
		snapshotJSON, _ := json.Marshal(e.StateSnapshot)
		fields["state_snapshot"] = string(snapshotJSON)
	}
	if e.Error != "" {
		fields["error"] = e.Error
	}
	baseLogSink = fields
}

// baseLogSink keeps the log fields alive so the compiler cannot drop their construction.
var baseLogSink map[string]interface{}

func (a *baseAuditLogger) RecordNodeDecommission(nodeID, reason, decisionBy string, state map[string]interface{}, result string, err error) {
	e := baseAuditEntry{Action: "node_decommission", NodeID: nodeID, Reason: reason, StateSnapshot: state, DecisionBy: decisionBy, Result: result}
	if err != nil {
		e.Error = err.Error()
	}
	a.Record(e)
}

func (a *baseAuditLogger) GetByNodeID(nodeID string) []baseAuditEntry {
	a.mu.RLock()
	defer a.mu.RUnlock()
	var out []baseAuditEntry
	for _, e := range a.entries {
		if e.NodeID == nodeID {
			out = append(out, e)
		}
	}
	return out
}

// baseSnapshot is the state map the original VMProvisioner built for every decision.
func baseSnapshot(n *baseNode) map[string]interface{} {
	return map[string]interface{}{
		"lifecycle_state":       string(n.LifecycleState),
		"container_count":       n.ContainerCount,
		"allocated_ram_mb":      n.AllocatedRAMMB,
		"total_containers_ever": n.Metrics.TotalContainersEver,
		"provisioned_at":        n.Metrics.ProvisionedAt,
		"initialized_at":        n.Metrics.InitializedAt,
		"last_container_at":     n.Metrics.LastContainerAt,
		"uptime":                time.Since(n.Metrics.ProvisionedAt).String(),
	}
}
