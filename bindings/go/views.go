package lifecycle

import (
	"encoding/json"
	"time"
)

// Node is everything the fleet knows about one node. Its fields are maintained by events;
// there is nothing to write back.
type Node struct {
	ID     string
	Origin Origin
	State  State
	Health Health
	// Schedulable: placement may put a container here now (ready, active or idle, no cordons).
	Schedulable    bool
	InstanceType   string
	HourlyCost     float64 // EUR per hour
	Labels         map[string]string
	TotalRAMMB     int
	AllocatedRAMMB int
	ReservedRAMMB  int
	Containers     map[string]int // id -> RAM MB
	// Claims are claims and keyed reservations not yet confirmed or released.
	Claims  []ClaimInfo
	Holds   map[string]string // name -> detail
	Cordons []CordonInfo
	// EvacuatedBy names the evacuate cordon under which the node was emptied (the idle grace
	// is waived while it is in place).
	EvacuatedBy               string
	ConsecutiveHealthFailures int
	ProvisionedAt             time.Time
	InitializedAt             time.Time // zero until cloud-init completed
	FirstContainerAt          time.Time // zero if never
	LastContainerAt           time.Time // zero if never
	TotalContainersEver       uint64
	StateEnteredAt            time.Time
	TimeInState               map[State]time.Duration
	RecoveredAt               time.Time // zero unless recovered after a restart
	ContainerSyncPending      bool
	ContainerSyncCompletedAt  time.Time
	// Decommission is the outstanding ticket, if a decommission is in flight.
	Decommission *TicketInfo
	// Placeholder: registered before its VM existed (NodeSpec.Placeholder) and not yet bound
	// to it with Rename. After a crash, a placeholder without a VM is abandoned
	// (AbandonProvisioning).
	Placeholder bool
	// HealthReportedAt is when the last health result was reported (zero if never).
	HealthReportedAt time.Time
	// GoneAtProvider is set while the node is unhealthy and the provider confirmed its VM is
	// gone (Fleet.ConfirmGone).
	GoneAtProvider *GoneAtProvider
}

// GoneAtProvider is the provider's word that a node's VM no longer exists.
type GoneAtProvider struct {
	ConfirmedAt time.Time
	Evidence    string
}

// ClaimInfo is a claim (or keyed reservation) on a node.
type ClaimInfo struct {
	ID          ClaimID
	RAMMB       int
	ContainerID string // set for a keyed reservation
	CreatedAt   time.Time
	ExpiresAt   time.Time // zero when it never expires
}

// CordonInfo is a cordon on a node.
type CordonInfo struct {
	Name     string
	Reason   string
	Evacuate bool
	PlacedAt time.Time
}

type nodeJSON struct {
	ID             string            `json:"id"`
	Origin         Origin            `json:"origin"`
	State          State             `json:"state"`
	Health         Health            `json:"health"`
	Schedulable    bool              `json:"schedulable"`
	InstanceType   string            `json:"instance_type"`
	HourlyCostEUR  float64           `json:"hourly_cost_eur"`
	Labels         map[string]string `json:"labels"`
	TotalRAMMB     int               `json:"total_ram_mb"`
	AllocatedRAMMB int               `json:"allocated_ram_mb"`
	ReservedRAMMB  int               `json:"reserved_ram_mb"`
	Containers     map[string]int    `json:"containers"`
	Claims         []struct {
		ID          ClaimID `json:"id"`
		RAMMB       int     `json:"ram_mb"`
		ContainerID *string `json:"container_id"`
		CreatedAtMs int64   `json:"created_at_ms"`
		ExpiresAtMs *int64  `json:"expires_at_ms"`
	} `json:"claims"`
	Holds   map[string]string `json:"holds"`
	Cordons []struct {
		Name       string `json:"name"`
		Reason     string `json:"reason"`
		Evacuate   bool   `json:"evacuate"`
		PlacedAtMs int64  `json:"placed_at_ms"`
	} `json:"cordons"`
	EvacuatedBy                *string          `json:"evacuated_by"`
	ConsecutiveHealthFailures  int              `json:"consecutive_health_failures"`
	ProvisionedAtMs            int64            `json:"provisioned_at_ms"`
	InitializedAtMs            *int64           `json:"initialized_at_ms"`
	FirstContainerAtMs         *int64           `json:"first_container_at_ms"`
	LastContainerAtMs          *int64           `json:"last_container_at_ms"`
	TotalContainersEver        uint64           `json:"total_containers_ever"`
	StateEnteredAtMs           int64            `json:"state_entered_at_ms"`
	TimeInStateMs              map[State]uint64 `json:"time_in_state_ms"`
	RecoveredAtMs              *int64           `json:"recovered_at_ms"`
	ContainerSyncPending       bool             `json:"container_sync_pending"`
	ContainerSyncCompletedAtMs *int64           `json:"container_sync_completed_at_ms"`
	Decommission               *struct {
		Ticket        TicketID `json:"ticket"`
		DecisionBy    string   `json:"decision_by"`
		IssuedAtMs    int64    `json:"issued_at_ms"`
		PreDrainState State    `json:"pre_drain_state"`
	} `json:"decommission"`
	Placeholder        bool   `json:"placeholder"`
	HealthReportedAtMs *int64 `json:"health_reported_at_ms"`
	GoneAtProvider     *struct {
		ConfirmedAtMs int64  `json:"confirmed_at_ms"`
		Evidence      string `json:"evidence"`
	} `json:"gone_at_provider"`
}

