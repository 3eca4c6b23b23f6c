package pgstore

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
	"github.com/payperplay/node-lifecycle/bindings/go/lifecycletest"
)

func dsn(t testing.TB) string {
	t.Helper()
	d := os.Getenv("NL_PG_DSN")
	if d == "" {
		if os.Getenv("NL_REQUIRE_PG") != "" {
			t.Fatal("NL_PG_DSN is not set: run the tests through scripts/with-postgres")
		}
		t.Skip("NL_PG_DSN not set: run through scripts/with-postgres for the PostgreSQL tests")
	}
	return d
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// partition is a switch between a pool and the database: while cut, every connection's reads
// and writes fail and no new connection is made.
type partition struct{ cut atomic.Bool }

type partConn struct {
	net.Conn
	p *partition
}

func (c partConn) Read(b []byte) (int, error) {
	if c.p.cut.Load() {
		return 0, errors.New("partitioned")
	}
	return c.Conn.Read(b)
}

func (c partConn) Write(b []byte) (int, error) {
	if c.p.cut.Load() {
		return 0, errors.New("partitioned")
	}
	return c.Conn.Write(b)
}

func newPool(t testing.TB, p *partition) *pgxpool.Pool {
	t.Helper()
	cfg, err := pgxpool.ParseConfig(dsn(t))
	must(t, err)
	if p != nil {
		cfg.ConnConfig.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
			if p.cut.Load() {
				return nil, errors.New("partitioned")
			}
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return partConn{Conn: c, p: p}, nil
		}
	}
	pool, err := pgxpool.NewWithConfig(context.Background(), cfg)
	must(t, err)
	t.Cleanup(pool.Close)
	return pool
}

var fleetSeq atomic.Int64

// fleetName is unique per test run, so tests never share a fleet's rows.
func fleetName(t testing.TB) string {
	return fmt.Sprintf("%s-%d-%d", t.Name(), os.Getpid(), fleetSeq.Add(1))
}

func openStore(t testing.TB, pool *pgxpool.Pool, fleet string) *Store {
	t.Helper()
	s, err := Open(context.Background(), pool, fleet)
	must(t, err)
	return s
}

func replica(t testing.TB, s lifecycle.SharedStore, id string, ttl time.Duration, onLeader func(bool)) *lifecycle.Fleet {
	t.Helper()
	f, err := lifecycle.New(lifecycle.Options{ReadyGrace: lifecycle.Off, Shared: &lifecycle.Replication{
		Store: s, ReplicaID: id, LeaseTTL: ttl, Poll: 10 * time.Millisecond,
		StoreTimeout: 2 * time.Second, OnLeadership: onLeader}})
	must(t, err)
	t.Cleanup(func() { _ = f.Close() })
	return f
}

