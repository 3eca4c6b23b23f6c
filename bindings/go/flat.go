package lifecycle

// Decoding of the library's flat lists (nl_verdict_list, nl_audit_list). Every field has a
// fixed width and the layout is the same on every target the library supports (all
// little-endian: amd64, arm64, wasm32). tests/abi.rs pins the offsets in Rust, and
// TestFlatLayoutMatchesHeader (flat_layout_test.go) compares every offset and size below with
// the C compiler's view of include/node_lifecycle.h. Both backends hand these bytes over as
// they are, so one decoder serves both.

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"time"
)

// Sizes and offsets of the flat structs, named after their C fields.
const (
	sizeofStrRef = 16

	sizeofVerdict            = 40
	offVerdictAllowed        = 0
	offVerdictState          = 4
	offVerdictPrimaryReason  = 8
	offVerdictReasonsMask    = 16
	offVerdictHasRetryAfter  = 24
	offVerdictRetryAfterMs   = 32
	sizeofNodeVerdict        = 56
	offNodeVerdictID         = 0
	offNodeVerdictVerdict    = 16
	sizeofSnapshot           = 176
	offSnapState             = 0
	offSnapHealth            = 4
	offSnapOrigin            = 8
	offSnapHealthFailures    = 12
	offSnapContainers        = 16
	offSnapReservations      = 24
	offSnapAllocatedRAM      = 48
	offSnapReservedRAM       = 56
	offSnapTotalRAM          = 64
	offSnapContainersEver    = 72
	offSnapAge               = 80
	offSnapTimeInState       = 88
	offSnapSinceInitialized  = 96
	offSnapIdleFor           = 104
	offSnapHourlyCost        = 112
	offSnapFlags             = 120
	offSnapInstanceType      = 128
	offSnapEvacuatedBy       = 144
	offSnapNamesJSON         = 160
	sizeofAuditItem          = 328
	offAuditSeq              = 0
	offAuditAt               = 8
	offAuditAction           = 16
	offAuditResult           = 20
	offAuditReasonCode       = 24
	offAuditFromState        = 28
	offAuditToState          = 32
	offAuditFlags            = 36
	offAuditRAM              = 40
	offAuditAge              = 48
	offAuditNodeID           = 56
	offAuditContainerID      = 72
	offAuditReason           = 88
	offAuditDecisionBy       = 104
	offAuditError            = 120
	offAuditRelatedNodeID    = 136
	offAuditSnapshot         = 152
	noState                  = math.MaxUint32
	auditFlagHasSnapshot     = 1
	auditFlagHasRAM          = 2
	auditFlagHasAge          = 4
	snapshotFlagHasSinceInit = 1
	snapshotFlagHasIdleFor   = 2
	snapshotFlagSyncPending  = 4
)

