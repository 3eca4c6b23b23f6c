//go:build !cgo || nl_wasm

package lifecycle

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// memStore is a SharedStore in memory with the fencing rules of pgstore: a change applies only
// under the live lease of its epoch, atomically with the check. expireLease lets a test end a
// lease at once (a leader that stopped renewing).
type memStore struct {
	mu      sync.Mutex
	lease   LeaseInfo
	files   map[string][]byte
	version uint64
	writes  int // accepted changes
	// lostCommits makes that many next Appends commit and then report a failure, as when the
	// connection breaks during COMMIT.
	lostCommits int
}

func newMemStore() *memStore { return &memStore{files: map[string][]byte{}} }

func (m *memStore) Acquire(_ context.Context, holder string, ttl time.Duration) (uint64, bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lease.Holder != "" && m.lease.Holder != holder && time.Now().Before(m.lease.Expires) {
		return 0, false, nil
	}
	m.lease = LeaseInfo{Holder: holder, Epoch: m.lease.Epoch + 1, Expires: time.Now().Add(ttl)}
	return m.lease.Epoch, true, nil
}

func (m *memStore) Renew(_ context.Context, holder string, epoch uint64, ttl time.Duration) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live(holder, epoch) {
		return false, nil
	}
	m.lease.Expires = time.Now().Add(ttl)
	return true, nil
}

func (m *memStore) Release(_ context.Context, holder string, epoch uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.live(holder, epoch) {
		m.lease.Expires = time.Now()
	}
	return nil
}

func (m *memStore) Lease(context.Context) (LeaseInfo, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lease, nil
}

func (m *memStore) expireLease() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lease.Expires = time.Now().Add(-time.Millisecond)
}

func (m *memStore) live(holder string, epoch uint64) bool {
	return m.lease.Holder == holder && m.lease.Epoch == epoch && time.Now().Before(m.lease.Expires)
}

func (m *memStore) Load(context.Context) (map[string][]byte, uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string][]byte, len(m.files))
	for k, v := range m.files {
		out[k] = bytes.Clone(v)
	}
	return out, m.version, nil
}

func (m *memStore) Version(context.Context) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.version, nil
}

// change applies f under the lease, or refuses with ErrFenced.
func (m *memStore) change(holder string, epoch uint64, f func() error) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.live(holder, epoch) {
		return fmt.Errorf("%w: epoch %d of %s is not the live lease (%+v)", ErrFenced, epoch, holder, m.lease)
	}
	if err := f(); err != nil {
		return err
	}
	m.version++
	m.writes++
	return nil
}

func (m *memStore) Append(_ context.Context, holder string, epoch uint64, name string, off int64, data []byte) error {
	lost := m.takeLostCommit()
	err := m.change(holder, epoch, func() error {
		if int64(len(m.files[name])) != off {
			return fmt.Errorf("append to %s at %d, it holds %d bytes", name, off, len(m.files[name]))
		}
		m.files[name] = append(m.files[name], data...)
		return nil
	})
	if err == nil && lost {
		return errors.New("connection reset during COMMIT")
	}
	return err
}

// takeLostCommit is Append for a store whose commit outcome is lost.
func (m *memStore) takeLostCommit() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.lostCommits > 0 {
		m.lostCommits--
		return true
	}
	return false
}

func (m *memStore) Truncate(_ context.Context, holder string, epoch uint64, name string, size int64) error {
	return m.change(holder, epoch, func() error {
		if f, ok := m.files[name]; ok && int64(len(f)) > size {
			m.files[name] = f[:size]
		}
		return nil
	})
}

func (m *memStore) Rename(_ context.Context, holder string, epoch uint64, from, to string) error {
	return m.change(holder, epoch, func() error {
		f, ok := m.files[from]
		if !ok {
			return fmt.Errorf("rename: %s does not exist", from)
		}
		m.files[to] = f
		delete(m.files, from)
		return nil
	})
}

func (m *memStore) Remove(_ context.Context, holder string, epoch uint64, name string) error {
	return m.change(holder, epoch, func() error {
		delete(m.files, name)
		return nil
	})
}

