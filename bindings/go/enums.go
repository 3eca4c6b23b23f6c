package lifecycle

import "fmt"

// The numbers below are the C header's (include/node_lifecycle.h). They are spelled out here,
// not taken from cgo, so that the package builds without cgo too (the WebAssembly backend);
// TestEnumsMatchHeader checks every one against the header.

// State is a node's lifecycle state.
type State uint32

const (
	StateProvisioning   State = 0
	StateInitializing   State = 1
	StateReady          State = 2
	StateActive         State = 3
	StateIdle           State = 4
	StateDraining       State = 5
	StateDecommissioned State = 6
	StateUnhealthy      State = 7
)

var stateNames = []string{"provisioning", "initializing", "ready", "active", "idle", "draining", "decommissioned", "unhealthy"}

func (s State) String() string { return enumName(stateNames, uint32(s), "State") }

// ParseState is the inverse of State.String.
func ParseState(name string) (State, error) {
	v, err := parseEnum(stateNames, name, "state")
	return State(v), err
}

func (s State) MarshalText() ([]byte, error) { return marshalEnum(stateNames, uint32(s), "state") }

func (s *State) UnmarshalText(b []byte) error {
	v, err := parseEnum(stateNames, string(b), "state")
	*s = State(v)
	return err
}

// Health is the health checker's view, separate from the lifecycle state.
type Health uint32

const (
	HealthUnknown   Health = 0
	HealthHealthy   Health = 1
	HealthUnhealthy Health = 2
)

var healthNames = []string{"unknown", "healthy", "unhealthy"}

func (h Health) String() string { return enumName(healthNames, uint32(h), "Health") }

func (h Health) MarshalText() ([]byte, error) { return marshalEnum(healthNames, uint32(h), "health") }

func (h *Health) UnmarshalText(b []byte) error {
	v, err := parseEnum(healthNames, string(b), "health")
	*h = Health(v)
	return err
}

// Origin is how a node came to be known; it decides the starting state and protection.
type Origin uint32

const (
	// OriginCloud: provisioned by the conductor; starts provisioning (or ready when booted
	// from a prepared image, NodeSpec.BootedFromImage).
	OriginCloud Origin = 0
	// OriginSystem: local, proxy or control-plane node; starts active, never decommissioned.
	OriginSystem Origin = 1
	// OriginDedicated: a dedicated machine; never decommissioned by policy.
	OriginDedicated Origin = 2
	// OriginRecovered: a cloud node found after a restart; starts ready with container sync pending.
	OriginRecovered Origin = 3
)

var originNames = []string{"cloud", "system", "dedicated", "recovered"}

func (o Origin) String() string { return enumName(originNames, uint32(o), "Origin") }

func (o Origin) MarshalText() ([]byte, error) { return marshalEnum(originNames, uint32(o), "origin") }

func (o *Origin) UnmarshalText(b []byte) error {
	v, err := parseEnum(originNames, string(b), "origin")
	*o = Origin(v)
	return err
}

// Reason is why a node may not be decommissioned. The numbers are shared with Rust and C and
// never reused. A Reason is also an error value for errors.Is:
//
//	if errors.Is(err, lifecycle.ReasonHasContainers) { ... }
type Reason uint32

const (
	ReasonSystemNode             Reason = 100
	ReasonDedicatedNode          Reason = 101
	ReasonStillStarting          Reason = 102
	ReasonHasContainers          Reason = 103
	ReasonHasReservations        Reason = 104
	ReasonHasHolds               Reason = 105
	ReasonReadyTooYoung          Reason = 106
	ReasonIdleTooRecent          Reason = 107
	ReasonNoContainerHistory     Reason = 108
	ReasonContainerSyncPending   Reason = 109
	ReasonRecoveryGrace          Reason = 110
	ReasonAlreadyDecommissioned  Reason = 111
	ReasonDecommissionInProgress Reason = 112
	ReasonNodeNotFound           Reason = 113
	// ReasonUnhealthyTooRecent: unhealthy for less than Policy.UnhealthyGrace and the provider
	// has not confirmed its VM is gone (Fleet.ConfirmGone): a health blip is not a reason to
	// delete a live worker.
	ReasonUnhealthyTooRecent Reason = 114
)

