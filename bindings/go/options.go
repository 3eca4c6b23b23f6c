package lifecycle

// #include "node_lifecycle.h"
import "C"

import "time"

// Options configure a Fleet. The zero value means the defaults of the specification; a
// negative duration means zero (no grace at all).
type Options struct {
	// ReadyGrace: a ready node may be deleted only this long after cloud-init completed (30m).
	ReadyGrace time.Duration
	// IdleGrace: an empty active/idle node may be deleted only this long after its last container (30m).
	IdleGrace time.Duration
	// PostSyncGrace: protection after a recovered node's containers were re-synchronised (10m).
	PostSyncGrace time.Duration
	// SyncTimeout: a pending container sync completes by itself after this long (30m).
	SyncTimeout time.Duration
	// ProvisioningTimeout: a node starting longer than this becomes unhealthy (15m).
	ProvisioningTimeout time.Duration
	// UnhealthyThreshold: consecutive failed health checks that make a node unhealthy (3).
	UnhealthyThreshold int
	// AuditCapacity: audit entries kept in memory (1000).
	AuditCapacity int
	// ManualClockStart, when non-zero, runs the fleet on a manual clock starting there, moved
	// only by Fleet.Advance and Fleet.SetClock: for tests, examples and simulations.
	ManualClockStart time.Time

	// DataDir, when set, makes the fleet persistent: New restores what the directory holds
	// (restored nodes wait for their container sync, then the post-sync grace) and every
	// mutation is journaled there before it returns. One process at a time (ErrLocked).
	DataDir string
	// SyncEvery: fsync after this many mutations (0 or 1: after every one). Writes always reach
	// the operating system before a call returns; this bounds what a power loss can take.
	SyncEvery int
	// SyncMaxDelay: with SyncEvery > 1, also fsync when this long has passed since the last (1s).
	SyncMaxDelay time.Duration
	// CompactAfterRecords: snapshot and start a new journal after this many records (100000).
	CompactAfterRecords int
}

// toC builds an nl_options; the caller frees it with C.nl_options_free.
func (o Options) toC() (*C.nl_options, error) {
	var opts *C.nl_options
	var cerr *C.nl_error
	if err := takeError(C.nl_options_new(&opts, &cerr), cerr); err != nil {
		return nil, err
	}
	set := func(key C.uint32_t, value uint64) error {
		var cerr *C.nl_error
		return takeError(C.nl_options_set(opts, key, C.uint64_t(value), &cerr), cerr)
	}
	durations := []struct {
		key C.uint32_t
		d   time.Duration
	}{
		{C.NL_OPTION_READY_GRACE_MS, o.ReadyGrace},
		{C.NL_OPTION_IDLE_GRACE_MS, o.IdleGrace},
		{C.NL_OPTION_POST_SYNC_GRACE_MS, o.PostSyncGrace},
		{C.NL_OPTION_SYNC_TIMEOUT_MS, o.SyncTimeout},
		{C.NL_OPTION_PROVISIONING_TIMEOUT_MS, o.ProvisioningTimeout},
	}
	var err error
	for _, d := range durations {
		switch {
		case err != nil:
		case d.d < 0:
			err = set(d.key, 0)
		case d.d > 0:
			err = set(d.key, uint64(d.d.Milliseconds()))
		}
	}
	if err == nil && o.UnhealthyThreshold != 0 {
		err = set(C.NL_OPTION_UNHEALTHY_THRESHOLD, uint64(o.UnhealthyThreshold))
	}
	if err == nil && o.AuditCapacity != 0 {
		if o.AuditCapacity < 0 {
			err = &Error{Code: CodeInvalidArgument, Message: "AuditCapacity must not be negative"}
		} else {
			err = set(C.NL_OPTION_AUDIT_CAPACITY, uint64(o.AuditCapacity))
		}
	}
	if err == nil && o.UnhealthyThreshold < 0 {
		err = &Error{Code: CodeInvalidArgument, Message: "UnhealthyThreshold must not be negative"}
	}
	if err == nil && o.SyncEvery < 0 {
		err = &Error{Code: CodeInvalidArgument, Message: "SyncEvery must not be negative"}
	}
	if err == nil && o.SyncEvery > 1 {
		err = set(C.NL_OPTION_SYNC_EVERY_WRITES, uint64(o.SyncEvery))
	}
	if err == nil && o.SyncMaxDelay > 0 {
		err = set(C.NL_OPTION_SYNC_MAX_DELAY_MS, uint64(o.SyncMaxDelay.Milliseconds()))
	}
	if err == nil && o.CompactAfterRecords < 0 {
		err = &Error{Code: CodeInvalidArgument, Message: "CompactAfterRecords must not be negative"}
	}
	if err == nil && o.CompactAfterRecords > 0 {
		err = set(C.NL_OPTION_COMPACT_AFTER_RECORDS, uint64(o.CompactAfterRecords))
	}
	if err == nil && o.DataDir != "" {
		var cerr *C.nl_error
		p, n := cstr(o.DataDir)
		err = takeError(C.nl_options_set_data_dir(opts, p, n, &cerr), cerr)
	}
	if err == nil && !o.ManualClockStart.IsZero() {
		var cerr *C.nl_error
		err = takeError(C.nl_options_use_manual_clock(opts, C.int64_t(o.ManualClockStart.UnixMilli()), &cerr), cerr)
	}
	if err != nil {
		C.nl_options_free(opts)
		return nil, err
	}
	return opts, nil
}

// Policy is the policy a fleet applies now (Fleet.Policy).
type Policy struct {
	ReadyGrace          time.Duration
	IdleGrace           time.Duration
	PostSyncGrace       time.Duration
	SyncTimeout         time.Duration
	ProvisioningTimeout time.Duration
	UnhealthyThreshold  int
}

type policyJSON struct {
	ReadyGraceMs          int64 `json:"ready_grace_ms"`
	IdleGraceMs           int64 `json:"idle_grace_ms"`
	PostSyncGraceMs       int64 `json:"post_sync_grace_ms"`
	SyncTimeoutMs         int64 `json:"sync_timeout_ms"`
	ProvisioningTimeoutMs int64 `json:"provisioning_timeout_ms"`
	UnhealthyThreshold    int   `json:"unhealthy_threshold"`
}

func (p policyJSON) policy() Policy {
	return Policy{
		ReadyGrace:          time.Duration(p.ReadyGraceMs) * time.Millisecond,
		IdleGrace:           time.Duration(p.IdleGraceMs) * time.Millisecond,
		PostSyncGrace:       time.Duration(p.PostSyncGraceMs) * time.Millisecond,
		SyncTimeout:         time.Duration(p.SyncTimeoutMs) * time.Millisecond,
		ProvisioningTimeout: time.Duration(p.ProvisioningTimeoutMs) * time.Millisecond,
		UnhealthyThreshold:  p.UnhealthyThreshold,
	}
}