func waitFor(t testing.TB, what string, within time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(within)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %v waiting for %s", within, what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// stealLease ends the current lease in the database, as its expiry would.
func stealLease(t testing.TB, pool *pgxpool.Pool, fleet string) {
	t.Helper()
	_, err := pool.Exec(context.Background(), `UPDATE nl_lease SET expires_at = clock_timestamp() - interval '1 second' WHERE fleet = $1`, fleet)
	must(t, err)
}

// Replicas racing for the lease, 1000 times: a fresh lease and an expired one each have
// exactly one winner, and no epoch is ever granted twice; a loser's (or a deposed winner's)
// write is refused.
func TestLeaseRaces(t *testing.T) {
	pool := newPool(t, nil)
	ctx := context.Background()
	const rounds, racers = 1000, 4
	if testing.Short() {
		t.Skip("1000 rounds")
	}
	for round := 0; round < rounds; round++ {
		s := openStore(t, pool, fleetName(t))
		for phase := 0; phase < 2; phase++ {
			if phase == 1 {
				stealLease(t, pool, s.fleet)
			}
			type win struct {
				holder string
				epoch  uint64
			}
			wins := make(chan win, racers)
			var wg sync.WaitGroup
			for r := 0; r < racers; r++ {
				wg.Add(1)
				go func(holder string) {
					defer wg.Done()
					epoch, ok, err := s.Acquire(ctx, holder, time.Minute)
					if err != nil {
						t.Error(err)
						return
					}
					if ok {
						wins <- win{holder, epoch}
					}
				}(fmt.Sprintf("r%d", r))
			}
			wg.Wait()
			close(wins)
			var got []win
			for w := range wins {
				got = append(got, w)
			}
			if len(got) != 1 || got[0].epoch != uint64(phase+1) {
				t.Fatalf("round %d phase %d: winners %+v", round, phase, got)
			}
			// Only the winner writes; everyone else, and the previous epoch, is fenced.
			must(t, s.Append(ctx, got[0].holder, got[0].epoch, "f", int64(phase), []byte{byte(phase)}))
			for r := 0; r < racers; r++ {
				holder := fmt.Sprintf("r%d", r)
				for _, epoch := range []uint64{got[0].epoch - 1, got[0].epoch} {
					if holder == got[0].holder && epoch == got[0].epoch {
						continue
					}
					if err := s.Append(ctx, holder, epoch, "f", int64(phase+1), []byte{9}); !errors.Is(err, lifecycle.ErrFenced) {
						t.Fatalf("round %d: %s under epoch %d wrote: %v", round, holder, epoch, err)
					}
				}
			}
		}
	}
}

// The store's files behave as files: append, truncate inside a piece, rename over, remove,
// and Load returns exactly them.
func TestFiles(t *testing.T) {
	pool := newPool(t, nil)
	ctx := context.Background()
	s := openStore(t, pool, fleetName(t))
	epoch, ok, err := s.Acquire(ctx, "a", time.Minute)
	must(t, err)
	if !ok {
		t.Fatal("no lease")
	}
	must(t, s.Append(ctx, "a", epoch, "j", 0, []byte("hello ")))
	must(t, s.Append(ctx, "a", epoch, "j", 6, []byte("world")))
	if err := s.Append(ctx, "a", epoch, "j", 3, []byte("x")); err == nil {
		t.Fatal("an append that does not continue the file was accepted")
	}
	must(t, s.Truncate(ctx, "a", epoch, "j", 8))
	must(t, s.Append(ctx, "a", epoch, "j", 8, []byte("!")))
	must(t, s.Append(ctx, "a", epoch, "tmp", 0, []byte("new")))
	must(t, s.Append(ctx, "a", epoch, "old", 0, []byte("old")))
	must(t, s.Rename(ctx, "a", epoch, "tmp", "old"))
	must(t, s.Append(ctx, "a", epoch, "empty", 0, nil))
	must(t, s.Append(ctx, "a", epoch, "gone", 0, []byte("x")))
	must(t, s.Remove(ctx, "a", epoch, "gone"))
	files, v1, err := s.Load(ctx)
	must(t, err)
	want := map[string]string{"j": "hello wo!", "old": "new", "empty": ""}
	if len(files) != len(want) {
		t.Fatalf("files: %q", files)
	}
	for k, v := range want {
		if string(files[k]) != v {
			t.Fatalf("%s: %q, want %q", k, files[k], v)
		}
	}
	must(t, s.Remove(ctx, "a", epoch, "empty"))
	if v2, _ := s.Version(ctx); v2 <= v1 {
		t.Fatalf("version did not move: %d -> %d", v1, v2)
	}
}

// The leader is killed (SIGKILL) in the middle of a stream of mutations: the standby takes
// over within about the lease TTL with every mutation the leader acknowledged, the ticket of
// the decommission it began, and a sequence that continues.
func TestKilledLeaderFailsOver(t *testing.T) {
	if os.Getenv("NL_PGSTORE_CHILD") != "" {
		t.Skip("the child's half runs in TestMain")
	}
	pool := newPool(t, nil)
	fleet := fleetName(t)
	openStore(t, pool, fleet)
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "NL_PGSTORE_CHILD="+fleet)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	must(t, err)
	must(t, cmd.Start())
	acked := map[string]bool{}
	var ticket string
	lines := bufio.NewScanner(out)
	for lines.Scan() && len(acked) < 40 {
		f := strings.Fields(lines.Text())
		switch {
		case len(f) == 2 && f[0] == "ack":
			acked[f[1]] = true
		case len(f) == 3 && f[0] == "ticket":
			ticket = f[2]
		}
	}
	must(t, cmd.Process.Signal(syscall.SIGKILL))
	_ = cmd.Wait()
	killed := time.Now()
	if ticket == "" || len(acked) < 40 {
		t.Fatalf("the child acknowledged %d mutations, ticket %q", len(acked), ticket)
	}

	b := replica(t, openStore(t, pool, fleet), "survivor", time.Second, nil)
	waitFor(t, "the survivor to lead", 10*time.Second, b.IsLeader)
	t.Logf("failover %v after the kill (lease TTL 1s)", time.Since(killed).Round(time.Millisecond))
	for id := range acked {
		if _, err := b.Node(id); err != nil {
			t.Errorf("acknowledged node %s lost: %v", id, err)
		}
	}
	got, ok, err := b.TicketFor("doomed")
	must(t, err)
	if !ok || got.ID.String() != ticket {
		t.Fatalf("the ticket after failover: %v %v, want %s", got, ok, ticket)
	}
	must(t, b.CompleteDecommission(got))
	if r, _ := b.Restoring(); !r {
		t.Fatal("a promoted replica runs the restore pass like a restart")
	}
}

