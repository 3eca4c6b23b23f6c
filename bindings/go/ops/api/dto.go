package api

import (
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// The wire types: stable snake_case names, times in RFC 3339, durations in milliseconds with
// the unit in the name. See openapi.yaml.

type reasonDTO struct {
	Code    uint32 `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

type verdictDTO struct {
	Allowed    bool        `json:"allowed"`
	State      string      `json:"state"`
	Reasons    []reasonDTO `json:"reasons"`
	RetryAfter *time.Time  `json:"retry_after,omitempty"`
}

func verdictOf(v lifecycle.Verdict) verdictDTO {
	out := verdictDTO{Allowed: v.Allowed, State: v.State.String(), Reasons: []reasonDTO{}}
	for i, r := range v.Reasons {
		d := reasonDTO{Code: uint32(r), Name: r.String()}
		if i < len(v.Messages) {
			d.Message = v.Messages[i]
		}
		out.Reasons = append(out.Reasons, d)
	}
	if !v.RetryAfter.IsZero() {
		t := v.RetryAfter.UTC()
		out.RetryAfter = &t
	}
	return out
}

type nodeDTO struct {
	ID                        string            `json:"id"`
	Origin                    string            `json:"origin"`
	State                     string            `json:"state"`
	Health                    string            `json:"health"`
	InstanceType              string            `json:"instance_type"`
	HourlyCostEUR             float64           `json:"hourly_cost_eur"`
	TotalRAMMB                int               `json:"total_ram_mb"`
	AllocatedRAMMB            int               `json:"allocated_ram_mb"`
	ReservedRAMMB             int               `json:"reserved_ram_mb"`
	Containers                map[string]int    `json:"containers"`
	Reservations              map[string]int    `json:"reservations"`
	Holds                     map[string]string `json:"holds"`
	ConsecutiveHealthFailures int               `json:"consecutive_health_failures"`
	ProvisionedAt             time.Time         `json:"provisioned_at"`
	InitializedAt             *time.Time        `json:"initialized_at"`
	FirstContainerAt          *time.Time        `json:"first_container_at"`
	LastContainerAt           *time.Time        `json:"last_container_at"`
	TotalContainersEver       uint64            `json:"total_containers_ever"`
	StateEnteredAt            time.Time         `json:"state_entered_at"`
	TimeInStateMs             map[string]int64  `json:"time_in_state_ms"`
	ContainerSyncPending      bool              `json:"container_sync_pending"`
	DecommissionTicket        *string           `json:"decommission_ticket"`
	Verdict                   verdictDTO        `json:"verdict"`
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func nodeOf(n lifecycle.Node, v lifecycle.Verdict) nodeDTO {
	d := nodeDTO{
		ID: n.ID, Origin: n.Origin.String(), State: n.State.String(), Health: n.Health.String(),
		InstanceType: n.InstanceType, HourlyCostEUR: n.HourlyCost,
		TotalRAMMB: n.TotalRAMMB, AllocatedRAMMB: n.AllocatedRAMMB, ReservedRAMMB: n.ReservedRAMMB,
		Containers: n.Containers, Reservations: map[string]int{}, Holds: n.Holds,
		ConsecutiveHealthFailures: n.ConsecutiveHealthFailures,
		ProvisionedAt:             n.ProvisionedAt.UTC(),
		InitializedAt:             optTime(n.InitializedAt),
		FirstContainerAt:          optTime(n.FirstContainerAt),
		LastContainerAt:           optTime(n.LastContainerAt),
		TotalContainersEver:       n.TotalContainersEver,
		StateEnteredAt:            n.StateEnteredAt.UTC(),
		TimeInStateMs:             map[string]int64{},
		ContainerSyncPending:      n.ContainerSyncPending,
		Verdict:                   verdictOf(v),
	}
	for s, dur := range n.TimeInState {
		d.TimeInStateMs[s.String()] = dur.Milliseconds()
	}
	if n.Decommission != nil {
		id := n.Decommission.Ticket.ID.String()
		d.DecommissionTicket = &id
	}
	return d
}

type snapshotDTO struct {
	State                string `json:"state"`
	Health               string `json:"health"`
	CurrentContainers    int    `json:"current_containers"`
	PendingReservations  int    `json:"pending_reservations"`
	Holds                int    `json:"holds"`
	AllocatedRAMMB       int    `json:"allocated_ram_mb"`
	TotalContainersEver  uint64 `json:"total_containers_ever"`
	AgeMs                int64  `json:"age_ms"`
	TimeInStateMs        int64  `json:"time_in_state_ms"`
	IdleForMs            *int64 `json:"idle_for_ms"`
	ContainerSyncPending bool   `json:"container_sync_pending"`
}

type entryDTO struct {
	Seq         uint64       `json:"seq"`
	Time        time.Time    `json:"time"`
	Action      string       `json:"action"`
	NodeID      string       `json:"node_id"`
	ContainerID string       `json:"container_id,omitempty"`
	ReasonCode  uint32       `json:"reason_code"`
	Reason      string       `json:"reason"`
	DecisionBy  string       `json:"decision_by"`
	Result      string       `json:"result"`
	Error       string       `json:"error,omitempty"`
	FromState   string       `json:"from_state,omitempty"`
	ToState     string       `json:"to_state,omitempty"`
	Snapshot    *snapshotDTO `json:"snapshot,omitempty"`
}

func entryOf(e lifecycle.AuditEntry) entryDTO {
	d := entryDTO{
		Seq: e.Seq, Time: e.Time.UTC(), Action: e.Action.String(), NodeID: e.NodeID,
		ContainerID: e.ContainerID, ReasonCode: uint32(e.ReasonCode), Reason: e.Reason,
		DecisionBy: e.DecisionBy, Result: e.Result.String(), Error: e.Error,
	}
	if e.FromState != nil {
		d.FromState = e.FromState.String()
	}
	if e.ToState != nil {
		d.ToState = e.ToState.String()
	}
	if s := e.Snapshot; s != nil {
		d.Snapshot = &snapshotDTO{
			State: s.State.String(), Health: s.Health.String(), CurrentContainers: s.CurrentContainers,
			PendingReservations: s.PendingReservations, Holds: len(s.Holds), AllocatedRAMMB: s.AllocatedRAMMB,
			TotalContainersEver: s.TotalContainersEver, AgeMs: s.Age.Milliseconds(),
			TimeInStateMs: s.TimeInState.Milliseconds(), ContainerSyncPending: s.ContainerSyncPending,
		}
		if s.IdleFor != nil {
			ms := s.IdleFor.Milliseconds()
			d.Snapshot.IdleForMs = &ms
		}
	}
	return d
}

type errorDTO struct {
	Error string `json:"error"`
	// Code is the library's numeric code when the error came from it.
	Code    uint32      `json:"code,omitempty"`
	Verdict *verdictDTO `json:"verdict,omitempty"`
}