func openReplicaT(t *testing.T, store SharedStore, id string, onLeader func(bool)) *Fleet {
	t.Helper()
	f, err := New(Options{ReadyGrace: Off, Shared: &Replication{Store: store, ReplicaID: id,
		LeaseTTL: 300 * time.Millisecond, Poll: 20 * time.Millisecond, OnLeadership: onLeader}})
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

// waitFor polls cond for up to five seconds.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// One leader, one standby: the standby answers reads from the leader's writes and refuses
// every mutation with ErrNotLeader.
func TestReplicaStandbyReadsAndRefusesMutations(t *testing.T) {
	store := newMemStore()
	a := openReplicaT(t, store, "a", nil)
	b := openReplicaT(t, store, "b", nil)
	if !a.IsLeader() || b.IsLeader() {
		t.Fatalf("leaders: a %v, b %v", a.IsLeader(), b.IsLeader())
	}
	c := &conductorOK{t}
	c.ok(a.Register(NodeSpec{ID: "n1", Origin: OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}))
	_, err := a.Claim("n1", 1024, 0)
	must(t, err)
	waitFor(t, "the standby to see n1", func() bool {
		n, err := b.Node("n1")
		return err == nil && n.ReservedRAMMB == 1024
	})
	if v, err := b.Evaluate("n1"); err != nil || v.Allowed {
		t.Fatalf("standby verdict: %+v %v", v, err)
	}
	for name, call := range map[string]func() error{
		"Register":       func() error { _, err := b.Register(NodeSpec{ID: "n2", Origin: OriginCloud}); return err },
		"AddContainer":   func() error { _, err := b.AddContainer("n1", "mc", 10); return err },
		"BeginDecommiss": func() error { _, err := b.BeginDecommission("n1", "reactive_policy"); return err },
		"RecordAudit": func() error {
			_, err := b.RecordAudit(AuditRecord{Action: ActionScaleUp, Result: ResultSuccess})
			return err
		},
		"Tick": func() error { _, err := b.Tick(); return err },
	} {
		if err := call(); !errors.Is(err, ErrNotLeader) {
			t.Errorf("%s on the standby: %v", name, err)
		}
	}
	if _, err := b.Node("n2"); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("a refused mutation left a trace: %v", err)
	}
}

// The leader stops renewing (it hangs, or its host died): the standby takes over with every
// acknowledged change — node, claim, cordon, hold, ticket, audit sequence — and the deposed
// leader's next write is ErrFenced and never seen by anyone.
func TestReplicaFailoverKeepsEverythingAndFencesTheOldLeader(t *testing.T) {
	store := newMemStore()
	a := openReplicaT(t, store, "a", nil)
	var promoted sync.WaitGroup
	promoted.Add(1)
	var once sync.Once
	b := openReplicaT(t, store, "b", func(leader bool) {
		if leader {
			once.Do(promoted.Done)
		}
	})
	c := &conductorOK{t}
	c.ok(a.Register(NodeSpec{ID: "n1", Origin: OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}))
	c.ok(a.Register(NodeSpec{ID: "n2", Origin: OriginCloud, TotalRAMMB: 8192, BootedFromImage: true}))
	claim, err := a.Claim("n1", 2048, time.Hour)
	must(t, err)
	c.ok(a.Cordon("n1", "disk_full", "disk at 95%", false))
	c.ok(a.PlaceHold("n2", "world:mc-9", "sleeping server data"))
	cost := 0.0119
	c.ok(a.Update("n1", NodeUpdate{HourlyCost: &cost}))
	c.ok(a.ReleaseHold("n2", "world:mc-9"))
	ticket, err := a.BeginDecommission("n2", "reactive_policy")
	must(t, err)
	stats, err := a.AuditStats()
	must(t, err)

	// a stops renewing: its lease lapses, b takes over.
	store.expireLease()
	promoted.Wait()
	if !b.IsLeader() {
		t.Fatal("b did not become leader")
	}
	// The deposed leader's write is refused and never acknowledged.
	before := store.writes
	_, err = a.Register(NodeSpec{ID: "ghost", Origin: OriginCloud, TotalRAMMB: 1})
	if !errors.Is(err, ErrFenced) && !errors.Is(err, ErrNotLeader) {
		t.Fatalf("a deposed leader's write: %v", err)
	}
	if store.writes != before {
		t.Fatalf("the store accepted %d writes from the deposed leader", store.writes-before)
	}
	waitFor(t, "a to step down", func() bool { return !a.IsLeader() })

	// b has everything a acknowledged.
	n1, err := b.Node("n1")
	must(t, err)
	if n1.ReservedRAMMB != 2048 || len(n1.Cordons) != 1 || n1.Cordons[0].Name != "disk_full" || n1.HourlyCost != cost {
		t.Fatalf("n1 after failover: %+v", n1)
	}
	got, ok, err := b.TicketFor("n2")
	must(t, err)
	if !ok || got != ticket {
		t.Fatalf("the ticket after failover: %v %v (want %v)", got, ok, ticket)
	}
	if _, err := b.Node("ghost"); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("the fenced write is visible: %v", err)
	}
	seq, err := b.RecordAudit(AuditRecord{Action: ActionScaleUp, NodeID: "n1", Result: ResultSuccess, Reason: "after failover"})
	must(t, err)
	if seq < stats.NextSeq {
		t.Fatalf("audit sequence went back: %d, the old leader was at %d", seq, stats.NextSeq)
	}
	// The new leader finishes what the old one began, and the claim is still the claim.
	must(t, b.CompleteDecommission(ticket))
	_, err = b.ConfirmClaim(claim, "mc-1")
	if !errors.Is(err, ErrNotSchedulable) { // the disk_full cordon still stands
		t.Fatalf("confirming the claim under the cordon: %v", err)
	}
	released, err := b.ReleaseClaim(claim)
	must(t, err)
	if !released {
		t.Fatal("the claim did not survive the failover")
	}
}

