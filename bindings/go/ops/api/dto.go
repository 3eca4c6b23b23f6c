package api

import (
	"time"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// The wire types: stable snake_case names, times in RFC 3339 (UTC), durations in milliseconds
// with the unit in the name. openapi.yaml describes each; the tests validate every response
// against it.

func utc(t time.Time) time.Time { return t.UTC() }

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

type reasonDTO struct {
	Code    uint32 `json:"code"`
	Name    string `json:"name"`
	Message string `json:"message,omitempty"`
}

type markDTO struct {
	Name   string `json:"name"`
	Detail string `json:"detail"`
}

type verdictDTO struct {
	Allowed           bool        `json:"allowed"`
	State             string      `json:"state"`
	Reasons           []reasonDTO `json:"reasons"`
	Message           string      `json:"message,omitempty"`
	RetryAfter        *time.Time  `json:"retry_after,omitempty"`
	Holds             []markDTO   `json:"holds"`
	Cordons           []markDTO   `json:"cordons"`
	IdleGraceWaivedBy *string     `json:"idle_grace_waived_by,omitempty"`
}

func marks(in []lifecycle.Mark) []markDTO {
	out := make([]markDTO, 0, len(in))
	for _, m := range in {
		out = append(out, markDTO{Name: m.Name, Detail: m.Detail})
	}
	return out
}

func verdictOf(v lifecycle.Verdict) verdictDTO {
	x := v.Explanation
	if x == nil {
		x = &lifecycle.Explanation{}
	}
	out := verdictDTO{
		Allowed: v.Allowed, State: v.State.String(), Reasons: make([]reasonDTO, 0, len(v.Reasons)),
		Message: x.Message, RetryAfter: optTime(v.RetryAfter), Holds: marks(x.Holds),
		Cordons: marks(x.Cordons), IdleGraceWaivedBy: optString(x.IdleGraceWaivedBy),
	}
	for i, r := range v.Reasons {
		d := reasonDTO{Code: uint32(r), Name: r.String()}
		if i < len(x.Messages) {
			d.Message = x.Messages[i]
		}
		out.Reasons = append(out.Reasons, d)
	}
	return out
}

type claimDTO struct {
	ID          string     `json:"id"`
	RAMMB       int        `json:"ram_mb"`
	ContainerID *string    `json:"container_id,omitempty"`
	CreatedAt   time.Time  `json:"created_at"`
	ExpiresAt   *time.Time `json:"expires_at,omitempty"`
}

type cordonDTO struct {
	Name     string    `json:"name"`
	Reason   string    `json:"reason"`
	Evacuate bool      `json:"evacuate"`
	PlacedAt time.Time `json:"placed_at"`
}

// decommissionDTO is a decommission in flight as a node view shows it: who started it and
// when, but not the ticket (a ticket completes, fails or cancels it; reading it needs the
// authorisation hook, GET /nodes/{id}/ticket).
type decommissionDTO struct {
	DecisionBy    string    `json:"decision_by"`
	IssuedAt      time.Time `json:"issued_at"`
	PreDrainState string    `json:"pre_drain_state"`
}

type nodeDTO struct {
	ID                        string            `json:"id"`
	Origin                    string            `json:"origin"`
	State                     string            `json:"state"`
	Health                    string            `json:"health"`
	Schedulable               bool              `json:"schedulable"`
	InstanceType              string            `json:"instance_type"`
	HourlyCostEUR             float64           `json:"hourly_cost_eur"`
	Labels                    map[string]string `json:"labels"`
	TotalRAMMB                int               `json:"total_ram_mb"`
	AllocatedRAMMB            int               `json:"allocated_ram_mb"`
	ReservedRAMMB             int               `json:"reserved_ram_mb"`
	Containers                map[string]int    `json:"containers"`
	Claims                    []claimDTO        `json:"claims"`
	Holds                     map[string]string `json:"holds"`
	Cordons                   []cordonDTO       `json:"cordons"`
	EvacuatedBy               *string           `json:"evacuated_by,omitempty"`
	ConsecutiveHealthFailures int               `json:"consecutive_health_failures"`
	ProvisionedAt             time.Time         `json:"provisioned_at"`
	InitializedAt             *time.Time        `json:"initialized_at"`
	FirstContainerAt          *time.Time        `json:"first_container_at"`
	LastContainerAt           *time.Time        `json:"last_container_at"`
	TotalContainersEver       uint64            `json:"total_containers_ever"`
	StateEnteredAt            time.Time         `json:"state_entered_at"`
	TimeInStateMs             map[string]int64  `json:"time_in_state_ms"`
	RecoveredAt               *time.Time        `json:"recovered_at"`
	ContainerSyncPending      bool              `json:"container_sync_pending"`
	Decommission              *decommissionDTO  `json:"decommission"`
	Verdict                   verdictDTO        `json:"verdict"`
}

func nonNilMap[V any](m map[string]V) map[string]V {
	if m == nil {
		return map[string]V{}
	}
	return m
}

func nodeOf(n lifecycle.Node, v lifecycle.Verdict) nodeDTO {
	d := nodeDTO{
		ID: n.ID, Origin: n.Origin.String(), State: n.State.String(), Health: n.Health.String(),
		Schedulable: n.Schedulable, InstanceType: n.InstanceType, HourlyCostEUR: n.HourlyCost,
		Labels:     nonNilMap(n.Labels),
		TotalRAMMB: n.TotalRAMMB, AllocatedRAMMB: n.AllocatedRAMMB, ReservedRAMMB: n.ReservedRAMMB,
		Containers: nonNilMap(n.Containers), Claims: make([]claimDTO, 0, len(n.Claims)),
		Holds: nonNilMap(n.Holds), Cordons: make([]cordonDTO, 0, len(n.Cordons)),
		EvacuatedBy:               optString(n.EvacuatedBy),
		ConsecutiveHealthFailures: n.ConsecutiveHealthFailures,
		ProvisionedAt:             utc(n.ProvisionedAt),
		InitializedAt:             optTime(n.InitializedAt),
		FirstContainerAt:          optTime(n.FirstContainerAt),
		LastContainerAt:           optTime(n.LastContainerAt),
		TotalContainersEver:       n.TotalContainersEver,
		StateEnteredAt:            utc(n.StateEnteredAt),
		TimeInStateMs:             map[string]int64{},
		RecoveredAt:               optTime(n.RecoveredAt),
		ContainerSyncPending:      n.ContainerSyncPending,
		Verdict:                   verdictOf(v),
	}
	for _, c := range n.Claims {
		d.Claims = append(d.Claims, claimDTO{ID: c.ID.String(), RAMMB: c.RAMMB, ContainerID: optString(c.ContainerID),
			CreatedAt: utc(c.CreatedAt), ExpiresAt: optTime(c.ExpiresAt)})
	}
	for _, c := range n.Cordons {
		d.Cordons = append(d.Cordons, cordonDTO{Name: c.Name, Reason: c.Reason, Evacuate: c.Evacuate, PlacedAt: utc(c.PlacedAt)})
	}
	for s, dur := range n.TimeInState {
		d.TimeInStateMs[s.String()] = dur.Milliseconds()
	}
	if t := n.Decommission; t != nil {
		d.Decommission = &decommissionDTO{DecisionBy: t.DecisionBy, IssuedAt: utc(t.IssuedAt), PreDrainState: t.PreDrainState.String()}
	}
	return d
}

type snapshotCordonDTO struct {
	Name     string `json:"name"`
	Reason   string `json:"reason"`
	Evacuate bool   `json:"evacuate"`
}

type snapshotDTO struct {
	State                     string              `json:"state"`
	Health                    string              `json:"health"`
	Origin                    string              `json:"origin"`
	CurrentContainers         int                 `json:"current_containers"`
	PendingReservations       int                 `json:"pending_reservations"`
	Holds                     []markDTO           `json:"holds"`
	Cordons                   []snapshotCordonDTO `json:"cordons"`
	AllocatedRAMMB            int                 `json:"allocated_ram_mb"`
	ReservedRAMMB             int                 `json:"reserved_ram_mb"`
	TotalRAMMB                int                 `json:"total_ram_mb"`
	HourlyCostEUR             float64             `json:"hourly_cost_eur"`
	InstanceType              string              `json:"instance_type"`
	Labels                    map[string]string   `json:"labels"`
	TotalContainersEver       uint64              `json:"total_containers_ever"`
	AgeMs                     int64               `json:"age_ms"`
	TimeInStateMs             int64               `json:"time_in_state_ms"`
	SinceInitializedMs        *int64              `json:"since_initialized_ms"`
	IdleForMs                 *int64              `json:"idle_for_ms"`
	ContainerSyncPending      bool                `json:"container_sync_pending"`
	EvacuatedBy               *string             `json:"evacuated_by,omitempty"`
	ConsecutiveHealthFailures int                 `json:"consecutive_health_failures"`
}

func optMs(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

type entryDTO struct {
	Seq           uint64       `json:"seq"`
	Time          time.Time    `json:"time"`
	Action        string       `json:"action"`
	NodeID        string       `json:"node_id"`
	ContainerID   *string      `json:"container_id,omitempty"`
	ReasonCode    uint32       `json:"reason_code"`
	Reason        string       `json:"reason"`
	DecisionBy    string       `json:"decision_by"`
	Result        string       `json:"result"`
	Error         *string      `json:"error,omitempty"`
	FromState     *string      `json:"from_state,omitempty"`
	ToState       *string      `json:"to_state,omitempty"`
	RelatedNodeID *string      `json:"related_node_id,omitempty"`
	RAMMB         *int         `json:"ram_mb,omitempty"`
	AgeMs         *int64       `json:"age_ms,omitempty"`
	Snapshot      *snapshotDTO `json:"snapshot,omitempty"`
}

func stateName(s *lifecycle.State) *string {
	if s == nil {
		return nil
	}
	n := s.String()
	return &n
}

func entryOf(e lifecycle.AuditEntry) entryDTO {
	d := entryDTO{
		Seq: e.Seq, Time: utc(e.Time), Action: e.Action.String(), NodeID: e.NodeID,
		ContainerID: optString(e.ContainerID), ReasonCode: uint32(e.ReasonCode), Reason: e.Reason,
		DecisionBy: e.DecisionBy, Result: e.Result.String(), Error: optString(e.Error),
		FromState: stateName(e.FromState), ToState: stateName(e.ToState),
		RelatedNodeID: optString(e.RelatedNodeID), RAMMB: e.RAMMB, AgeMs: optMs(e.Age),
	}
	if s := e.Snapshot; s != nil {
		snap := &snapshotDTO{
			State: s.State.String(), Health: s.Health.String(), Origin: s.Origin.String(),
			CurrentContainers: s.CurrentContainers, PendingReservations: s.PendingReservations,
			Holds: marks(s.Holds), Cordons: make([]snapshotCordonDTO, 0, len(s.Cordons)),
			AllocatedRAMMB: s.AllocatedRAMMB, ReservedRAMMB: s.ReservedRAMMB, TotalRAMMB: s.TotalRAMMB,
			HourlyCostEUR: s.HourlyCost, InstanceType: s.InstanceType, Labels: nonNilMap(s.Labels),
			TotalContainersEver: s.TotalContainersEver, AgeMs: s.Age.Milliseconds(),
			TimeInStateMs: s.TimeInState.Milliseconds(), SinceInitializedMs: optMs(s.SinceInitialized),
			IdleForMs: optMs(s.IdleFor), ContainerSyncPending: s.ContainerSyncPending,
			EvacuatedBy: optString(s.EvacuatedBy), ConsecutiveHealthFailures: s.ConsecutiveHealthFailures,
		}
		for _, c := range s.Cordons {
			snap.Cordons = append(snap.Cordons, snapshotCordonDTO{Name: c.Name, Reason: c.Reason, Evacuate: c.Evacuate})
		}
		d.Snapshot = snap
	}
	return d
}

type ticketRefDTO struct {
	ID     string `json:"id"`
	NodeID string `json:"node_id"`
}

func ticketRef(t lifecycle.Ticket) *ticketRefDTO {
	return &ticketRefDTO{ID: t.ID.String(), NodeID: t.NodeID}
}