// child is the leader TestKilledLeaderFailsOver kills: it registers nodes one after another
// and prints each acknowledged one.
func child(fleet string) {
	ctx := context.Background()
	pool, err := pgxpool.New(ctx, os.Getenv("NL_PG_DSN"))
	if err != nil {
		panic(err)
	}
	s, err := Open(ctx, pool, fleet)
	if err != nil {
		panic(err)
	}
	f, err := lifecycle.New(lifecycle.Options{ReadyGrace: lifecycle.Off, Shared: &lifecycle.Replication{
		Store: s, ReplicaID: "child", LeaseTTL: time.Second},
		CompactAfterRecords: 16}) // compactions (snapshot, rename, removals) run during the stream
	if err != nil {
		panic(err)
	}
	if _, err := f.Register(lifecycle.NodeSpec{ID: "doomed", Origin: lifecycle.OriginCloud, TotalRAMMB: 4096, BootedFromImage: true}); err != nil {
		panic(err)
	}
	ticket, err := f.BeginDecommission("doomed", "reactive_policy")
	if err != nil {
		panic(err)
	}
	fmt.Printf("ticket doomed %s\n", ticket.ID)
	for i := 0; ; i++ {
		id := fmt.Sprintf("n%04d", i)
		if _, err := f.Register(lifecycle.NodeSpec{ID: id, Origin: lifecycle.OriginCloud, TotalRAMMB: 8192}); err != nil {
			panic(err)
		}
		fmt.Printf("ack %s\n", id)
	}
}

func TestMain(m *testing.M) {
	if fleet := os.Getenv("NL_PGSTORE_CHILD"); fleet != "" {
		child(fleet)
		return
	}
	os.Exit(m.Run())
}

