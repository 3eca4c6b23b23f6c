package lifecycle

// #include "node_lifecycle.h"
import "C"

import "fmt"

// State is a node's lifecycle state. The numbers are those of the C header's nl_state.
type State uint32

const (
	StateProvisioning   State = C.NL_STATE_PROVISIONING
	StateInitializing   State = C.NL_STATE_INITIALIZING
	StateReady          State = C.NL_STATE_READY
	StateActive         State = C.NL_STATE_ACTIVE
	StateIdle           State = C.NL_STATE_IDLE
	StateDraining       State = C.NL_STATE_DRAINING
	StateDecommissioned State = C.NL_STATE_DECOMMISSIONED
	StateUnhealthy      State = C.NL_STATE_UNHEALTHY
)

var stateNames = [...]string{"provisioning", "initializing", "ready", "active", "idle", "draining", "decommissioned", "unhealthy"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return fmt.Sprintf("State(%d)", uint32(s))
}

// ParseState is the inverse of State.String.
func ParseState(name string) (State, error) {
	for i, n := range stateNames {
		if n == name {
			return State(i), nil
		}
	}
	return 0, fmt.Errorf("lifecycle: unknown state %q", name)
}

func (s State) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

func (s *State) UnmarshalText(b []byte) error {
	v, err := ParseState(string(b))
	*s = v
	return err
}

// Health is the health checker's view, separate from the lifecycle state.
type Health uint32

const (
	HealthUnknown   Health = C.NL_HEALTH_UNKNOWN
	HealthHealthy   Health = C.NL_HEALTH_HEALTHY
	HealthUnhealthy Health = C.NL_HEALTH_UNHEALTHY
)

var healthNames = [...]string{"unknown", "healthy", "unhealthy"}

func (h Health) String() string {
	if int(h) < len(healthNames) {
		return healthNames[h]
	}
	return fmt.Sprintf("Health(%d)", uint32(h))
}

func (h Health) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

func (h *Health) UnmarshalText(b []byte) error {
	for i, n := range healthNames {
		if n == string(b) {
			*h = Health(i)
			return nil
		}
	}
	return fmt.Errorf("lifecycle: unknown health %q", b)
}

// Origin is how a node came to be known; it decides the starting state and protection.
type Origin uint32

const (
	// OriginCloud: provisioned by the conductor; starts provisioning.
	OriginCloud Origin = C.NL_ORIGIN_CLOUD
	// OriginSystem: local, proxy or control-plane node; starts active, never decommissioned.
	OriginSystem Origin = C.NL_ORIGIN_SYSTEM
	// OriginDedicated: a dedicated machine; never decommissioned by policy.
	OriginDedicated Origin = C.NL_ORIGIN_DEDICATED
	// OriginRecovered: a cloud node found after a restart; starts ready with container sync pending.
	OriginRecovered Origin = C.NL_ORIGIN_RECOVERED
)

var originNames = [...]string{"cloud", "system", "dedicated", "recovered"}

func (o Origin) String() string {
	if int(o) < len(originNames) {
		return originNames[o]
	}
	return fmt.Sprintf("Origin(%d)", uint32(o))
}

func (o Origin) MarshalText() ([]byte, error) { return []byte(o.String()), nil }

func (o *Origin) UnmarshalText(b []byte) error {
	for i, n := range originNames {
		if n == string(b) {
			*o = Origin(i)
			return nil
		}
	}
	return fmt.Errorf("lifecycle: unknown origin %q", b)
}

// Reason is why a node may not be decommissioned. The numbers are shared with Rust and C and
// never reused. A Reason is also an error value for errors.Is:
//
//	if errors.Is(err, lifecycle.ReasonHasContainers) { ... }
type Reason uint32

