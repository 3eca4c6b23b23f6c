//go:build !cgo || nl_wasm

package lifecycle

// The replica backend: a wasmBackend over a mirrorFS, swapped as this replica's role changes.
//
//	leader:  holds the lease; its instance writes through to the store under its epoch;
//	         renews every LeaseTTL/3 and steps down when a renewal fails or a write was fenced.
//	standby: its instance was opened from the store's Load, read-only towards the store;
//	         every Poll it tries to take the lease, and otherwise reloads when the store's
//	         version moved.
//
// Promotion opens the store's files afresh under the new epoch: the new leader's fleet is what
// the store holds after the old leader's last acknowledged write, because a write and the lease
// takeover serialise on the lease row (see pgstore).

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"sync"
	"sync/atomic"
	"time"

	experimentalsys "github.com/tetratelabs/wazero/experimental/sys"
)

// readOps are the operations a standby answers; every other operation changes the fleet
// (unknown ones included, so that a new operation is refused on a standby until listed).
var readOps = map[string]bool{
	"explain": true, "explain_all": true, "ticket_for": true, "node": true, "node_row": true,
	"nodes": true, "summary": true, "restoring": true, "nodes_page": true, "projection": true,
	"additional_nodes_needed": true, "consolidation_plan": true, "last_consolidation": true,
	"audit_page": true, "audit_since": true, "audit_stats": true, "policy": true,
	"instance_id": true, "storage": true, "now": true,
	// The manual clock is the instance's own (tests and simulations).
	"advance_clock": true, "set_clock": true,
}

type replicaBackend struct {
	cfg      Replication
	optsJSON []byte

	mu      sync.RWMutex // held shared by every call, exclusively to swap the instance
	cur     *wasmBackend
	w       *storeWriter
	dir     string
	leader  bool
	epoch   uint64
	version uint64
	stale   bool // a standby whose last reload failed

	// reopen is set when the leader's instance was poisoned (the store failed a write: down,
	// unreachable): the loop reopens it from the store, which holds exactly what was
	// acknowledged, once the lease is confirmed.
	reopen      atomic.Bool
	leaseHolder atomic.Pointer[string] // who leads, as last seen
	lastRenew   time.Time              // the loop's own
	kick        chan struct{}
	stop        chan struct{}
	done        chan struct{}
}

func openReplica(opts Options, optionsJSON []byte) (backend, error) {
	cfg := *opts.Shared
	switch {
	case cfg.Store == nil:
		return nil, invalidArgument("Options.Shared.Store is nil")
	case cfg.ReplicaID == "":
		return nil, invalidArgument("Options.Shared.ReplicaID is empty (name this replica, e.g. its pod name)")
	case opts.DataDir != "":
		return nil, invalidArgument("Options.DataDir and Options.Shared exclude each other: a shared fleet's files live in its store")
	}
	if cfg.LeaseTTL == 0 {
		cfg.LeaseTTL = 10 * time.Second
	}
	if cfg.Poll == 0 {
		cfg.Poll = time.Second
	}
	if cfg.StoreTimeout == 0 {
		cfg.StoreTimeout = 5 * time.Second
	}
	for _, d := range []struct {
		name string
		d    time.Duration
	}{{"LeaseTTL", cfg.LeaseTTL}, {"Poll", cfg.Poll}, {"StoreTimeout", cfg.StoreTimeout}} {
		if d.d < time.Millisecond {
			return nil, invalidSetting("Replication", d.name, "%v is under a millisecond", d.d)
		}
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(optionsJSON, &o); err != nil {
		return nil, err
	}
	o["data_dir"] = json.RawMessage(`"/data"`)
	js, err := json.Marshal(o)
	if err != nil {
		return nil, err
	}
	r := &replicaBackend{cfg: cfg, optsJSON: js, kick: make(chan struct{}, 1),
		stop: make(chan struct{}), done: make(chan struct{})}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.StoreTimeout)
	epoch, ok, err := cfg.Store.Acquire(ctx, cfg.ReplicaID, cfg.LeaseTTL)
	cancel()
	if err != nil {
		return nil, &Error{Code: CodeStorage, Message: "shared store: taking the lease: " + err.Error()}
	}
	if ok {
		err = r.become(true, epoch)
	} else {
		err = r.become(false, 0)
	}
	if err != nil {
		if ok {
			r.release(epoch)
		}
		return nil, err
	}
	if ok {
		r.lastRenew = time.Now()
	}
	go r.run()
	return r, nil
}

