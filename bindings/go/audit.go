package lifecycle

// #include "node_lifecycle.h"
import "C"

import (
	"encoding/json"
	"runtime"
	"time"
	"unsafe"
)

// StateSnapshot is a node's state at the moment of a decision, as recorded in the audit log.
type StateSnapshot struct {
	State                     State
	Health                    Health
	Origin                    Origin
	CurrentContainers         int
	PendingReservations       int
	Holds                     int
	AllocatedRAMMB            uint64
	ReservedRAMMB             uint64
	TotalRAMMB                uint64
	TotalContainersEver       uint64
	Age                       time.Duration
	TimeInState               time.Duration
	SinceInitialized          *time.Duration // nil if cloud-init never completed
	IdleFor                   *time.Duration // nil if the node has containers or never had one
	ContainerSyncPending      bool
	ConsecutiveHealthFailures int
}

type snapshotJSON struct {
	State                     State  `json:"state"`
	Health                    Health `json:"health"`
	Origin                    Origin `json:"origin"`
	CurrentContainers         int    `json:"current_containers"`
	PendingReservations       int    `json:"pending_reservations"`
	Holds                     int    `json:"holds"`
	AllocatedRAMMB            uint64 `json:"allocated_ram_mb"`
	ReservedRAMMB             uint64 `json:"reserved_ram_mb"`
	TotalRAMMB                uint64 `json:"total_ram_mb"`
	TotalContainersEver       uint64 `json:"total_containers_ever"`
	AgeMs                     int64  `json:"age_ms"`
	TimeInStateMs             int64  `json:"time_in_state_ms"`
	SinceInitializedMs        *int64 `json:"since_initialized_ms"`
	IdleForMs                 *int64 `json:"idle_for_ms"`
	ContainerSyncPending      bool   `json:"container_sync_pending"`
	ConsecutiveHealthFailures int    `json:"consecutive_health_failures"`
}

func optDuration(ms *int64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := time.Duration(*ms) * time.Millisecond
	return &d
}

func optTime(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms)
}