// A partitioned leader keeps trying to write: nothing it attempts is acknowledged, the
// standby takes over, and once the partition heals the old leader steps down to standby and
// sees the new leader's writes. A leader deposed without knowing it (its lease ended while it
// was paused) gets ErrFenced on its next write.
func TestPartitionedLeaderIsFenced(t *testing.T) {
	fleet := fleetName(t)
	var cut partition
	aPool := newPool(t, &cut)
	bPool := newPool(t, nil)
	a := replica(t, openStore(t, aPool, fleet), "a", 500*time.Millisecond, nil)
	b := replica(t, openStore(t, bPool, fleet), "b", 500*time.Millisecond, nil)
	if !a.IsLeader() {
		t.Fatal("a leads")
	}
	_, err := a.Register(lifecycle.NodeSpec{ID: "before", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
	must(t, err)

	cut.cut.Store(true)
	var refused int
	deadline := time.Now().Add(2 * time.Second)
	for i := 0; time.Now().Before(deadline); i++ {
		_, err := a.Register(lifecycle.NodeSpec{ID: fmt.Sprintf("during-%d", i), Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
		if err == nil {
			t.Fatalf("a partitioned leader acknowledged during-%d", i)
		}
		refused++
		time.Sleep(20 * time.Millisecond)
	}
	waitFor(t, "b to take over", 5*time.Second, b.IsLeader)
	_, err = b.Register(lifecycle.NodeSpec{ID: "after", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
	must(t, err)
	nodes, err := b.Nodes()
	must(t, err)
	for _, n := range nodes {
		if strings.HasPrefix(n.ID, "during-") {
			t.Fatalf("a write of the partitioned leader is visible: %s", n.ID)
		}
	}
	cut.cut.Store(false)
	waitFor(t, "a to step down and see b's writes", 5*time.Second, func() bool {
		_, err := a.Node("after")
		return !a.IsLeader() && err == nil
	})
	t.Logf("%d writes refused during the partition", refused)

	// Deposed without knowing: b's lease is ended behind its back and a takes over; b's next
	// write is fenced.
	stealLease(t, bPool, fleet)
	waitFor(t, "a to lead again", 5*time.Second, a.IsLeader)
	_, err = b.Register(lifecycle.NodeSpec{ID: "stale", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
	if !errors.Is(err, lifecycle.ErrFenced) && !errors.Is(err, lifecycle.ErrNotLeader) {
		t.Fatalf("a deposed leader's write: %v", err)
	}
	if _, err := a.Node("stale"); !errors.Is(err, lifecycle.ErrNodeNotFound) {
		t.Fatalf("the fenced write is visible: %v", err)
	}
}

// A claim on the leader races a takeover followed by a decommission of the same empty node on
// whichever replica is promoted (after its restore pass, as the conductor runs it on
// promotion), 40 times: never do both win.
func TestClaimVersusDecommissionAcrossReplicas(t *testing.T) {
	pool := newPool(t, nil)
	ctx := context.Background()
	rounds := 40
	if testing.Short() {
		rounds = 10
	}
	var claims, decommissions int
	for round := 0; round < rounds; round++ {
		fleet := fleetName(t)
		promoted := make(chan *lifecycle.Fleet, 4)
		var a, b *lifecycle.Fleet
		open := func(id string, self **lifecycle.Fleet) *lifecycle.Fleet {
			f, err := lifecycle.New(lifecycle.Options{ReadyGrace: lifecycle.Off, PostSyncGrace: lifecycle.Off,
				Shared: &lifecycle.Replication{Store: openStore(t, pool, fleet), ReplicaID: id,
					LeaseTTL: time.Minute, Poll: 5 * time.Millisecond,
					OnLeadership: func(leader bool) {
						if leader {
							promoted <- *self
						}
					}}})
			must(t, err)
			*self = f
			return f
		}
		open("a", &a)
		open("b", &b)
		_, err := a.Register(lifecycle.NodeSpec{ID: "n", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192, BootedFromImage: true})
		must(t, err)
		var claimed, decommissioned bool
		var wg sync.WaitGroup
		wg.Add(2)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round%5) * time.Millisecond)
			_, err := a.Claim("n", 1024, 0)
			claimed = err == nil
		}()
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(round*3%7) * time.Millisecond)
			stealLease(t, pool, fleet)
			select {
			case leader := <-promoted:
				if _, err := leader.FinishRestore(); err != nil {
					t.Error(err)
					return
				}
				_, err := leader.BeginDecommission("n", "reactive_policy")
				decommissioned = err == nil
			case <-time.After(5 * time.Second):
				t.Error("nobody was promoted after the lease was taken away")
			}
		}()
		wg.Wait()
		if claimed && decommissioned {
			t.Fatalf("round %d: the claim and the decommission both won", round)
		}
		if claimed {
			claims++
		}
		if decommissioned {
			decommissions++
		}
		_ = a.Close()
		_ = b.Close()
		_, _ = pool.Exec(ctx, `DELETE FROM nl_file WHERE fleet = $1`, fleet)
	}
	// Both outcomes must occur, or the race was not a race.
	t.Logf("%d rounds: the claim won %d, the decommission %d", rounds, claims, decommissions)
	if claims == 0 || decommissions == 0 {
		t.Fatalf("one side never won (claims %d, decommissions %d): the rounds did not race", claims, decommissions)
	}
}

// The database goes down under a leader: the write in flight is refused (never acknowledged),
// and once the database is back the replica reopens the fleet from the store by itself, with
// exactly what was acknowledged, and tells the conductor (OnLeadership(true)).
func TestStoreOutageIsNeverAcknowledgedAndHeals(t *testing.T) {
	stop, start := os.Getenv("NL_PG_STOP"), os.Getenv("NL_PG_START")
	if stop == "" || start == "" {
		t.Fatal("NL_PG_STOP/NL_PG_START not set: run through scripts/with-postgres")
	}
	pool := newPool(t, nil)
	var reopened atomic.Int32
	a := replica(t, openStore(t, pool, fleetName(t)), "a", 2*time.Second, func(leader bool) {
		if leader {
			reopened.Add(1)
		}
	})
	_, err := a.Register(lifecycle.NodeSpec{ID: "before", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
	must(t, err)
	if out, err := exec.Command("sh", "-c", stop).CombinedOutput(); err != nil {
		t.Fatalf("stopping PostgreSQL: %v: %s", err, out)
	}
	_, err = a.Register(lifecycle.NodeSpec{ID: "during", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
	if out, serr := exec.Command("sh", "-c", start).CombinedOutput(); serr != nil {
		t.Fatalf("starting PostgreSQL: %v: %s", serr, out)
	}
	if err == nil {
		t.Fatal("a write while the database was down was acknowledged")
	}
	t.Logf("the write during the outage: %v", err)
	waitFor(t, "the replica to heal", 15*time.Second, func() bool {
		_, err := a.Register(lifecycle.NodeSpec{ID: "after", Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
		return err == nil
	})
	if reopened.Load() == 0 {
		t.Fatal("the conductor was not told that the fleet was reopened")
	}
	if _, err := a.Node("before"); err != nil {
		t.Fatalf("an acknowledged write lost: %v", err)
	}
	if _, err := a.Node("during"); !errors.Is(err, lifecycle.ErrNodeNotFound) {
		t.Fatalf("the refused write is visible: %v", err)
	}
}

// pgBackend runs the library's acceptance suite on PostgreSQL: each fleet in its own rows, a
// restart is a new replica (another id) opening the same fleet.
type pgBackend struct {
	pool    *pgxpool.Pool
	fleet   string
	reopens int
}

func (b *pgBackend) Open(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	b.fleet = fleetName(t)
	return b.open(t, o)
}

func (b *pgBackend) Reopen(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	b.reopens++
	return b.open(t, o)
}

func (b *pgBackend) open(t *testing.T, o lifecycle.Options) *lifecycle.Fleet {
	o.Shared = &lifecycle.Replication{Store: openStore(t, b.pool, b.fleet),
		ReplicaID: fmt.Sprintf("replica-%d", b.reopens), LeaseTTL: 10 * time.Second, Poll: 10 * time.Millisecond}
	f, err := lifecycle.New(o)
	must(t, err)
	if !f.IsLeader() {
		t.Fatal("the only replica does not lead")
	}
	return f
}

func TestAcceptanceOnPostgreSQL(t *testing.T) {
	lifecycletest.Run(t, &pgBackend{pool: newPool(t, nil)})
}

// Damage in the database is found as on a disk: a flipped byte in a journal frame makes the
// next open fail with ErrCorrupt naming the file, and the store is left as it was.
func TestDamageInTheStoreIsCorrupt(t *testing.T) {
	pool := newPool(t, nil)
	ctx := context.Background()
	fleet := fleetName(t)
	f, err := lifecycle.New(lifecycle.Options{Shared: &lifecycle.Replication{Store: openStore(t, pool, fleet), ReplicaID: "a"}})
	must(t, err)
	for i := 0; i < 3; i++ {
		_, err := f.Register(lifecycle.NodeSpec{ID: fmt.Sprintf("n%d", i), Origin: lifecycle.OriginCloud, TotalRAMMB: 8192})
		must(t, err)
	}
	must(t, f.Close())
	// Flip one byte in the middle of the first journal piece that holds records.
	tag, err := pool.Exec(ctx, `
UPDATE nl_file_chunk SET data = set_byte(data, length(data) / 2, get_byte(data, length(data) / 2) # 255)
 WHERE (fleet, name, off) = (SELECT fleet, name, off FROM nl_file_chunk
                              WHERE fleet = $1 AND name LIKE 'journal-%' AND off > 0 ORDER BY name, off LIMIT 1)`, fleet)
	must(t, err)
	if tag.RowsAffected() != 1 {
		t.Fatal("no journal record to damage")
	}
	before, _, err := openStore(t, pool, fleet).Load(ctx)
	must(t, err)
	_, err = lifecycle.New(lifecycle.Options{Shared: &lifecycle.Replication{Store: openStore(t, pool, fleet), ReplicaID: "b"}})
	if !errors.Is(err, lifecycle.ErrCorrupt) || !strings.Contains(err.Error(), "journal-") {
		t.Fatalf("opening a damaged store: %v", err)
	}
	after, _, err := openStore(t, pool, fleet).Load(ctx)
	must(t, err)
	if len(after) != len(before) {
		t.Fatalf("the failed open changed the store: %d files, then %d", len(before), len(after))
	}
	for name, data := range before {
		if string(after[name]) != string(data) {
			t.Fatalf("the failed open changed %s", name)
		}
	}
}