// open loads the store into a new copy and opens an instance on it.
func (r *replicaBackend) open(leader bool, epoch uint64) (*wasmBackend, *storeWriter, string, uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
	files, version, err := r.cfg.Store.Load(ctx)
	cancel()
	if err != nil {
		return nil, nil, "", 0, &Error{Code: CodeStorage, Message: "shared store: loading the fleet: " + err.Error()}
	}
	dir, pushed, err := materialize(files)
	if err != nil {
		return nil, nil, "", 0, &Error{Code: CodeStorage, Message: "shared store: copying the fleet: " + err.Error()}
	}
	w := &storeWriter{store: r.cfg.Store, holder: r.cfg.ReplicaID, epoch: epoch,
		timeout: r.cfg.StoreTimeout, readOnly: !leader, dir: dir, pushed: pushed}
	b, err := newWasmBackendFS(map[string]string{"/data": dir}, func(host string, seen *hostErrno) experimentalsys.FS {
		return &mirrorFS{FS: newDiskFS(host, seen), w: w}
	}, r.optsJSON)
	if err != nil {
		_ = os.RemoveAll(dir)
		return nil, nil, "", 0, r.fencedOr(w, err)
	}
	return b, w, dir, version, nil
}

// become opens the instance of a role and swaps it in. A leader's old instance is retired
// first: its store steps fail from then on, so that nothing it still does reaches the store
// after the new instance loaded it (with the same epoch, on a reopen, the store could not tell
// the two apart).
func (r *replicaBackend) become(leader bool, epoch uint64) error {
	r.mu.RLock()
	if r.w != nil && !r.w.readOnly {
		r.w.retired.Store(true)
	}
	r.mu.RUnlock()
	b, w, dir, version, err := r.open(leader, epoch)
	if err != nil {
		return err
	}
	r.mu.Lock()
	old, oldDir := r.cur, r.dir
	r.cur, r.w, r.dir, r.leader, r.epoch, r.version, r.stale = b, w, dir, leader, epoch, version, false
	r.reopen.Store(false)
	r.mu.Unlock()
	if leader {
		id := r.cfg.ReplicaID
		r.leaseHolder.Store(&id)
	}
	if old != nil {
		_ = old.close()
		_ = os.RemoveAll(oldDir)
	}
	return nil
}

func (r *replicaBackend) isLeader() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.leader
}

// run is the replica's loop: renew as leader, watch and take over as standby.
func (r *replicaBackend) run() {
	defer close(r.done)
	every := min(r.cfg.LeaseTTL/3, r.cfg.Poll)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-r.stop:
			return
		case <-t.C:
		case <-r.kick:
		}
		if r.isLeader() {
			r.renew()
		} else {
			r.watch()
		}
	}
}

func (r *replicaBackend) renew() {
	r.mu.RLock()
	epoch, fenced := r.epoch, r.w.fenced.Load()
	r.mu.RUnlock()
	if !fenced {
		ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
		start := time.Now()
		ok, err := r.cfg.Store.Renew(ctx, r.cfg.ReplicaID, epoch, r.cfg.LeaseTTL)
		cancel()
		if err == nil && ok {
			r.lastRenew = start
			if r.reopen.Load() {
				r.reopenAsLeader(epoch)
			}
			return
		}
		if err != nil && time.Since(r.lastRenew) < r.cfg.LeaseTTL {
			return // the lease may still be ours: try again; writes are fenced meanwhile anyway
		}
	}
	r.stepDown()
}

// stepDown turns a leader into a standby: mutations are refused from now on, and the
// instance is replaced by one loaded from the store (if the store cannot be read, the old one
// keeps answering reads, marked stale, until the next reload).
func (r *replicaBackend) stepDown() {
	r.mu.Lock()
	r.leader = false
	r.stale = true
	r.mu.Unlock()
	if r.cfg.OnLeadership != nil {
		r.cfg.OnLeadership(false)
	}
	_ = r.become(false, 0)
}

// reopenAsLeader replaces a poisoned leader instance by one opened from the store under the
// same epoch (a restart without a restart), and tells the conductor, which runs its restore
// pass again.
func (r *replicaBackend) reopenAsLeader(epoch uint64) {
	r.mu.RLock()
	w := r.w
	r.mu.RUnlock()
	if err := w.resolve(epoch); err != nil {
		return // the store is still failing: the next renewal tries again
	}
	if err := r.become(true, epoch); err != nil {
		return // the store is still failing: the next renewal tries again
	}
	r.reopen.Store(false)
	if r.cfg.OnLeadership != nil {
		r.cfg.OnLeadership(true)
	}
}

func (r *replicaBackend) watch() {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
	epoch, ok, err := r.cfg.Store.Acquire(ctx, r.cfg.ReplicaID, r.cfg.LeaseTTL)
	cancel()
	if err != nil {
		return
	}
	if ok {
		start := time.Now()
		if err := r.become(true, epoch); err != nil {
			r.release(epoch) // could not open the fleet: let another replica try
			return
		}
		r.lastRenew = start
		if r.cfg.OnLeadership != nil {
			r.cfg.OnLeadership(true)
		}
		return
	}
	ctx, cancel = context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
	defer cancel()
	if l, err := r.cfg.Store.Lease(ctx); err == nil {
		r.leaseHolder.Store(&l.Holder)
	}
	v, err := r.cfg.Store.Version(ctx)
	r.mu.RLock()
	changed := err == nil && (v != r.version || r.stale)
	r.mu.RUnlock()
	if changed {
		_ = r.become(false, 0)
	}
}