func (n *Node) UnmarshalJSON(b []byte) error {
	var j nodeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*n = j.node()
	return nil
}

// node converts the library's form. Pages decode straight into nodeJSON and call this, so a
// node's bytes are scanned once (a nested UnmarshalJSON would scan them again).
func (j *nodeJSON) node() Node {
	n := Node{
		ID: j.ID, Origin: j.Origin, State: j.State, Health: j.Health, Schedulable: j.Schedulable,
		InstanceType: j.InstanceType, HourlyCost: j.HourlyCostEUR, Labels: j.Labels,
		TotalRAMMB: j.TotalRAMMB, AllocatedRAMMB: j.AllocatedRAMMB, ReservedRAMMB: j.ReservedRAMMB,
		Containers: j.Containers, Holds: j.Holds,
		Claims:                    make([]ClaimInfo, 0, len(j.Claims)),
		Cordons:                   make([]CordonInfo, 0, len(j.Cordons)),
		EvacuatedBy:               fromOptString(j.EvacuatedBy),
		ConsecutiveHealthFailures: j.ConsecutiveHealthFailures,
		ProvisionedAt:             time.UnixMilli(j.ProvisionedAtMs),
		InitializedAt:             optTime(j.InitializedAtMs),
		FirstContainerAt:          optTime(j.FirstContainerAtMs),
		LastContainerAt:           optTime(j.LastContainerAtMs),
		TotalContainersEver:       j.TotalContainersEver,
		StateEnteredAt:            time.UnixMilli(j.StateEnteredAtMs),
		TimeInState:               make(map[State]time.Duration, len(j.TimeInStateMs)),
		RecoveredAt:               optTime(j.RecoveredAtMs),
		ContainerSyncPending:      j.ContainerSyncPending,
		ContainerSyncCompletedAt:  optTime(j.ContainerSyncCompletedAtMs),
		Placeholder:               j.Placeholder,
		HealthReportedAt:          optTime(j.HealthReportedAtMs),
	}
	if g := j.GoneAtProvider; g != nil {
		n.GoneAtProvider = &GoneAtProvider{ConfirmedAt: time.UnixMilli(g.ConfirmedAtMs), Evidence: g.Evidence}
	}
	if n.Labels == nil {
		n.Labels = map[string]string{}
	}
	for _, c := range j.Claims {
		n.Claims = append(n.Claims, ClaimInfo{
			ID: c.ID, RAMMB: c.RAMMB, ContainerID: fromOptString(c.ContainerID),
			CreatedAt: time.UnixMilli(c.CreatedAtMs), ExpiresAt: optTime(c.ExpiresAtMs),
		})
	}
	for _, c := range j.Cordons {
		n.Cordons = append(n.Cordons, CordonInfo{Name: c.Name, Reason: c.Reason, Evacuate: c.Evacuate, PlacedAt: time.UnixMilli(c.PlacedAtMs)})
	}
	for s, ms := range j.TimeInStateMs {
		n.TimeInState[s] = msDuration(ms)
	}
	if d := j.Decommission; d != nil {
		n.Decommission = &TicketInfo{
			Ticket:     Ticket{ID: d.Ticket, NodeID: j.ID},
			DecisionBy: d.DecisionBy, IssuedAt: time.UnixMilli(d.IssuedAtMs), PreDrainState: d.PreDrainState,
		}
	}
	return n
}

