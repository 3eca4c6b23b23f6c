package lifecycle

import (
	"encoding/json"
	"math"
	"time"
)

// Off switches a grace or timeout off: a grace that is off never makes anyone wait, a timeout
// that is off never fires. It is the only way to do so: zero means the default, and negative
// or sub-millisecond durations are refused (ErrInvalidSetting), so a sign or a unit mistake
// never removes a protection.
const Off = time.Duration(math.MaxInt64)

// OffCount switches a count-based setting off (Options.CompactAfterRecords: compact only when
// asked).
const OffCount = math.MaxInt

// Policy is what a fleet's safety rules and timers use. Zero fields mean the specification's
// defaults; Off switches a timer off.
type Policy struct {
	// ReadyGrace: a ready node may be deleted only this long after cloud-init completed (30m).
	ReadyGrace time.Duration
	// IdleGrace: an empty active/idle node may be deleted only this long after its last
	// container left (30m). Not applied to a node emptied under an evacuate cordon.
	IdleGrace time.Duration
	// PostSyncGrace: protection after a recovered node's containers were re-synchronised (10m).
	PostSyncGrace time.Duration
	// SyncTimeout: a pending container sync completes by itself after this long (30m).
	SyncTimeout time.Duration
	// ProvisioningTimeout: a node starting longer than this becomes unhealthy (15m).
	ProvisioningTimeout time.Duration
	// ClaimTTL: claims and reservations that were neither confirmed nor released expire after
	// this long (30m), unless the claim gave its own.
	ClaimTTL time.Duration
	// UnhealthyThreshold: consecutive failed health checks that make a node unhealthy (3).
	UnhealthyThreshold int
	// UnhealthyGrace: an unhealthy node that may have hosted work (it was ready once, hosted
	// a container, or was found after a restart) may be deleted only this long after it became
	// unhealthy or its last container left, whichever is later (15m), unless the provider
	// confirmed its VM is gone (Fleet.ConfirmGone). A VM that never came up is not protected.
	UnhealthyGrace time.Duration
}

// Options configure a Fleet. The zero value means the specification's defaults on the wall
// clock, in memory.
type Options struct {
	// ReadyGrace, IdleGrace, PostSyncGrace, SyncTimeout, ProvisioningTimeout, ClaimTTL,
	// UnhealthyThreshold and UnhealthyGrace are the Policy (see there); Fleet.SetPolicy
	// changes them later.
	ReadyGrace          time.Duration
	IdleGrace           time.Duration
	PostSyncGrace       time.Duration
	SyncTimeout         time.Duration
	ProvisioningTimeout time.Duration
	ClaimTTL            time.Duration
	UnhealthyThreshold  int
	UnhealthyGrace      time.Duration

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
	// CompactAfterRecords: snapshot and start a new journal after this many records (100000;
	// OffCount: only when Fleet.Compact is called).
	CompactAfterRecords int

	// Shared, when set, keeps the fleet in a store shared by replicas instead of DataDir (which
	// must then be empty): one replica leads and mutates, the others answer reads and take over
	// when the leader's lease expires. See Replication and SharedStore.
	Shared *Replication
}

// Policy returns the policy part of the options.
func (o Options) Policy() Policy {
	return Policy{
		ReadyGrace: o.ReadyGrace, IdleGrace: o.IdleGrace, PostSyncGrace: o.PostSyncGrace,
		SyncTimeout: o.SyncTimeout, ProvisioningTimeout: o.ProvisioningTimeout,
		ClaimTTL: o.ClaimTTL, UnhealthyThreshold: o.UnhealthyThreshold,
		UnhealthyGrace: o.UnhealthyGrace,
	}
}

// settingMs is a millisecond setting as the library reads it: a number, or "off".
type settingMs struct {
	ms  uint64
	off bool
}

func (s settingMs) MarshalJSON() ([]byte, error) {
	if s.off {
		return []byte(`"off"`), nil
	}
	return json.Marshal(s.ms)
}

func (s *settingMs) UnmarshalJSON(b []byte) error {
	if string(b) == `"off"` {
		*s = settingMs{off: true}
		return nil
	}
	*s = settingMs{}
	return json.Unmarshal(b, &s.ms)
}

func (s settingMs) duration() time.Duration {
	if s.off {
		return Off
	}
	if s.ms > uint64(math.MaxInt64/int64(time.Millisecond)) {
		return Off
	}
	return time.Duration(s.ms) * time.Millisecond
}

// durationSetting checks one duration: 0 is the default, Off is off, anything else must be at
// least a millisecond (whole milliseconds are used).
func durationSetting(owner, field string, d time.Duration) (settingMs, error) {
	switch {
	case d == Off:
		return settingMs{off: true}, nil
	case d < 0:
		return settingMs{}, invalidSetting(owner, field, "%v is negative (0 means the default, lifecycle.Off switches it off)", d)
	case d > 0 && d < time.Millisecond:
		return settingMs{}, invalidSetting(owner, field, "%v is under a millisecond, the library's resolution", d)
	}
	return settingMs{ms: uint64(d / time.Millisecond)}, nil
}

// countSetting checks a non-negative count (0 is the default).
func countSetting(owner, field string, n int) (uint64, error) {
	if n < 0 {
		return 0, invalidSetting(owner, field, "%d is negative (0 means the default)", n)
	}
	return uint64(n), nil
}

