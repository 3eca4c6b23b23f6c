package lifecycle

import (
	"encoding/json"
	"math"
	"runtime"
	"time"
)

// AllEntries as a limit asks for every retained entry. A limit of 0 returns nothing.
const AllEntries = math.MaxInt

// StateSnapshot is a node's state at the moment of a decision, as recorded in the audit log.
// Its JSON form uses the library's stable keys and units (durations in milliseconds), so a
// snapshot stored elsewhere reads the same as one from the library.
type StateSnapshot struct {
	State                State
	Health               Health
	Origin               Origin
	CurrentContainers    int
	PendingReservations  int
	Holds                []Mark
	Cordons              []SnapshotCordon
	AllocatedRAMMB       int
	ReservedRAMMB        int
	TotalRAMMB           int
	HourlyCost           float64 // EUR per hour
	InstanceType         string
	Labels               map[string]string
	TotalContainersEver  uint64
	Age                  time.Duration
	TimeInState          time.Duration
	SinceInitialized     *time.Duration // nil if cloud-init never completed
	IdleFor              *time.Duration // nil if the node has containers or never had one
	ContainerSyncPending bool
	// EvacuatedBy names the evacuate cordon under which the node was emptied, while it is in
	// place (the idle grace is waived).
	EvacuatedBy               string
	ConsecutiveHealthFailures int
}

// SnapshotCordon is a cordon as recorded in a snapshot.
type SnapshotCordon struct {
	Name     string `json:"name"`
	Reason   string `json:"reason"`
	Evacuate bool   `json:"evacuate"`
}

type snapshotJSON struct {
	State                     State             `json:"state"`
	Health                    Health            `json:"health"`
	Origin                    Origin            `json:"origin"`
	CurrentContainers         int               `json:"current_containers"`
	PendingReservations       int               `json:"pending_reservations"`
	Holds                     []Mark            `json:"holds"`
	Cordons                   []SnapshotCordon  `json:"cordons"`
	AllocatedRAMMB            int               `json:"allocated_ram_mb"`
	ReservedRAMMB             int               `json:"reserved_ram_mb"`
	TotalRAMMB                int               `json:"total_ram_mb"`
	HourlyCostEUR             float64           `json:"hourly_cost_eur"`
	InstanceType              string            `json:"instance_type"`
	Labels                    map[string]string `json:"labels"`
	TotalContainersEver       uint64            `json:"total_containers_ever"`
	AgeMs                     int64             `json:"age_ms"`
	TimeInStateMs             int64             `json:"time_in_state_ms"`
	SinceInitializedMs        *int64            `json:"since_initialized_ms"`
	IdleForMs                 *int64            `json:"idle_for_ms"`
	ContainerSyncPending      bool              `json:"container_sync_pending"`
	EvacuatedBy               *string           `json:"evacuated_by"`
	ConsecutiveHealthFailures int               `json:"consecutive_health_failures"`
}

func optDuration(ms *int64) *time.Duration {
	if ms == nil {
		return nil
	}
	d := msDuration(uint64(max(*ms, 0)))
	return &d
}

func durationMs(d *time.Duration) *int64 {
	if d == nil {
		return nil
	}
	ms := d.Milliseconds()
	return &ms
}

func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