// A write whose commit outcome was lost (committed, but the caller saw the connection fail)
// was never acknowledged, so it must not appear: the replica cuts it back before it reopens
// the fleet from the store.
func TestReplicaLostCommitIsNeverVisible(t *testing.T) {
	store := newMemStore()
	var reopened sync.WaitGroup
	reopened.Add(1)
	var once sync.Once
	a := openReplicaT(t, store, "a", func(leader bool) {
		if leader {
			once.Do(reopened.Done)
		}
	})
	c := &conductorOK{t}
	c.ok(a.Register(NodeSpec{ID: "before", Origin: OriginCloud, TotalRAMMB: 8192}))
	store.mu.Lock()
	store.lostCommits = 1
	store.mu.Unlock()
	if _, err := a.Register(NodeSpec{ID: "ghost", Origin: OriginCloud, TotalRAMMB: 8192}); err == nil {
		t.Fatal("a write whose commit was lost was acknowledged")
	}
	reopened.Wait()
	if _, err := a.Node("ghost"); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("the unacknowledged write is visible after the reopen: %v", err)
	}
	if _, err := a.Node("before"); err != nil {
		t.Fatal(err)
	}
	c.ok(a.Register(NodeSpec{ID: "after", Origin: OriginCloud, TotalRAMMB: 8192}))
	// A second replica opening the store sees the same.
	files, _, _ := store.Load(context.Background())
	if len(files) == 0 {
		t.Fatal("empty store")
	}
	b := openReplicaT(t, store, "b", nil)
	if _, err := b.Node("ghost"); !errors.Is(err, ErrNodeNotFound) {
		t.Fatalf("another replica sees the unacknowledged write: %v", err)
	}
	if _, err := b.Node("after"); err != nil {
		t.Fatal(err)
	}
}

// A graceful Close releases the lease: the standby takes over within a poll, not a TTL.
func TestReplicaCloseHandsOverAtOnce(t *testing.T) {
	store := newMemStore()
	a, err := New(Options{Shared: &Replication{Store: store, ReplicaID: "a", LeaseTTL: time.Hour, Poll: 10 * time.Millisecond}})
	must(t, err)
	b := openReplicaT(t, store, "b", nil)
	c := &conductorOK{t}
	c.ok(a.Register(NodeSpec{ID: "n1", Origin: OriginCloud, TotalRAMMB: 8192}))
	must(t, a.Close())
	waitFor(t, "b to lead", b.IsLeader)
	if _, err := b.Node("n1"); err != nil {
		t.Fatal(err)
	}
}

// Options.Shared is refused with a data directory, without a store or without a replica id.
func TestReplicaOptionsAreChecked(t *testing.T) {
	for name, o := range map[string]Options{
		"data dir": {DataDir: t.TempDir(), Shared: &Replication{Store: newMemStore(), ReplicaID: "a"}},
		"no store": {Shared: &Replication{ReplicaID: "a"}},
		"no id":    {Shared: &Replication{Store: newMemStore()}},
		"ttl":      {Shared: &Replication{Store: newMemStore(), ReplicaID: "a", LeaseTTL: time.Microsecond}},
	} {
		if _, err := New(o); !errors.Is(err, ErrInvalidArgument) && !errors.Is(err, ErrInvalidSetting) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

type conductorOK struct{ t *testing.T }

func (c *conductorOK) ok(_ any, err error) {
	c.t.Helper()
	must(c.t, err)
}

// With NL_TEST_SHARED=1 every fleet the tests open is a shared one over an in-memory store,
// one store per data directory (so a reopen finds what the last Close left) and a fresh one
// for each in-memory fleet: `make test` runs the scenario and conductor suites this way.
func init() {
	if os.Getenv("NL_TEST_SHARED") == "" {
		return
	}
	var mu sync.Mutex
	stores := map[string]*memStore{}
	sharedForTests = func(o *Options) {
		if o.Shared != nil {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		key := o.DataDir
		s := stores[key]
		if s == nil || key == "" {
			s = newMemStore()
			stores[key] = s
		}
		o.DataDir = ""
		o.Shared = &Replication{Store: s, ReplicaID: "conductor", LeaseTTL: time.Hour, Poll: time.Second}
	}
}

// The shared-store run of the acceptance suites really runs them over the replica layer.
func TestSharedTestModeIsOn(t *testing.T) {
	if os.Getenv("NL_TEST_SHARED") == "" {
		t.Skip("NL_TEST_SHARED is not set")
	}
	f, err := New(Options{DataDir: t.TempDir()})
	must(t, err)
	defer f.Close()
	if _, ok := f.b.(*replicaBackend); !ok || !f.IsLeader() {
		t.Fatalf("the fleet is not a shared one: %T", f.b)
	}
}
