package lifecycle

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// OpenReport says what opening a data directory found.
type OpenReport struct {
	SnapshotFound          bool   `json:"snapshot_found"`
	SnapshotGeneration     uint64 `json:"snapshot_generation"`
	JournalsReplayed       uint64 `json:"journals_replayed"`
	JournalRecordsReplayed uint64 `json:"journal_records_replayed"`
	// TornTailBytes were cut from the end of the last journal: a write a crash cut short,
	// never acknowledged. Damage anywhere else is ErrCorrupt, never a silent truncation.
	TornTailBytes        uint64 `json:"torn_tail_bytes"`
	NodesRestored        uint64 `json:"nodes_restored"`
	AuditEntriesRestored uint64 `json:"audit_entries_restored"`
	// ObsoleteFilesRemoved: files an interrupted compaction left behind, removed at open.
	ObsoleteFilesRemoved uint64 `json:"obsolete_files_removed"`
	// RecoveryRecorded: whether the restart was recorded in the audit ring (not when the
	// disk is full: opening never needs more space than the data already uses).
	RecoveryRecorded bool `json:"recovery_recorded"`
}

// StorageStatus is where a persistent fleet's storage stands.
type StorageStatus struct {
	DataDir        string `json:"data_dir"`
	Generation     uint64 `json:"generation"`
	JournalBytes   uint64 `json:"journal_bytes"`
	JournalRecords uint64 `json:"journal_records"`
	NextLSN        uint64 `json:"next_lsn"`
	// Poisoned is set when a failed fsync poisoned the storage: no mutation is accepted until
	// the fleet is reopened (ErrPoisoned).
	Poisoned    *string `json:"poisoned"`
	Compactions uint64  `json:"compactions"`
	// LastCompactionError is set when the last compaction failed (it is retried; nothing
	// acknowledged is at risk).
	LastCompactionError *string `json:"last_compaction_error"`
}

// StorageInfo is what Storage returns; both fields are nil for an in-memory fleet.
type StorageInfo struct {
	OpenReport *OpenReport    `json:"open_report"`
	Status     *StorageStatus `json:"status"`
}

// Storage reports what opening the data directory found and where the journal stands.
func (f *Fleet) Storage() (StorageInfo, error) {
	var info StorageInfo
	err := f.do(op{"op": "storage"}, &info)
	return info, err
}

// Sync forces journaled mutations to disk (useful with Options.SyncEvery > 1). A failure
// poisons the fleet (ErrPoisoned from then on): what was not synced is not assumed durable.
func (f *Fleet) Sync() error { return f.do(op{"op": "sync"}, nil) }

// Compact writes a snapshot and starts a new journal now. The fleet's lock is held only while
// the state is captured.
func (f *Fleet) Compact() error { return f.do(op{"op": "compact"}, nil) }

// DamagedRange is a byte range of a file that did not verify.
type DamagedRange struct {
	File   string `json:"file"`
	Offset uint64 `json:"offset"`
	Length uint64 `json:"length"`
}

// SalvageReport says what Salvage recovered and what it lost.
type SalvageReport struct {
	FilesRead               []string `json:"files_read"`
	BaseSnapshotGeneration  uint64   `json:"base_snapshot_generation"`
	SnapshotRecordsLost     uint64   `json:"snapshot_records_lost"`
	JournalRecordsRecovered uint64   `json:"journal_records_recovered"`
	// LostSequenceRanges are the journal sequence numbers (inclusive ranges) whose mutations
	// could not be verified.
	LostSequenceRanges            [][2]uint64    `json:"lost_sequence_ranges"`
	DamagedRanges                 []DamagedRange `json:"damaged_ranges"`
	NodesRecovered                uint64         `json:"nodes_recovered"`
	AuditEntriesRecovered         uint64         `json:"audit_entries_recovered"`
	AuditEntriesDroppedBeforeAGap uint64         `json:"audit_entries_dropped_before_a_gap"`
	OutputDir                     string         `json:"output_dir"`
}

// Salvage recovers every verifiable record of a damaged data directory (one New refused with
// ErrCorrupt) into a new, empty or missing directory, and reports exactly what was lost. It
// never writes the damaged directory. Open the result with Options.DataDir = to.
func Salvage(from, to string) (SalvageReport, error) {
	if err := refuseTargetInside(from, to); err != nil {
		return SalvageReport{}, err
	}
	res, err := salvage(from, to)
	if err != nil {
		return SalvageReport{}, err
	}
	var r SalvageReport
	if err := json.Unmarshal(res, &r); err != nil {
		return SalvageReport{}, &Error{Code: CodePanic, Message: fmt.Sprintf("decoding the salvage report: %v", err)}
	}
	return r, nil
}

// refuseTargetInside refuses a salvage target that is the damaged directory or inside it,
// however it is spelled (symbolic links, "..") and whether or not it exists yet: salvage never
// writes the directory it reads. The library checks the same; this check also covers the
// WebAssembly backend, which sees both directories under paths of its own.
func refuseTargetInside(from, to string) error {
	real := func(p string) string {
		abs, err := filepath.Abs(p)
		if err != nil {
			return filepath.Clean(p)
		}
		var missing []string
		for at := abs; ; at = filepath.Dir(at) {
			if r, err := filepath.EvalSymlinks(at); err == nil {
				return filepath.Join(append([]string{r}, missing...)...)
			}
			if filepath.Dir(at) == at {
				return abs
			}
			missing = append([]string{filepath.Base(at)}, missing...)
		}
	}
	rf, rt := real(from), real(to)
	if rt == rf || strings.HasPrefix(rt, rf+string(os.PathSeparator)) {
		return &Error{Code: CodeInvalidArgument, Message: fmt.Sprintf(
			"invalid argument: the salvage target %s is inside the damaged directory %s: salvage never writes the directory it reads; choose a target outside it",
			to, from)}
	}
	return nil
}
