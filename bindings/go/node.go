package lifecycle

// #include "node_lifecycle.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"time"
)

// Node is everything the fleet knows about one node. Its fields are maintained by events;
// there is nothing to write back.
type Node struct {
	ID                        string
	Origin                    Origin
	State                     State
	Health                    Health
	InstanceType              string
	HourlyCost                float64
	TotalRAMMB                uint64
	AllocatedRAMMB            uint64
	ReservedRAMMB             uint64
	Containers                map[string]uint64 // id -> RAM MB
	Reservations              map[string]uint64 // id -> RAM MB
	Holds                     map[string]string // name -> detail
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
	Decommission *Ticket
}

type nodeJSON struct {
	ID                         string            `json:"id"`
	Origin                     Origin            `json:"origin"`
	State                      State             `json:"state"`
	Health                     Health            `json:"health"`
	InstanceType               string            `json:"instance_type"`
	HourlyCostEUR              float64           `json:"hourly_cost_eur"`
	TotalRAMMB                 uint64            `json:"total_ram_mb"`
	AllocatedRAMMB             uint64            `json:"allocated_ram_mb"`
	ReservedRAMMB              uint64            `json:"reserved_ram_mb"`
	Containers                 map[string]uint64 `json:"containers"`
	Reservations               map[string]uint64 `json:"reservations"`
	Holds                      map[string]string `json:"holds"`
	ConsecutiveHealthFailures  int               `json:"consecutive_health_failures"`
	ProvisionedAtMs            int64             `json:"provisioned_at_ms"`
	InitializedAtMs            *int64            `json:"initialized_at_ms"`
	FirstContainerAtMs         *int64            `json:"first_container_at_ms"`
	LastContainerAtMs          *int64            `json:"last_container_at_ms"`
	TotalContainersEver        uint64            `json:"total_containers_ever"`
	StateEnteredAtMs           int64             `json:"state_entered_at_ms"`
	TimeInStateMs              map[State]int64   `json:"time_in_state_ms"`
	RecoveredAtMs              *int64            `json:"recovered_at_ms"`
	ContainerSyncPending       bool              `json:"container_sync_pending"`
	ContainerSyncCompletedAtMs *int64            `json:"container_sync_completed_at_ms"`
	Decommission               *struct {
		Ticket     uint64 `json:"ticket"`
		DecisionBy string `json:"decision_by"`
	} `json:"decommission"`
}

func (n *Node) UnmarshalJSON(b []byte) error {
	var j nodeJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*n = Node{
		ID: j.ID, Origin: j.Origin, State: j.State, Health: j.Health,
		InstanceType: j.InstanceType, HourlyCost: j.HourlyCostEUR,
		TotalRAMMB: j.TotalRAMMB, AllocatedRAMMB: j.AllocatedRAMMB, ReservedRAMMB: j.ReservedRAMMB,
		Containers: j.Containers, Reservations: j.Reservations, Holds: j.Holds,
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
	}
	for s, ms := range j.TimeInStateMs {
		n.TimeInState[s] = time.Duration(ms) * time.Millisecond
	}
	if j.Decommission != nil {
		n.Decommission = &Ticket{ID: j.Decommission.Ticket, NodeID: j.ID}
	}
	return nil
}

// Node returns one node's current record.
func (f *Fleet) Node(id string) (Node, error) {
	h, err := f.handle()
	if err != nil {
		return Node{}, err
	}
	ip, il := cstr(id)
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_node_json(h, ip, il, &b, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(id)
	var n Node
	err = decodeJSON(r, b, cerr, &n)
	return n, err
}

// Nodes returns every node, ordered by id. Never nil.
func (f *Fleet) Nodes() ([]Node, error) {
	h, err := f.handle()
	if err != nil {
		return nil, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_nodes_json(h, &b, &cerr)
	runtime.KeepAlive(f)
	out := []Node{}
	err = decodeJSON(r, b, cerr, &out)
	return out, err
}