// flatLayout names every size and offset above by its C spelling, for
// TestFlatLayoutMatchesHeader.
var flatLayout = map[string]int{
	"sizeof(nl_str_ref)":                            sizeofStrRef,
	"sizeof(nl_verdict)":                            sizeofVerdict,
	"nl_verdict.allowed":                            offVerdictAllowed,
	"nl_verdict.state":                              offVerdictState,
	"nl_verdict.primary_reason":                     offVerdictPrimaryReason,
	"nl_verdict.reasons_mask":                       offVerdictReasonsMask,
	"nl_verdict.has_retry_after":                    offVerdictHasRetryAfter,
	"nl_verdict.retry_after_ms":                     offVerdictRetryAfterMs,
	"sizeof(nl_node_verdict)":                       sizeofNodeVerdict,
	"nl_node_verdict.id":                            offNodeVerdictID,
	"nl_node_verdict.verdict":                       offNodeVerdictVerdict,
	"sizeof(nl_state_snapshot)":                     sizeofSnapshot,
	"nl_state_snapshot.state":                       offSnapState,
	"nl_state_snapshot.health":                      offSnapHealth,
	"nl_state_snapshot.origin":                      offSnapOrigin,
	"nl_state_snapshot.consecutive_health_failures": offSnapHealthFailures,
	"nl_state_snapshot.current_containers":          offSnapContainers,
	"nl_state_snapshot.pending_reservations":        offSnapReservations,
	"nl_state_snapshot.allocated_ram_mb":            offSnapAllocatedRAM,
	"nl_state_snapshot.reserved_ram_mb":             offSnapReservedRAM,
	"nl_state_snapshot.total_ram_mb":                offSnapTotalRAM,
	"nl_state_snapshot.total_containers_ever":       offSnapContainersEver,
	"nl_state_snapshot.age_ms":                      offSnapAge,
	"nl_state_snapshot.time_in_state_ms":            offSnapTimeInState,
	"nl_state_snapshot.since_initialized_ms":        offSnapSinceInitialized,
	"nl_state_snapshot.idle_for_ms":                 offSnapIdleFor,
	"nl_state_snapshot.hourly_cost_eur":             offSnapHourlyCost,
	"nl_state_snapshot.flags":                       offSnapFlags,
	"nl_state_snapshot.instance_type":               offSnapInstanceType,
	"nl_state_snapshot.evacuated_by":                offSnapEvacuatedBy,
	"nl_state_snapshot.names_json":                  offSnapNamesJSON,
	"sizeof(nl_audit_item)":                         sizeofAuditItem,
	"nl_audit_item.seq":                             offAuditSeq,
	"nl_audit_item.at_ms":                           offAuditAt,
	"nl_audit_item.action":                          offAuditAction,
	"nl_audit_item.result":                          offAuditResult,
	"nl_audit_item.reason_code":                     offAuditReasonCode,
	"nl_audit_item.from_state":                      offAuditFromState,
	"nl_audit_item.to_state":                        offAuditToState,
	"nl_audit_item.flags":                           offAuditFlags,
	"nl_audit_item.ram_mb":                          offAuditRAM,
	"nl_audit_item.age_ms":                          offAuditAge,
	"nl_audit_item.node_id":                         offAuditNodeID,
	"nl_audit_item.container_id":                    offAuditContainerID,
	"nl_audit_item.reason":                          offAuditReason,
	"nl_audit_item.decision_by":                     offAuditDecisionBy,
	"nl_audit_item.error":                           offAuditError,
	"nl_audit_item.related_node_id":                 offAuditRelatedNodeID,
	"nl_audit_item.snapshot":                        offAuditSnapshot,
	"NL_AUDIT_FLAG_HAS_SNAPSHOT":                    auditFlagHasSnapshot,
	"NL_AUDIT_FLAG_HAS_RAM":                         auditFlagHasRAM,
	"NL_AUDIT_FLAG_HAS_AGE":                         auditFlagHasAge,
	"NL_SNAPSHOT_FLAG_HAS_SINCE_INITIALIZED":        snapshotFlagHasSinceInit,
	"NL_SNAPSHOT_FLAG_HAS_IDLE_FOR":                 snapshotFlagHasIdleFor,
	"NL_SNAPSHOT_FLAG_CONTAINER_SYNC_PENDING":       snapshotFlagSyncPending,
}

var le = binary.LittleEndian

func u32(b []byte, off int) uint32 { return le.Uint32(b[off:]) }
func u64(b []byte, off int) uint64 { return le.Uint64(b[off:]) }

// str reads an nl_str_ref at off as a substring of all (which holds every string of the list,
// copied into Go memory once).
func str(b []byte, off int, all string) string {
	o, n := u64(b, off), u64(b, off+8)
	if n == 0 || o > uint64(len(all)) || n > uint64(len(all))-o {
		return ""
	}
	return all[o : o+n]
}

func decodeVerdict(b []byte) flatVerdict {
	return flatVerdict{
		allowed:      b[offVerdictAllowed] != 0,
		state:        u32(b, offVerdictState),
		primary:      u32(b, offVerdictPrimaryReason),
		mask:         u64(b, offVerdictReasonsMask),
		hasRetry:     b[offVerdictHasRetryAfter] != 0,
		retryAfterMs: int64(u64(b, offVerdictRetryAfterMs)),
	}
}

// decodeNodeVerdicts turns an nl_verdict_list into Go values with a constant number of
// allocations: one copy of all ids (each NodeID is a substring of it) and one backing array
// for every node's Reasons.
func decodeNodeVerdicts(items, ids []byte) []NodeVerdict {
	n := len(items) / sizeofNodeVerdict
	out := make([]NodeVerdict, n)
	if n == 0 {
		return out
	}
	allIDs := string(ids)
	total := 0
	for i := 0; i < n; i++ {
		total += bits.OnesCount64(u64(items, i*sizeofNodeVerdict+offNodeVerdictVerdict+offVerdictReasonsMask))
	}
	reasons := make([]Reason, 0, total)
	for i := 0; i < n; i++ {
		it := items[i*sizeofNodeVerdict : (i+1)*sizeofNodeVerdict]
		out[i].NodeID = str(it, offNodeVerdictID, allIDs)
		flat := decodeVerdict(it[offNodeVerdictVerdict:])
		flat.fill(&out[i].Verdict, &reasons)
	}
	return out
}

