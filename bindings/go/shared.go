package lifecycle

// A fleet shared by replicas: its files live in a SharedStore (PostgreSQL: the pgstore module)
// instead of a data directory, and a leader lease in the same store decides which replica may
// change it.
//
// Why the seam is here, in Go, and not in the Rust storage layer: the core already writes
// everything it persists as files of checksummed frames through one narrow set of file
// operations, and on the WebAssembly backend those operations reach Go (WASI calls into
// wazero's file system). A replica mounts a file system whose every durable step — an fsync,
// a truncation, a rename, an unlink — is one fenced transaction in the store, so the core's
// journal, snapshots, checksums, crash orderings and salvage stay exactly those of a data
// directory, with no second implementation to keep equal. The price is that a shared fleet
// runs on the WebAssembly engine (also in a cgo build), which the mutation's round trip to the
// store dwarfs.

import (
	"context"
	"time"
)

// SharedStore keeps one fleet's files and its leader lease. Every method is safe for
// concurrent use. Implementations: pgstore (PostgreSQL); tests use an in-memory one.
//
// Fencing is the store's job: Append, Truncate, Rename and Remove apply only while epoch is
// the lease's current epoch, held by holder and not expired by the store's own clock, checked
// in the same transaction as the change; otherwise they change nothing and return an error
// matching ErrFenced. A change that returned nil is durable and visible to every later Load.
type SharedStore interface {
	// Acquire takes the lease for holder if it is free or expired (or already holder's),
	// always under a new epoch, for ttl. ok is false when another holder's lease is live.
	Acquire(ctx context.Context, holder string, ttl time.Duration) (epoch uint64, ok bool, err error)
	// Renew extends holder's lease of epoch by ttl; false when it is no longer held (expired,
	// or taken under a later epoch).
	Renew(ctx context.Context, holder string, epoch uint64, ttl time.Duration) (bool, error)
	// Release ends holder's lease of epoch now, so that a standby takes over at once.
	Release(ctx context.Context, holder string, epoch uint64) error
	// Lease reports the current lease (zero values when none was ever taken).
	Lease(ctx context.Context) (LeaseInfo, error)

	// Load returns every file and the store's version (which every change increases), as
	// one consistent view.
	Load(ctx context.Context) (files map[string][]byte, version uint64, err error)
	// Version returns the store's version: a standby reloads when it changed.
	Version(ctx context.Context) (uint64, error)

	// Append writes data at offset off of file name (created if missing; off must be its
	// current length).
	Append(ctx context.Context, holder string, epoch uint64, name string, off int64, data []byte) error
	// Truncate cuts file name to size bytes.
	Truncate(ctx context.Context, holder string, epoch uint64, name string, size int64) error
	// Rename renames file from to to, replacing to.
	Rename(ctx context.Context, holder string, epoch uint64, from, to string) error
	// Remove deletes file name (no error when it does not exist).
	Remove(ctx context.Context, holder string, epoch uint64, name string) error
}

// LeaseInfo is a SharedStore's lease row.
type LeaseInfo struct {
	Holder  string
	Epoch   uint64
	Expires time.Time
}

// Replication configures a fleet shared by replicas (Options.Shared).
type Replication struct {
	// Store holds the fleet's files and lease.
	Store SharedStore
	// ReplicaID names this process in the lease (a pod name, host:pid). It must be unique per
	// replica: two processes with one id would take the lease from each other (fencing keeps
	// their writes apart, but leadership would flap).
	ReplicaID string
	// LeaseTTL: how long a lease lives without renewal (10s). The leader renews every third
	// of it; a standby takes over at most about LeaseTTL + Poll after a leader died.
	LeaseTTL time.Duration
	// Poll: how often a standby checks the lease and the store for changes (1s); its reads
	// lag the leader by at most about Poll plus the time to reload the fleet.
	Poll time.Duration
	// OnLeadership is called (from the replica's own goroutine, never under a lock the fleet's
	// methods take) when this replica stops being leader (false), and with true whenever it
	// opens the fleet as leader after New: a promotion, or a reopen from the store after a
	// write to the store failed (the store was down) and poisoned the instance. After true
	// the fleet is restored as after a restart, and the conductor runs its restore pass
	// (MIGRATION.md, section 11). It must not block: the lease is renewed from the same
	// goroutine, so start the restore pass in a goroutine of its own.
	OnLeadership func(leader bool)
	// StoreTimeout bounds each call to the store (5s).
	StoreTimeout time.Duration
}

// IsLeader reports whether this replica holds the lease and may change the fleet. A fleet
// that is not shared is always its own leader. A leader that has lost the lease without
// knowing it yet (a partition) still says true until its next renewal fails, but the store
// refuses its writes (ErrFenced), so it never acknowledges a change another leader cannot see.
func (f *Fleet) IsLeader() bool {
	b, err := f.backend()
	if err != nil {
		return false
	}
	if r, ok := b.(interface{ isLeader() bool }); ok {
		return r.isLeader()
	}
	return true
}