func fromOptString(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

func optTime(ms *int64) time.Time {
	if ms == nil {
		return time.Time{}
	}
	return time.UnixMilli(*ms)
}

// MarshalJSON writes the library's keys and units.
func (s StateSnapshot) MarshalJSON() ([]byte, error) {
	j := snapshotJSON{
		State: s.State, Health: s.Health, Origin: s.Origin,
		CurrentContainers: s.CurrentContainers, PendingReservations: s.PendingReservations,
		Holds: s.Holds, Cordons: s.Cordons,
		AllocatedRAMMB: s.AllocatedRAMMB, ReservedRAMMB: s.ReservedRAMMB, TotalRAMMB: s.TotalRAMMB,
		HourlyCostEUR: s.HourlyCost, InstanceType: s.InstanceType, Labels: s.Labels,
		TotalContainersEver:       s.TotalContainersEver,
		AgeMs:                     s.Age.Milliseconds(),
		TimeInStateMs:             s.TimeInState.Milliseconds(),
		SinceInitializedMs:        durationMs(s.SinceInitialized),
		IdleForMs:                 durationMs(s.IdleFor),
		ContainerSyncPending:      s.ContainerSyncPending,
		EvacuatedBy:               optString(s.EvacuatedBy),
		ConsecutiveHealthFailures: s.ConsecutiveHealthFailures,
	}
	if j.Holds == nil {
		j.Holds = []Mark{}
	}
	if j.Cordons == nil {
		j.Cordons = []SnapshotCordon{}
	}
	if j.Labels == nil {
		j.Labels = map[string]string{}
	}
	return json.Marshal(j)
}

func (s *StateSnapshot) UnmarshalJSON(b []byte) error {
	var j snapshotJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*s = j.snapshot()
	return nil
}

func (j *snapshotJSON) snapshot() StateSnapshot {
	return StateSnapshot{
		State: j.State, Health: j.Health, Origin: j.Origin,
		CurrentContainers: j.CurrentContainers, PendingReservations: j.PendingReservations,
		Holds: j.Holds, Cordons: j.Cordons,
		AllocatedRAMMB: j.AllocatedRAMMB, ReservedRAMMB: j.ReservedRAMMB, TotalRAMMB: j.TotalRAMMB,
		HourlyCost: j.HourlyCostEUR, InstanceType: j.InstanceType, Labels: j.Labels,
		TotalContainersEver:       j.TotalContainersEver,
		Age:                       msDuration(uint64(max(j.AgeMs, 0))),
		TimeInState:               msDuration(uint64(max(j.TimeInStateMs, 0))),
		SinceInitialized:          optDuration(j.SinceInitializedMs),
		IdleFor:                   optDuration(j.IdleForMs),
		ContainerSyncPending:      j.ContainerSyncPending,
		EvacuatedBy:               fromOptString(j.EvacuatedBy),
		ConsecutiveHealthFailures: j.ConsecutiveHealthFailures,
	}
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
	// Reason is why: "cloud_init_completed" for a transition, the verdict's message for a
	// rejection, the cordon's reason for node_cordon.
	Reason     string
	DecisionBy string
	Result     Result
	Error      string
	// FromState and ToState are set for lifecycle transitions.
	FromState *State
	ToState   *State
	// RelatedNodeID is the other node of a migration (its target) or of a rename (the old id).
	RelatedNodeID string
	// RAMMB and Age are set for an expired reservation or claim.
	RAMMB    *int
	Age      *time.Duration
	Snapshot *StateSnapshot
}

type entryJSON struct {
	Seq           uint64        `json:"seq"`
	AtMs          int64         `json:"at_ms"`
	Action        Action        `json:"action"`
	NodeID        string        `json:"node_id"`
	ContainerID   *string       `json:"container_id"`
	ReasonCode    uint32        `json:"reason_code"`
	Reason        string        `json:"reason"`
	DecisionBy    string        `json:"decision_by"`
	Result        Result        `json:"result"`
	Error         *string       `json:"error"`
	FromState     *State        `json:"from_state"`
	ToState       *State        `json:"to_state"`
	RelatedNodeID *string       `json:"related_node_id"`
	RAMMB         *int          `json:"ram_mb"`
	AgeMs         *int64        `json:"age_ms"`
	Snapshot      *snapshotJSON `json:"snapshot"`
}

// MarshalJSON writes the library's keys and units.
func (e AuditEntry) MarshalJSON() ([]byte, error) {
	type out struct {
		entryJSON
		Snapshot *StateSnapshot `json:"snapshot"`
	}
	return json.Marshal(out{entryJSON: entryJSON{
		Seq: e.Seq, AtMs: e.Time.UnixMilli(), Action: e.Action, NodeID: e.NodeID,
		ContainerID: optString(e.ContainerID), ReasonCode: uint32(e.ReasonCode), Reason: e.Reason,
		DecisionBy: e.DecisionBy, Result: e.Result, Error: optString(e.Error),
		FromState: e.FromState, ToState: e.ToState, RelatedNodeID: optString(e.RelatedNodeID),
		RAMMB: e.RAMMB, AgeMs: durationMs(e.Age),
	}, Snapshot: e.Snapshot})
}

func (e *AuditEntry) UnmarshalJSON(b []byte) error {
	var j entryJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*e = j.entry()
	return nil
}

// entry converts the library's form (pages decode straight into entryJSON: one scan).
func (j *entryJSON) entry() AuditEntry {
	e := AuditEntry{
		Seq: j.Seq, Time: time.UnixMilli(j.AtMs), Action: j.Action, NodeID: j.NodeID,
		ContainerID: fromOptString(j.ContainerID), ReasonCode: Reason(j.ReasonCode), Reason: j.Reason,
		DecisionBy: j.DecisionBy, Result: j.Result, Error: fromOptString(j.Error),
		FromState: j.FromState, ToState: j.ToState, RelatedNodeID: fromOptString(j.RelatedNodeID),
		RAMMB: j.RAMMB, Age: optDuration(j.AgeMs),
	}
	if j.Snapshot != nil {
		s := j.Snapshot.snapshot()
		e.Snapshot = &s
	}
	return e
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

// AuditRecord is an entry for an action the caller performed (scale up or down, a migration
// done outside RecordMigration).
type AuditRecord struct {
	Action      Action
	Result      Result
	NodeID      string
	ContainerID string
	Reason      string
	DecisionBy  string
	// Error is any text (invalid UTF-8 is replaced, control characters escaped, length bounded).
	Error string
}

func auditLimit(limit int) (uint64, error) {
	if limit < 0 {
		return 0, invalidArgument("limit %d is negative (0 returns nothing, lifecycle.AllEntries returns everything)", limit)
	}
	return uint64(limit), nil
}

func (f *Fleet) auditList(q auditListQuery) (AuditPage, error) {
	b, err := f.backend()
	if err != nil {
		return AuditPage{}, err
	}
	var page AuditPage
	err = b.auditList(q, func(items, strs []byte, missed, next uint64) {
		page = AuditPage{Entries: decodeAuditItems(items, strs), Missed: missed, NextCursor: next}
	})
	return page, err
}

func (f *Fleet) auditQuery(filter uint32, text string, value uint32, limit int) ([]AuditEntry, error) {
	n, err := auditLimit(limit)
	if err != nil {
		return nil, err
	}
	page, err := f.auditList(auditListQuery{filter: filter, text: text, value: value, limit: n})
	return page.Entries, err
}

// AuditRecent returns the newest n entries, oldest first. Never nil.
func (f *Fleet) AuditRecent(n int) ([]AuditEntry, error) {
	return f.auditQuery(filterAll, "", 0, n)
}

// AuditByNode returns the newest limit entries about a node, oldest first. Never nil. A node
// that was renamed is found by either id.
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
	n, err := auditLimit(limit)
	if err != nil {
		return AuditPage{}, err
	}
	return f.auditList(auditListQuery{since: true, cursor: cursor, limit: n})
}

// AuditQuery selects a page of entries, newest first. At most one of Node, Action and Result
// may be set (each query is answered from one index).
type AuditQuery struct {
	Node   string
	Action *Action
	Result *Result
	// BeforeSeq: only entries with a smaller sequence number (the previous page's
	// NextBeforeSeq); 0 for the newest.
	BeforeSeq uint64
	// AfterSeq: only entries with a larger sequence number.
	AfterSeq uint64
	// From and To bound the entries' time: From <= t < To (zero: unbounded).
	From, To time.Time
	// Limit: at most this many entries (0 returns none).
	Limit int
}

// AuditNewestPage is a page of entries, newest first.
type AuditNewestPage struct {
	Entries []AuditEntry `json:"entries"`
	// NextBeforeSeq, when non-zero, is the BeforeSeq of the next (older) page.
	NextBeforeSeq uint64 `json:"next_before_seq"`
}

// AuditPage returns a page of entries, newest first, at a cost of O(log n + limit) whatever
// the ring's size: what an operations API serves.
func (f *Fleet) AuditPage(q AuditQuery) (AuditNewestPage, error) {
	type filterJSON struct {
		By    string `json:"by"`
		Value any    `json:"value,omitempty"`
	}
	set := 0
	filter := filterJSON{By: "all"}
	if q.Node != "" {
		set++
		filter = filterJSON{By: "node", Value: q.Node}
	}
	if q.Action != nil {
		set++
		filter = filterJSON{By: "action", Value: *q.Action}
	}
	if q.Result != nil {
		set++
		filter = filterJSON{By: "result", Value: *q.Result}
	}
	if set > 1 {
		return AuditNewestPage{}, invalidArgument("AuditQuery: at most one of Node, Action and Result may be set")
	}
	limit, err := auditLimit(q.Limit)
	if err != nil {
		return AuditNewestPage{}, err
	}
	query := map[string]any{"filter": filter, "limit": limit}
	if q.BeforeSeq != 0 {
		query["before_seq"] = q.BeforeSeq
	}
	if q.AfterSeq != 0 {
		query["after_seq"] = q.AfterSeq
	}
	if !q.From.IsZero() {
		query["from_ms"] = q.From.UnixMilli()
	}
	if !q.To.IsZero() {
		query["to_ms"] = q.To.UnixMilli()
	}
	var out struct {
		Entries       []entryJSON `json:"entries"`
		NextBeforeSeq *uint64     `json:"next_before_seq"`
	}
	if err := f.do(op{"op": "audit_page", "query": query}, &out); err != nil {
		return AuditNewestPage{}, err
	}
	page := AuditNewestPage{Entries: make([]AuditEntry, len(out.Entries))}
	for i := range out.Entries {
		page.Entries[i] = out.Entries[i].entry()
	}
	if out.NextBeforeSeq != nil {
		page.NextBeforeSeq = *out.NextBeforeSeq
	}
	return page, nil
}

// AuditStats returns the ring's statistics.
func (f *Fleet) AuditStats() (AuditStats, error) {
	var s AuditStats
	err := f.do(op{"op": "audit_stats"}, &s)
	return s, err
}

// RecordAudit records an entry for an action the caller performed; the node's state snapshot
// is attached when the node is known. It returns the entry's sequence number.
func (f *Fleet) RecordAudit(rec AuditRecord) (uint64, error) {
	b, err := f.backend()
	if err != nil {
		return 0, err
	}
	seq, err := b.recordAudit(&rec)
	runtime.KeepAlive(f)
	return seq, err
}