// snapshotNames is the names_json of a flat snapshot.
type snapshotNames struct {
	Holds   []Mark            `json:"holds"`
	Cordons []SnapshotCordon  `json:"cordons"`
	Labels  map[string]string `json:"labels"`
}

// decodeAuditItems turns an nl_audit_list into entries: one copy of the string buffer, one
// array of entries and one of snapshots.
func decodeAuditItems(items, strs []byte) []AuditEntry {
	n := len(items) / sizeofAuditItem
	out := make([]AuditEntry, n)
	if n == 0 {
		return out
	}
	all := string(strs)
	snapshots := make([]StateSnapshot, n)
	for i := range out {
		it := items[i*sizeofAuditItem : (i+1)*sizeofAuditItem]
		flags := u32(it, offAuditFlags)
		e := &out[i]
		*e = AuditEntry{
			Seq:           u64(it, offAuditSeq),
			Time:          time.UnixMilli(int64(u64(it, offAuditAt))),
			Action:        Action(u32(it, offAuditAction)),
			Result:        Result(u32(it, offAuditResult)),
			ReasonCode:    Reason(u32(it, offAuditReasonCode)),
			FromState:     optState(u32(it, offAuditFromState)),
			ToState:       optState(u32(it, offAuditToState)),
			NodeID:        str(it, offAuditNodeID, all),
			ContainerID:   str(it, offAuditContainerID, all),
			Reason:        str(it, offAuditReason, all),
			DecisionBy:    str(it, offAuditDecisionBy, all),
			Error:         str(it, offAuditError, all),
			RelatedNodeID: str(it, offAuditRelatedNodeID, all),
		}
		if flags&auditFlagHasRAM != 0 {
			ram := int(u64(it, offAuditRAM))
			e.RAMMB = &ram
		}
		if flags&auditFlagHasAge != 0 {
			age := msDuration(u64(it, offAuditAge))
			e.Age = &age
		}
		if flags&auditFlagHasSnapshot != 0 {
			e.Snapshot = decodeSnapshot(it[offAuditSnapshot:], all, &snapshots[i])
		}
	}
	return out
}

func decodeSnapshot(s []byte, all string, out *StateSnapshot) *StateSnapshot {
	flags := u32(s, offSnapFlags)
	*out = StateSnapshot{
		State:                     State(u32(s, offSnapState)),
		Health:                    Health(u32(s, offSnapHealth)),
		Origin:                    Origin(u32(s, offSnapOrigin)),
		ConsecutiveHealthFailures: int(u32(s, offSnapHealthFailures)),
		CurrentContainers:         int(u64(s, offSnapContainers)),
		PendingReservations:       int(u64(s, offSnapReservations)),
		AllocatedRAMMB:            int(u64(s, offSnapAllocatedRAM)),
		ReservedRAMMB:             int(u64(s, offSnapReservedRAM)),
		TotalRAMMB:                int(u64(s, offSnapTotalRAM)),
		TotalContainersEver:       u64(s, offSnapContainersEver),
		Age:                       msDuration(u64(s, offSnapAge)),
		TimeInState:               msDuration(u64(s, offSnapTimeInState)),
		HourlyCost:                math.Float64frombits(u64(s, offSnapHourlyCost)),
		ContainerSyncPending:      flags&snapshotFlagSyncPending != 0,
		InstanceType:              str(s, offSnapInstanceType, all),
		EvacuatedBy:               str(s, offSnapEvacuatedBy, all),
	}
	if flags&snapshotFlagHasSinceInit != 0 {
		d := msDuration(u64(s, offSnapSinceInitialized))
		out.SinceInitialized = &d
	}
	if flags&snapshotFlagHasIdleFor != 0 {
		d := msDuration(u64(s, offSnapIdleFor))
		out.IdleFor = &d
	}
	if names := str(s, offSnapNamesJSON, all); names != "" {
		var n snapshotNames
		// The library wrote this JSON; a decoding failure would be a library bug, and the
		// counts below still say how many holds and cordons there were.
		if json.Unmarshal([]byte(names), &n) == nil {
			out.Holds, out.Cordons, out.Labels = n.Holds, n.Cordons, n.Labels
		}
	}
	return out
}

func optState(n uint32) *State {
	if n == noState {
		return nil
	}
	s := State(n)
	return &s
}

// msDuration converts library milliseconds, saturating where a time.Duration ends (292 years).
func msDuration(ms uint64) time.Duration {
	if ms > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return time.Duration(math.MaxInt64)
	}
	return time.Duration(ms) * time.Millisecond
}
