package lifecycle

// Decoding of the library's flat lists (nl_verdict_list, nl_audit_list). Every field has a
// fixed width and the layout is the same on every target the library supports (all
// little-endian: amd64, arm64, wasm32); tests/abi.rs pins the offsets in Rust and
// TestFlatLayoutMatchesHeader pins them against the C header. Both backends hand these bytes
// over as they are, so one decoder serves both.

import (
	"encoding/binary"
	"encoding/json"
	"math"
	"math/bits"
	"time"
)

const (
	sizeofVerdict     = 40
	sizeofNodeVerdict = 56
	sizeofSnapshot    = 176
	sizeofAuditItem   = 328
	noState           = math.MaxUint32

	auditFlagHasSnapshot = 1
	auditFlagHasRAM      = 2
	auditFlagHasAge      = 4

	snapshotFlagHasSinceInitialized = 1
	snapshotFlagHasIdleFor          = 2
	snapshotFlagSyncPending         = 4
)

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
		allowed:      b[0] != 0,
		state:        u32(b, 4),
		primary:      u32(b, 8),
		mask:         u64(b, 16),
		hasRetry:     b[24] != 0,
		retryAfterMs: int64(u64(b, 32)),
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
		total += bits.OnesCount64(u64(items, i*sizeofNodeVerdict+16+16))
	}
	reasons := make([]Reason, 0, total)
	for i := 0; i < n; i++ {
		it := items[i*sizeofNodeVerdict : (i+1)*sizeofNodeVerdict]
		out[i] = NodeVerdict{NodeID: str(it, 0, allIDs), Verdict: decodeVerdict(it[16:]).verdictInto(&reasons)}
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
		flags := u32(it, 36)
		e := &out[i]
		*e = AuditEntry{
			Seq:           u64(it, 0),
			Time:          time.UnixMilli(int64(u64(it, 8))),
			Action:        Action(u32(it, 16)),
			Result:        Result(u32(it, 20)),
			ReasonCode:    Reason(u32(it, 24)),
			FromState:     optState(u32(it, 28)),
			ToState:       optState(u32(it, 32)),
			NodeID:        str(it, 56, all),
			ContainerID:   str(it, 72, all),
			Reason:        str(it, 88, all),
			DecisionBy:    str(it, 104, all),
			Error:         str(it, 120, all),
			RelatedNodeID: str(it, 136, all),
		}
		if flags&auditFlagHasRAM != 0 {
			ram := int(u64(it, 40))
			e.RAMMB = &ram
		}
		if flags&auditFlagHasAge != 0 {
			age := msDuration(u64(it, 48))
			e.Age = &age
		}
		if flags&auditFlagHasSnapshot != 0 {
			e.Snapshot = decodeSnapshot(it[152:], all, &snapshots[i])
		}
	}
	return out
}

func decodeSnapshot(s []byte, all string, out *StateSnapshot) *StateSnapshot {
	flags := u32(s, 120)
	*out = StateSnapshot{
		State:                     State(u32(s, 0)),
		Health:                    Health(u32(s, 4)),
		Origin:                    Origin(u32(s, 8)),
		ConsecutiveHealthFailures: int(u32(s, 12)),
		CurrentContainers:         int(u64(s, 16)),
		PendingReservations:       int(u64(s, 24)),
		AllocatedRAMMB:            int(u64(s, 48)),
		ReservedRAMMB:             int(u64(s, 56)),
		TotalRAMMB:                int(u64(s, 64)),
		TotalContainersEver:       u64(s, 72),
		Age:                       msDuration(u64(s, 80)),
		TimeInState:               msDuration(u64(s, 88)),
		HourlyCost:                math.Float64frombits(u64(s, 112)),
		ContainerSyncPending:      flags&snapshotFlagSyncPending != 0,
		InstanceType:              str(s, 128, all),
		EvacuatedBy:               str(s, 144, all),
	}
	if flags&snapshotFlagHasSinceInitialized != 0 {
		d := msDuration(u64(s, 96))
		out.SinceInitialized = &d
	}
	if flags&snapshotFlagHasIdleFor != 0 {
		d := msDuration(u64(s, 104))
		out.IdleFor = &d
	}
	if names := str(s, 160, all); names != "" {
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