const (
	ReasonSystemNode             Reason = C.NL_REASON_SYSTEM_NODE
	ReasonDedicatedNode          Reason = C.NL_REASON_DEDICATED_NODE
	ReasonStillStarting          Reason = C.NL_REASON_STILL_STARTING
	ReasonHasContainers          Reason = C.NL_REASON_HAS_CONTAINERS
	ReasonHasReservations        Reason = C.NL_REASON_HAS_RESERVATIONS
	ReasonHasHolds               Reason = C.NL_REASON_HAS_HOLDS
	ReasonReadyTooYoung          Reason = C.NL_REASON_READY_TOO_YOUNG
	ReasonIdleTooRecent          Reason = C.NL_REASON_IDLE_TOO_RECENT
	ReasonNoContainerHistory     Reason = C.NL_REASON_NO_CONTAINER_HISTORY
	ReasonContainerSyncPending   Reason = C.NL_REASON_CONTAINER_SYNC_PENDING
	ReasonRecoveryGrace          Reason = C.NL_REASON_RECOVERY_GRACE
	ReasonAlreadyDecommissioned  Reason = C.NL_REASON_ALREADY_DECOMMISSIONED
	ReasonDecommissionInProgress Reason = C.NL_REASON_DECOMMISSION_IN_PROGRESS
	ReasonNodeNotFound           Reason = C.NL_REASON_NODE_NOT_FOUND
)

var reasonNames = [...]string{
	"system_node", "dedicated_node", "still_starting", "has_containers", "has_reservations",
	"has_holds", "ready_too_young", "idle_too_recent", "no_container_history",
	"container_sync_pending", "recovery_grace", "already_decommissioned",
	"decommission_in_progress", "node_not_found",
}

func (r Reason) String() string {
	if r >= 100 && int(r-100) < len(reasonNames) {
		return reasonNames[r-100]
	}
	return fmt.Sprintf("Reason(%d)", uint32(r))
}

// Error makes a Reason usable as an errors.Is target; its text is the reason's name.
func (r Reason) Error() string { return r.String() }

// IsTimer reports whether only time stands in the way for this reason.
func (r Reason) IsTimer() bool {
	return r == ReasonReadyTooYoung || r == ReasonIdleTooRecent || r == ReasonRecoveryGrace
}

// Action is the kind of an audit entry.
type Action uint32

const (
	ActionNodeDecommission    Action = C.NL_AUDIT_ACTION_NODE_DECOMMISSION
	ActionNodeProvision       Action = C.NL_AUDIT_ACTION_NODE_PROVISION
	ActionContainerMigrate    Action = C.NL_AUDIT_ACTION_CONTAINER_MIGRATE
	ActionScaleUp             Action = C.NL_AUDIT_ACTION_SCALE_UP
	ActionScaleDown           Action = C.NL_AUDIT_ACTION_SCALE_DOWN
	ActionLifecycleTransition Action = C.NL_AUDIT_ACTION_LIFECYCLE_TRANSITION
	ActionRecovery            Action = C.NL_AUDIT_ACTION_RECOVERY
)

var actionNames = [...]string{"node_decommission", "node_provision", "container_migrate", "scale_up", "scale_down", "lifecycle_transition", "recovery"}

func (a Action) String() string {
	if int(a) < len(actionNames) {
		return actionNames[a]
	}
	return fmt.Sprintf("Action(%d)", uint32(a))
}

func (a Action) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

func (a *Action) UnmarshalText(b []byte) error {
	for i, n := range actionNames {
		if n == string(b) {
			*a = Action(i)
			return nil
		}
	}
	return fmt.Errorf("lifecycle: unknown audit action %q", b)
}

// Result is the outcome recorded in an audit entry.
type Result uint32

const (
	ResultSuccess  Result = C.NL_AUDIT_RESULT_SUCCESS
	ResultRejected Result = C.NL_AUDIT_RESULT_REJECTED
	ResultFailed   Result = C.NL_AUDIT_RESULT_FAILED
)

var resultNames = [...]string{"success", "rejected", "failed"}

func (r Result) String() string {
	if int(r) < len(resultNames) {
		return resultNames[r]
	}
	return fmt.Sprintf("Result(%d)", uint32(r))
}

func (r Result) MarshalText() ([]byte, error) { return []byte(r.String()), nil }

func (r *Result) UnmarshalText(b []byte) error {
	for i, n := range resultNames {
		if n == string(b) {
			*r = Result(i)
			return nil
		}
	}
	return fmt.Errorf("lifecycle: unknown audit result %q", b)
}