type policyJSON struct {
	ReadyGraceMs          settingMs `json:"ready_grace_ms"`
	IdleGraceMs           settingMs `json:"idle_grace_ms"`
	PostSyncGraceMs       settingMs `json:"post_sync_grace_ms"`
	SyncTimeoutMs         settingMs `json:"sync_timeout_ms"`
	ProvisioningTimeoutMs settingMs `json:"provisioning_timeout_ms"`
	ClaimTTLMs            settingMs `json:"claim_ttl_ms"`
	UnhealthyGraceMs      settingMs `json:"unhealthy_grace_ms"`
	UnhealthyThreshold    uint64    `json:"unhealthy_threshold"`
}

func (p Policy) toJSON(owner string) (policyJSON, error) {
	var j policyJSON
	durations := []struct {
		field string
		d     time.Duration
		out   *settingMs
	}{
		{"ReadyGrace", p.ReadyGrace, &j.ReadyGraceMs},
		{"IdleGrace", p.IdleGrace, &j.IdleGraceMs},
		{"PostSyncGrace", p.PostSyncGrace, &j.PostSyncGraceMs},
		{"SyncTimeout", p.SyncTimeout, &j.SyncTimeoutMs},
		{"ProvisioningTimeout", p.ProvisioningTimeout, &j.ProvisioningTimeoutMs},
		{"ClaimTTL", p.ClaimTTL, &j.ClaimTTLMs},
		{"UnhealthyGrace", p.UnhealthyGrace, &j.UnhealthyGraceMs},
	}
	for _, d := range durations {
		v, err := durationSetting(owner, d.field, d.d)
		if err != nil {
			return j, err
		}
		*d.out = v
	}
	n, err := countSetting(owner, "UnhealthyThreshold", p.UnhealthyThreshold)
	j.UnhealthyThreshold = n
	return j, err
}

func (j policyJSON) policy() Policy {
	return Policy{
		ReadyGrace:          j.ReadyGraceMs.duration(),
		IdleGrace:           j.IdleGraceMs.duration(),
		PostSyncGrace:       j.PostSyncGraceMs.duration(),
		SyncTimeout:         j.SyncTimeoutMs.duration(),
		ProvisioningTimeout: j.ProvisioningTimeoutMs.duration(),
		ClaimTTL:            j.ClaimTTLMs.duration(),
		UnhealthyGrace:      j.UnhealthyGraceMs.duration(),
		UnhealthyThreshold:  int(j.UnhealthyThreshold),
	}
}

type syncJSON struct {
	Mode       string `json:"mode"`
	MaxWrites  uint64 `json:"max_writes,omitempty"`
	MaxDelayMs uint64 `json:"max_delay_ms,omitempty"`
}

type storageJSON struct {
	Sync                *syncJSON  `json:"sync,omitempty"`
	CompactAfterRecords *settingMs `json:"compact_after_records,omitempty"`
}

type optionsJSON struct {
	Policy             policyJSON   `json:"policy"`
	AuditCapacity      uint64       `json:"audit_capacity"`
	ManualClockStartMs *int64       `json:"manual_clock_start_ms,omitempty"`
	DataDir            *string      `json:"data_dir,omitempty"`
	Storage            *storageJSON `json:"storage,omitempty"`
}

// toJSON checks the options and encodes them for nl_options_from_json. Every check the
// package can make names the Go field; the library then checks ranges (and names the field
// too).
func (o Options) toJSON() ([]byte, error) {
	p, err := o.Policy().toJSON("Options")
	if err != nil {
		return nil, err
	}
	j := optionsJSON{Policy: p}
	if j.AuditCapacity, err = countSetting("Options", "AuditCapacity", o.AuditCapacity); err != nil {
		return nil, err
	}
	if !o.ManualClockStart.IsZero() {
		ms := o.ManualClockStart.UnixMilli()
		j.ManualClockStartMs = &ms
	}
	if o.DataDir != "" {
		j.DataDir = &o.DataDir
	}
	storage := storageJSON{}
	every, err := countSetting("Options", "SyncEvery", o.SyncEvery)
	if err != nil {
		return nil, err
	}
	if o.SyncMaxDelay == Off {
		return nil, invalidSetting("Options", "SyncMaxDelay", "cannot be off (SyncEvery bounds the writes, this bounds the time)")
	}
	delay, err := durationSetting("Options", "SyncMaxDelay", o.SyncMaxDelay)
	if err != nil {
		return nil, err
	}
	if every > 1 {
		if delay.ms == 0 {
			delay.ms = 1000
		}
		if every > math.MaxUint32 {
			return nil, invalidSetting("Options", "SyncEvery", "%d is out of range (at most %d)", every, uint64(math.MaxUint32))
		}
		storage.Sync = &syncJSON{Mode: "batched", MaxWrites: every, MaxDelayMs: delay.ms}
	}
	switch {
	case o.CompactAfterRecords == OffCount:
		storage.CompactAfterRecords = &settingMs{off: true}
	case o.CompactAfterRecords < 0:
		return nil, invalidSetting("Options", "CompactAfterRecords", "%d is negative (0 means the default, lifecycle.OffCount switches it off)", o.CompactAfterRecords)
	case o.CompactAfterRecords > 0:
		storage.CompactAfterRecords = &settingMs{ms: uint64(o.CompactAfterRecords)}
	}
	if storage.Sync != nil || storage.CompactAfterRecords != nil {
		j.Storage = &storage
	}
	return json.Marshal(j)
}