func durationMs(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

// MarshalJSON writes the library's stable keys and units (durations in milliseconds), so a
// snapshot stored elsewhere reads the same as one from the library.
func (s StateSnapshot) MarshalJSON() ([]byte, error) {
	return json.Marshal(snapshotJSON{
		State: s.State, Health: s.Health, Origin: s.Origin,
		CurrentContainers: s.CurrentContainers, PendingReservations: s.PendingReservations, Holds: s.Holds,
		AllocatedRAMMB: s.AllocatedRAMMB, ReservedRAMMB: s.ReservedRAMMB, TotalRAMMB: s.TotalRAMMB,
		TotalContainersEver:  s.TotalContainersEver,
		AgeMs:                s.Age.Milliseconds(),
		TimeInStateMs:        s.TimeInState.Milliseconds(),
		SinceInitializedMs:   durationMs(s.SinceInitialized),
		IdleForMs:            durationMs(s.IdleFor),
		ContainerSyncPending: s.ContainerSyncPending, ConsecutiveHealthFailures: s.ConsecutiveHealthFailures,
	})
}

func (s *StateSnapshot) UnmarshalJSON(b []byte) error {
	var j snapshotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = StateSnapshot{
		State: j.State, Health: j.Health, Origin: j.Origin,
		CurrentContainers: j.CurrentContainers, PendingReservations: j.PendingReservations, Holds: j.Holds,
		AllocatedRAMMB: j.AllocatedRAMMB, ReservedRAMMB: j.ReservedRAMMB, TotalRAMMB: j.TotalRAMMB,
		TotalContainersEver:  j.TotalContainersEver,
		Age:                  time.Duration(j.AgeMs) * time.Millisecond,
		TimeInState:          time.Duration(j.TimeInStateMs) * time.Millisecond,
		SinceInitialized:     optDuration(j.SinceInitializedMs),
		IdleFor:              optDuration(j.IdleForMs),
		ContainerSyncPending: j.ContainerSyncPending, ConsecutiveHealthFailures: j.ConsecutiveHealthFailures,
	}
	return nil
}

// AuditEntry is one recorded decision or lifecycle change.
type AuditEntry struct {
	// Seq is monotonic and never reused: a cursor for AuditSince.
	Seq         uint64
	Time        time.Time
	Action      Action
	NodeID      string
	ContainerID string
	// ReasonCode is the Reason of a rejection (or node_not_found failure); 0 otherwise.
	ReasonCode Reason
	// Reason is why: "cloud_init_completed" for a transition, the verdict's message for a rejection.
	Reason     string
	DecisionBy string
	Result     Result
	Error      string
	// FromState and ToState are set for lifecycle transitions.
	FromState *State
	ToState   *State
	Snapshot  *StateSnapshot
}

type entryJSON struct {
	Seq         uint64         `json:"seq"`
	AtMs        int64          `json:"at_ms"`
	Action      Action         `json:"action"`
	NodeID      string         `json:"node_id"`
	ContainerID *string        `json:"container_id"`
	ReasonCode  uint32         `json:"reason_code"`
	Reason      string         `json:"reason"`
	DecisionBy  string         `json:"decision_by"`
	Result      Result         `json:"result"`
	Error       *string        `json:"error"`
	FromState   *State         `json:"from_state"`
	ToState     *State         `json:"to_state"`
	Snapshot    *StateSnapshot `json:"snapshot"`
}

func (e *AuditEntry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = AuditEntry{
		Seq: j.Seq, Time: time.UnixMilli(j.AtMs), Action: j.Action, NodeID: j.NodeID,
		ReasonCode: Reason(j.ReasonCode), Reason: j.Reason, DecisionBy: j.DecisionBy,
		Result: j.Result, FromState: j.FromState, ToState: j.ToState, Snapshot: j.Snapshot,
	}
	if j.ContainerID != nil {
		e.ContainerID = *j.ContainerID
	}
	if j.Error != nil {
		e.Error = *j.Error
	}
	return nil
}

// AuditPage is what AuditSince returns.
type AuditPage struct {
	Entries []AuditEntry `json:"entries"`
	// Missed counts entries after the cursor that were evicted before this read: the reader's gap.
	Missed uint64 `json:"missed"`
	// NextCursor is the cursor for the next call.
	NextCursor uint64 `json:"next_cursor"`
}

// AuditStats describes the ring. Counters by action and result cover everything recorded,
// evicted or not; Retained + Evicted == TotalRecorded.
type AuditStats struct {
	Capacity      uint64            `json:"capacity"`
	TotalRecorded uint64            `json:"total_recorded"`
	Retained      uint64            `json:"retained"`
	Evicted       uint64            `json:"evicted"`
	NextSeq       uint64            `json:"next_seq"`
	ByAction      map[Action]uint64 `json:"by_action"`
	ByResult      map[Result]uint64 `json:"by_result"`
	LastEntry     *AuditEntry       `json:"last_entry"`
}

// AuditRecord is an entry for an action the caller performed (scale up or down, a migration).
type AuditRecord struct {
	Action      Action
	Result      Result
	NodeID      string
	ContainerID string
	Reason      string
	DecisionBy  string
	Error       string
}

const (
	filterAll    = C.NL_AUDIT_FILTER_ALL
	filterNode   = C.NL_AUDIT_FILTER_NODE
	filterAction = C.NL_AUDIT_FILTER_ACTION
	filterResult = C.NL_AUDIT_FILTER_RESULT
)

func (f *Fleet) auditQuery(filter C.uint32_t, text string, value uint32, limit int) ([]AuditEntry, error) {
	h, err := f.handle()
	if err != nil {
		return nil, err
	}
	if limit < 0 {
		limit = 0
	}
	tp, tl := cstr(text)
	var list *C.nl_audit_list
	var cerr *C.nl_error
	r := C.nl_fleet_audit_query_list(h, filter, tp, tl, C.uint32_t(value), C.size_t(limit), &list, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(text)
	if err := takeError(r, cerr); err != nil {
		return nil, err
	}
	return takeAuditList(list), nil
}

// takeAuditList converts a flat nl_audit_list into Go entries (one copy of all strings, each
// field a substring of it) and frees the list.
func takeAuditList(list *C.nl_audit_list) []AuditEntry {
	defer C.nl_audit_list_free(list)
	var count, blobLen C.size_t
	items := C.nl_audit_list_items(list, &count)
	blob := C.nl_audit_list_strings(list, &blobLen)
	out := make([]AuditEntry, int(count))
	if count == 0 {
		return out
	}
	strs := C.GoStringN((*C.char)(unsafe.Pointer(blob)), C.int(blobLen))
	str := func(r C.nl_str_ref) string { return strs[r.offset : r.offset+r.len] }
	optState := func(n C.uint32_t) *State {
		if n == C.UINT32_MAX {
			return nil
		}
		s := State(n)
		return &s
	}
	// One allocation for every snapshot of the page.
	snapshots := make([]StateSnapshot, int(count))
	for i, it := range unsafe.Slice(items, int(count)) {
		e := &out[i]
		*e = AuditEntry{
			Seq: uint64(it.seq), Time: time.UnixMilli(int64(it.at_ms)),
			Action: Action(it.action), Result: Result(it.result), ReasonCode: Reason(it.reason_code),
			NodeID: str(it.node_id), ContainerID: str(it.container_id), Reason: str(it.reason),
			DecisionBy: str(it.decision_by), Error: str(it.error),
			FromState: optState(it.from_state), ToState: optState(it.to_state),
		}
		if it.has_snapshot {
			s := &it.snapshot
			snap := &snapshots[i]
			*snap = StateSnapshot{
				State: State(s.state), Health: Health(s.health), Origin: Origin(s.origin),
				CurrentContainers: int(s.current_containers), PendingReservations: int(s.pending_reservations),
				Holds: int(s.holds), AllocatedRAMMB: uint64(s.allocated_ram_mb), ReservedRAMMB: uint64(s.reserved_ram_mb),
				TotalRAMMB: uint64(s.total_ram_mb), TotalContainersEver: uint64(s.total_containers_ever),
				Age:                       time.Duration(s.age_ms) * time.Millisecond,
				TimeInState:               time.Duration(s.time_in_state_ms) * time.Millisecond,
				ContainerSyncPending:      bool(s.container_sync_pending),
				ConsecutiveHealthFailures: int(s.consecutive_health_failures),
			}
			if s.has_since_initialized {
				d := time.Duration(s.since_initialized_ms) * time.Millisecond
				snap.SinceInitialized = &d
			}
			if s.has_idle_for {
				d := time.Duration(s.idle_for_ms) * time.Millisecond
				snap.IdleFor = &d
			}
			e.Snapshot = snap
		}
	}
	return out
}

// AuditRecent returns the newest n entries, oldest first. Never nil.
func (f *Fleet) AuditRecent(n int) ([]AuditEntry, error) {
	return f.auditQuery(filterAll, "", 0, n)
}

// AuditByNode returns the newest limit entries about a node, oldest first. Never nil.
func (f *Fleet) AuditByNode(nodeID string, limit int) ([]AuditEntry, error) {
	return f.auditQuery(filterNode, nodeID, 0, limit)
}

// AuditByAction returns the newest limit entries of an action, oldest first. Never nil.
func (f *Fleet) AuditByAction(a Action, limit int) ([]AuditEntry, error) {
	return f.auditQuery(filterAction, "", uint32(a), limit)
}

// AuditByResult returns the newest limit entries with a result, oldest first. Never nil.
func (f *Fleet) AuditByResult(r Result, limit int) ([]AuditEntry, error) {
	return f.auditQuery(filterResult, "", uint32(r), limit)
}

// AuditSince returns up to limit entries after cursor (a sequence number; 0 for the start),
// oldest first, with the size of the gap if the ring evicted entries this reader never saw.
func (f *Fleet) AuditSince(cursor uint64, limit int) (AuditPage, error) {
	h, err := f.handle()
	if err != nil {
		return AuditPage{}, err
	}
	if limit < 0 {
		limit = 0
	}
	var list *C.nl_audit_list
	var missed, next C.uint64_t
	var cerr *C.nl_error
	r := C.nl_fleet_audit_since_list(h, C.uint64_t(cursor), C.size_t(limit), &list, &missed, &next, &cerr)
	runtime.KeepAlive(f)
	if err := takeError(r, cerr); err != nil {
		return AuditPage{}, err
	}
	return AuditPage{Entries: takeAuditList(list), Missed: uint64(missed), NextCursor: uint64(next)}, nil
}

// AuditStats returns the ring's statistics.
func (f *Fleet) AuditStats() (AuditStats, error) {
	h, err := f.handle()
	if err != nil {
		return AuditStats{}, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_audit_stats(h, &b, &cerr)
	runtime.KeepAlive(f)
	var s AuditStats
	err = decodeJSON(r, b, cerr, &s)
	return s, err
}

// RecordAudit records an entry for an action the caller performed; the node's state snapshot
// is attached when the node is known. It returns the entry's sequence number.
func (f *Fleet) RecordAudit(rec AuditRecord) (uint64, error) {
	h, err := f.handle()
	if err != nil {
		return 0, err
	}
	np, nl := cstr(rec.NodeID)
	cp, cl := cstr(rec.ContainerID)
	rp, rl := cstr(rec.Reason)
	bp, bl := cstr(rec.DecisionBy)
	ep, el := cstr(rec.Error)
	var seq C.uint64_t
	var cerr *C.nl_error
	r := C.nl_fleet_audit_record(h, C.uint32_t(rec.Action), C.uint32_t(rec.Result), np, nl, cp, cl, rp, rl, bp, bl, ep, el, &seq, &cerr)
	runtime.KeepAlive(f)
	runtime.KeepAlive(rec)
	return uint64(seq), takeError(r, cerr)
}