var reasonNames = []string{
	"system_node", "dedicated_node", "still_starting", "has_containers", "has_reservations",
	"has_holds", "ready_too_young", "idle_too_recent", "no_container_history",
	"container_sync_pending", "recovery_grace", "already_decommissioned",
	"decommission_in_progress", "node_not_found", "unhealthy_too_recent",
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
	return r == ReasonReadyTooYoung || r == ReasonIdleTooRecent || r == ReasonRecoveryGrace ||
		r == ReasonUnhealthyTooRecent
}

func (r Reason) MarshalText() ([]byte, error) {
	if r >= 100 && int(r-100) < len(reasonNames) {
		return []byte(reasonNames[r-100]), nil
	}
	return nil, &Error{Code: CodeUnknownEnum, Message: fmt.Sprintf("no reason has the code %d", uint32(r))}
}

func (r *Reason) UnmarshalText(b []byte) error {
	v, err := parseEnum(reasonNames, string(b), "reason")
	*r = Reason(v + 100)
	if err != nil {
		*r = 0
	}
	return err
}

// Action is the kind of an audit entry.
type Action uint32

const (
	ActionNodeDecommission    Action = 0
	ActionNodeProvision       Action = 1
	ActionContainerMigrate    Action = 2
	ActionScaleUp             Action = 3
	ActionScaleDown           Action = 4
	ActionLifecycleTransition Action = 5
	ActionRecovery            Action = 6
	ActionNodeCordon          Action = 7
	ActionNodeUncordon        Action = 8
	ActionNodeRenamed         Action = 9
	ActionNodeUpdate          Action = 10
	ActionReservationExpired  Action = 11
)

var actionNames = []string{
	"node_decommission", "node_provision", "container_migrate", "scale_up", "scale_down",
	"lifecycle_transition", "recovery", "node_cordon", "node_uncordon", "node_renamed",
	"node_update", "reservation_expired",
}

func (a Action) String() string { return enumName(actionNames, uint32(a), "Action") }

// ParseAction is the inverse of Action.String.
func ParseAction(name string) (Action, error) {
	v, err := parseEnum(actionNames, name, "audit action")
	return Action(v), err
}

func (a Action) MarshalText() ([]byte, error) {
	return marshalEnum(actionNames, uint32(a), "audit action")
}

func (a *Action) UnmarshalText(b []byte) error {
	v, err := ParseAction(string(b))
	*a = v
	return err
}

// Result is the outcome recorded in an audit entry.
type Result uint32

const (
	ResultSuccess  Result = 0
	ResultRejected Result = 1
	ResultFailed   Result = 2
)

var resultNames = []string{"success", "rejected", "failed"}

func (r Result) String() string { return enumName(resultNames, uint32(r), "Result") }

// ParseResult is the inverse of Result.String.
func ParseResult(name string) (Result, error) {
	v, err := parseEnum(resultNames, name, "audit result")
	return Result(v), err
}

func (r Result) MarshalText() ([]byte, error) {
	return marshalEnum(resultNames, uint32(r), "audit result")
}

func (r *Result) UnmarshalText(b []byte) error {
	v, err := ParseResult(string(b))
	*r = v
	return err
}

func enumName(names []string, v uint32, typ string) string {
	if int(v) < len(names) {
		return names[v]
	}
	return fmt.Sprintf("%s(%d)", typ, v)
}

// marshalEnum refuses values without a name, so that a bad value never reaches the library
// or a stored document as "State(9)".
func marshalEnum(names []string, v uint32, what string) ([]byte, error) {
	if int(v) < len(names) {
		return []byte(names[v]), nil
	}
	return nil, &Error{Code: CodeUnknownEnum, Message: fmt.Sprintf("%d is not a valid %s", v, what)}
}

func parseEnum(names []string, name, what string) (uint32, error) {
	for i, n := range names {
		if n == name {
			return uint32(i), nil
		}
	}
	return 0, &Error{Code: CodeUnknownEnum, Message: fmt.Sprintf("unknown %s %q", what, name)}
}