// Node returns one node's current record.
func (f *Fleet) Node(id string) (Node, error) {
	var n Node
	err := f.do(op{"op": "node", "node": id}, &n)
	return n, err
}

// NodeRow returns one node with its verdict, both from one read of the fleet (they agree).
// ErrNodeNotFound for an unknown id.
func (f *Fleet) NodeRow(id string) (NodeRow, error) {
	var row NodeRow
	err := f.do(op{"op": "node_row", "node": id}, &row)
	return row, err
}

// Nodes returns every node, ordered by id. Never nil. It copies the whole fleet: an operations
// endpoint should page with NodesPage instead.
func (f *Fleet) Nodes() ([]Node, error) {
	out := []Node{}
	err := f.do(op{"op": "nodes"}, &out)
	return out, err
}

// NodeQuery selects a page of nodes, ordered by id.
type NodeQuery struct {
	// After: only nodes whose id sorts after this one (the previous page's NextAfter).
	After string
	// State: only nodes in this state (nil: every state).
	State *State
	// Limit: at most this many nodes (0 returns none).
	Limit int
}

// NodeRow is a node with its verdict, both read under one lock hold (they always agree).
type NodeRow struct {
	Node    Node    `json:"node"`
	Verdict Verdict `json:"verdict"`
}

// NodesPage is a page of nodes.
type NodesPage struct {
	Rows []NodeRow `json:"nodes"`
	// NextAfter, when set, is the After of the next page.
	NextAfter string `json:"-"`
}

// NodesPage returns a page of nodes with their verdicts, at a cost of O(log n + limit)
// whatever the fleet's size; the fleet's lock is held only while the page is copied.
func (f *Fleet) NodesPage(q NodeQuery) (NodesPage, error) {
	if q.Limit < 0 {
		return NodesPage{}, invalidArgument("limit %d is negative", q.Limit)
	}
	query := map[string]any{"limit": q.Limit}
	if q.After != "" {
		query["after"] = q.After
	}
	if q.State != nil {
		query["state"] = *q.State
	}
	var out struct {
		Nodes []struct {
			Node    nodeJSON    `json:"node"`
			Verdict verdictJSON `json:"verdict"`
		} `json:"nodes"`
		NextAfter *string `json:"next_after"`
	}
	if err := f.do(op{"op": "nodes_page", "query": query}, &out); err != nil {
		return NodesPage{}, err
	}
	rows := make([]NodeRow, len(out.Nodes))
	for i := range out.Nodes {
		rows[i] = NodeRow{Node: out.Nodes[i].Node.node(), Verdict: out.Nodes[i].Verdict.verdict()}
	}
	return NodesPage{Rows: rows, NextAfter: fromOptString(out.NextAfter)}, nil
}

// Summary is counts over the whole fleet, for gauges (metrics, dashboards).
type Summary struct {
	Nodes int `json:"nodes"`
	// ByStateAndHealth has a row for every (state, health) pair that occurs.
	ByStateAndHealth []StateHealthCount `json:"by_state_and_health"`
	// CordonedNodes have at least one cordon; Cordons counts them all.
	CordonedNodes int `json:"cordoned_nodes"`
	Cordons       int `json:"cordons"`
	// Claims are claims and keyed reservations not yet confirmed or released.
	Claims     int `json:"claims"`
	Holds      int `json:"holds"`
	Containers int `json:"containers"`
	// DecommissionsInProgress counts nodes with an outstanding ticket.
	DecommissionsInProgress int `json:"decommissions_in_progress"`
	TotalRAMMB              int `json:"total_ram_mb"`
	AllocatedRAMMB          int `json:"allocated_ram_mb"`
	ReservedRAMMB           int `json:"reserved_ram_mb"`
	// Restoring: a restore pass is open (Fleet.Restoring).
	Restoring bool `json:"restoring"`
	// Placeholders not yet bound to their VM.
	Placeholders int `json:"placeholders"`
}

// StateHealthCount is one row of Summary.ByStateAndHealth.
type StateHealthCount struct {
	State  State  `json:"state"`
	Health Health `json:"health"`
	Nodes  int    `json:"nodes"`
}

// Summary counts the fleet's nodes by state and health, cordons, claims, holds, containers and
// RAM in one call, without copying any node: what a metrics scrape needs.
func (f *Fleet) Summary() (Summary, error) {
	var s Summary
	if err := f.do(op{"op": "summary"}, &s); err != nil {
		return Summary{}, err
	}
	s.ByStateAndHealth = nonNil(s.ByStateAndHealth)
	return s, nil
}