func (r *replicaBackend) release(epoch uint64) {
	ctx, cancel := context.WithTimeout(context.Background(), r.cfg.StoreTimeout)
	defer cancel()
	_ = r.cfg.Store.Release(ctx, r.cfg.ReplicaID, epoch)
}

// enter takes the instance for one call; a mutation on a standby is ErrNotLeader.
func (r *replicaBackend) enter(mutates bool) (*wasmBackend, *storeWriter, error) {
	r.mu.RLock()
	if mutates && !r.leader {
		r.mu.RUnlock()
		leader := "none"
		if h := r.leaseHolder.Load(); h != nil && *h != r.cfg.ReplicaID {
			leader = *h
		}
		return nil, nil, &Error{Code: CodeNotLeader, Message: fmt.Sprintf("not the leader: replica %s is a standby (leader: %s); it answers reads only", r.cfg.ReplicaID, leader)}
	}
	return r.cur, r.w, nil
}

// leave releases the instance; an error caused by a fenced write is ErrFenced, and makes the
// loop step down at once.
func (r *replicaBackend) leave(w *storeWriter, err error) error {
	r.mu.RUnlock()
	if err != nil && w != nil {
		err = r.fencedOr(w, err)
		if errors.Is(err, ErrPoisoned) {
			r.reopen.Store(true)
		}
		if w.fenced.Load() || errors.Is(err, ErrPoisoned) {
			select {
			case r.kick <- struct{}{}:
			default:
			}
		}
	}
	return err
}

// fencedOr is err, or ErrFenced when the store refused a write for the lease. A storage
// error names what the store said (the module itself only saw EIO, on a temporary copy).
func (r *replicaBackend) fencedOr(w *storeWriter, err error) error {
	if w.fenced.Load() {
		return &Error{Code: CodeFenced, Message: fmt.Sprintf("fenced: replica %s lost the lease of epoch %d; nothing of this call was acknowledged (%v)", r.cfg.ReplicaID, w.epoch, w.storeError())}
	}
	var e *Error
	if cause := w.storeError(); cause != nil && errors.As(err, &e) && (e.Code == CodePoisoned || e.Code == CodeStorage) {
		return &Error{Code: e.Code, Message: fmt.Sprintf("%s (the shared store: %v; the replica reopens the fleet from the store once it answers)", e.Message, cause)}
	}
	return err
}

func opName(request []byte) string {
	var o struct {
		Op string `json:"op"`
	}
	_ = json.Unmarshal(request, &o)
	return o.Op
}

func (r *replicaBackend) call(request []byte) ([]byte, error) {
	b, w, err := r.enter(!readOps[opName(request)])
	if err != nil {
		return nil, err
	}
	out, err := b.call(request)
	return out, r.leave(w, err)
}

func (r *replicaBackend) evaluate(node string) (flatVerdict, error) {
	b, w, err := r.enter(false)
	if err != nil {
		return flatVerdict{}, err
	}
	v, err := b.evaluate(node)
	return v, r.leave(w, err)
}

func (r *replicaBackend) containerEvent(add bool, node, container string, ramMB uint64) (ContainerOutcome, error) {
	b, w, err := r.enter(true)
	if err != nil {
		return ContainerOutcome{}, err
	}
	o, err := b.containerEvent(add, node, container, ramMB)
	return o, r.leave(w, err)
}

func (r *replicaBackend) evaluateAll(read func(items, ids []byte)) error {
	b, w, err := r.enter(false)
	if err != nil {
		return err
	}
	return r.leave(w, b.evaluateAll(read))
}

func (r *replicaBackend) recordAudit(rec *AuditRecord) (uint64, error) {
	b, w, err := r.enter(true)
	if err != nil {
		return 0, err
	}
	seq, err := b.recordAudit(rec)
	return seq, r.leave(w, err)
}

func (r *replicaBackend) auditList(q auditListQuery, read func(items, strs []byte, missed, next uint64)) error {
	b, w, err := r.enter(false)
	if err != nil {
		return err
	}
	return r.leave(w, b.auditList(q, read))
}

func (r *replicaBackend) noop() uint32 {
	b, w, _ := r.enter(false)
	n := b.noop()
	_ = r.leave(w, nil)
	return n
}

// close stops the loop, closes the instance (a leader's last sync reaches the store) and
// releases the lease so that a standby takes over at once.
func (r *replicaBackend) close() error {
	close(r.stop)
	<-r.done
	r.mu.Lock()
	defer r.mu.Unlock()
	err := r.cur.close()
	if r.leader {
		err = r.fencedOr(r.w, err)
		r.release(r.epoch)
		r.leader = false
	}
	_ = os.RemoveAll(r.dir)
	return err
}
