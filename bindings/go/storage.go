package lifecycle

// #include "node_lifecycle.h"
import "C"

import "runtime"

// OpenReport says what opening a data directory found.
type OpenReport struct {
	SnapshotFound          bool   `json:"snapshot_found"`
	JournalRecordsReplayed uint64 `json:"journal_records_replayed"`
	// TornTailBytes were skipped at the end of the journal (a torn write from a crash); they
	// held nothing that had been acknowledged.
	TornTailBytes        uint64 `json:"torn_tail_bytes"`
	NodesRestored        uint64 `json:"nodes_restored"`
	AuditEntriesRestored uint64 `json:"audit_entries_restored"`
}

// StorageStatus is where a persistent fleet's storage stands.
type StorageStatus struct {
	DataDir        string `json:"data_dir"`
	Generation     uint64 `json:"generation"`
	JournalBytes   uint64 `json:"journal_bytes"`
	JournalRecords uint64 `json:"journal_records"`
	// LastCompactionError is set when an automatic compaction failed (it is retried; nothing
	// acknowledged is at risk).
	LastCompactionError *string `json:"last_compaction_error"`
}

// StorageInfo is nil-valued for an in-memory fleet.
type StorageInfo struct {
	OpenReport *OpenReport    `json:"open_report"`
	Status     *StorageStatus `json:"status"`
}

// Storage reports what opening the data directory found and where the journal stands. Both
// fields are nil for an in-memory fleet.
func (f *Fleet) Storage() (StorageInfo, error) {
	h, err := f.handle()
	if err != nil {
		return StorageInfo{}, err
	}
	var b *C.nl_bytes
	var cerr *C.nl_error
	r := C.nl_fleet_storage_json(h, &b, &cerr)
	runtime.KeepAlive(f)
	var info StorageInfo
	err = decodeJSON(r, b, cerr, &info)
	return info, err
}

// Sync forces journaled mutations to disk (useful with Options.SyncEvery > 1).
func (f *Fleet) Sync() error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	var cerr *C.nl_error
	r := C.nl_fleet_sync(h, &cerr)
	runtime.KeepAlive(f)
	return takeError(r, cerr)
}

// Compact writes a snapshot and starts a new journal now.
func (f *Fleet) Compact() error {
	h, err := f.handle()
	if err != nil {
		return err
	}
	var cerr *C.nl_error
	r := C.nl_fleet_compact(h, &cerr)
	runtime.KeepAlive(f)
	return takeError(r, cerr)
}
