package pgaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

var t0 = time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)

// dsn returns the test server's address. Without one the tests skip, unless NL_REQUIRE_PG is
// set (as `make test` does), where a missing server is a failure, not a silent skip.
func dsn(t *testing.T) string {
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

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sh(t *testing.T, cmd string) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", cmd).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
}

func newFleet(t *testing.T, capacity int) *lifecycle.Fleet {
	f, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0, AuditCapacity: capacity})
	must(t, err)
	t.Cleanup(func() { f.Close() })
	return f
}

func count(t *testing.T, s *Store, where string, args ...any) int {
	t.Helper()
	var n int
	all := append([]any{s.fleetID}, args...)
	must(t, s.pool.QueryRow(context.Background(),
		"SELECT count(*) FROM nl_audit_entries WHERE fleet_id = $1 "+where, all...).Scan(&n))
	return n
}

func TestTenThousandEntriesExactlyOnceAndQueries(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, 20_000)
	store, err := Open(ctx, f, dsn(t), Options{FleetID: fmt.Sprintf("bulk-%d", time.Now().UnixNano())})
	must(t, err)
	defer store.Close()

	// 10,000 entries: 100 nodes registered, then scale and migration records spread over time.
	for i := 0; i < 100; i++ {
		must(t, f.RegisterCloudNode(fmt.Sprintf("n%03d", i), 8192))
	}
	for i := 0; i < 9_900; i++ {
		action := lifecycle.ActionScaleUp
		result := lifecycle.ResultSuccess
		if i%3 == 0 {
			action, result = lifecycle.ActionScaleDown, lifecycle.ResultRejected
		}
		_, err := f.RecordAudit(lifecycle.AuditRecord{Action: action, Result: result, NodeID: fmt.Sprintf("n%03d", i%100), Reason: "load", DecisionBy: "reactive_policy"})
		must(t, err)
		if i%1000 == 999 {
			must(t, f.Advance(time.Hour))
		}
	}
	res, err := store.Sync(ctx)
	must(t, err)
	if res.Written != 10_000 || res.Missed != 0 || res.Cursor != 10_000 {
		t.Fatalf("sync: %+v", res)
	}
	// A second Sync writes nothing: exactly once.
	res, err = store.Sync(ctx)
	must(t, err)
	if res.Written != 0 || count(t, store, "") != 10_000 {
		t.Fatalf("second sync: %+v, rows %d", res, count(t, store, ""))
	}

	byNode, err := store.Query(ctx, Filter{NodeID: "n042", Limit: 10_000})
	must(t, err)
	if len(byNode) != 100 || byNode[0].Action != lifecycle.ActionNodeProvision || byNode[0].Snapshot == nil {
		t.Fatalf("by node: %d entries, first %+v", len(byNode), byNode[0])
	}
	down := lifecycle.ActionScaleDown
	byAction, err := store.Query(ctx, Filter{Action: &down, Limit: 10_000})
	must(t, err)
	if len(byAction) != 3300 {
		t.Fatalf("by action: %d", len(byAction))
	}
	rejected := lifecycle.ResultRejected
	byResult, err := store.Query(ctx, Filter{Result: &rejected, Limit: 10_000})
	must(t, err)
	if len(byResult) != 3300 {
		t.Fatalf("by result: %d", len(byResult))
	}
	// Hour 3 holds the records 2000..2999 (entries 2101..3100 after the 100 registrations).
	window, err := store.Query(ctx, Filter{From: t0.Add(3 * time.Hour), To: t0.Add(4 * time.Hour), Limit: 10_000})
	must(t, err)
	if len(window) != 1000 || window[0].Seq != 3101 || window[999].Seq != 4100 {
		t.Fatalf("time range: %d entries, %d..%d", len(window), window[0].Seq, window[len(window)-1].Seq)
	}
	page, err := store.Query(ctx, Filter{AfterSeq: 9_990})
	must(t, err)
	if len(page) != 10 || page[0].Seq != 9_991 {
		t.Fatalf("paging: %d", len(page))
	}
	// What the library returns and what PostgreSQL returns are the same entry.
	lib, err := f.AuditByNode("n042", 1)
	must(t, err)
	got := byNode[len(byNode)-1]
	gotSnap, _ := json.Marshal(got.Snapshot)
	libSnap, _ := json.Marshal(lib[0].Snapshot)
	if got.Seq != lib[0].Seq || !got.Time.Equal(lib[0].Time) || got.Reason != lib[0].Reason || string(gotSnap) != string(libSnap) {
		t.Fatalf("round trip:\n db  %+v\n lib %+v", got, lib[0])
	}
}

func TestOutageCatchUpWithoutDuplicatesAndGaps(t *testing.T) {
	ctx := context.Background()
	d := dsn(t)
	stop, start := os.Getenv("NL_PG_STOP"), os.Getenv("NL_PG_START")
	if stop == "" || start == "" {
		t.Fatal("NL_PG_STOP/NL_PG_START not set: run through scripts/with-postgres")
	}
	f := newFleet(t, 300)
	var gaps []uint64
	store, err := Open(ctx, f, d, Options{FleetID: fmt.Sprintf("outage-%d", time.Now().UnixNano()), BatchSize: 50,
		OnGap: func(after, missed uint64) { gaps = append(gaps, missed) }})
	must(t, err)
	defer store.Close()

	record := func(n int) {
		for i := 0; i < n; i++ {
			_, err := f.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleUp, Result: lifecycle.ResultSuccess, NodeID: "n", DecisionBy: "reactive_policy"})
			must(t, err)
		}
	}
	record(120)
	_, err = store.Sync(ctx)
	must(t, err)

	// The database goes away mid-stream: Sync fails and nothing advances.
	sh(t, stop)
	record(100)
	if _, err := store.Sync(ctx); err == nil {
		t.Fatal("Sync succeeded with the database down")
	}
	record(50)
	sh(t, start)
	res, err := store.Sync(ctx)
	must(t, err)
	if res.Written != 150 || res.Missed != 0 || res.Cursor != 270 {
		t.Fatalf("catch-up: %+v", res)
	}
	if n := count(t, store, ""); n != 270 {
		t.Fatalf("rows after catch-up: %d", n)
	}
	var distinct int
	must(t, store.pool.QueryRow(ctx, "SELECT count(DISTINCT seq) FROM nl_audit_entries WHERE fleet_id = $1", store.fleetID).Scan(&distinct))
	if distinct != 270 {
		t.Fatalf("duplicates: %d distinct of 270", distinct)
	}

	// Down for longer than the ring holds (300): the evicted entries are a recorded gap.
	sh(t, stop)
	record(400)
	_, _ = store.Sync(ctx)
	sh(t, start)
	res, err = store.Sync(ctx)
	must(t, err)
	if res.Missed != 100 || res.Written != 300 || res.Cursor != 670 || len(gaps) != 1 || gaps[0] != 100 {
		t.Fatalf("after eviction: %+v gaps %v", res, gaps)
	}
	recorded, err := store.Gaps(ctx)
	must(t, err)
	if len(recorded) != 1 || recorded[0].AfterSeq != 270 || recorded[0].Missed != 100 {
		t.Fatalf("gaps table: %+v", recorded)
	}

	// A new store on the same table continues from the table's cursor.
	again, err := Open(ctx, f, d, Options{FleetID: store.fleetID})
	must(t, err)
	defer again.Close()
	res, err = again.Sync(ctx)
	must(t, err)
	if res.Written != 0 || res.Cursor != 670 {
		t.Fatalf("reopened store: %+v", res)
	}
	// Another fleet (a restarted in-memory one has a new identity) is refused at Open.
	fresh := newFleet(t, 10)
	if _, err := Open(ctx, fresh, d, Options{FleetID: store.fleetID}); !errors.Is(err, ErrIdentityConflict) {
		t.Fatalf("another fleet on the same fleet id: %v", err)
	}
}

func TestMigrationsAreIdempotent(t *testing.T) {
	ctx := context.Background()
	d := dsn(t)
	f := newFleet(t, 10)
	for i := 0; i < 3; i++ {
		s, err := Open(ctx, f, d, Options{FleetID: "migrations"})
		must(t, err)
		s.Close()
	}
	conn, err := pgx.Connect(ctx, d)
	must(t, err)
	defer conn.Close(ctx)
	var versions int
	must(t, conn.QueryRow(ctx, "SELECT count(*) FROM nl_schema_migrations").Scan(&versions))
	if versions != len(migrations) {
		t.Fatalf("migrations recorded: %d", versions)
	}
}

// Two fleets given the same FleetID: the second is refused, so neither loses entries while
// Written counts them. The first keeps working.
func TestTwoFleetsCannotShareAFleetID(t *testing.T) {
	ctx := context.Background()
	d := dsn(t)
	id := fmt.Sprintf("shared-%d", time.Now().UnixNano())
	a, b := newFleet(t, 100), newFleet(t, 100)
	sa, err := Open(ctx, a, d, Options{FleetID: id})
	must(t, err)
	defer sa.Close()
	if _, err := Open(ctx, b, d, Options{FleetID: id}); !errors.Is(err, ErrIdentityConflict) {
		t.Fatalf("second fleet: %v", err)
	}
	must(t, a.RegisterCloudNode("n", 1))
	res, err := sa.Sync(ctx)
	must(t, err)
	if res.Written != 1 || count(t, sa, "") != 1 {
		t.Fatalf("first fleet: %+v", res)
	}
	// Two stores of the same fleet may coexist; Written counts only rows really inserted.
	sa2, err := Open(ctx, a, d, Options{FleetID: id})
	must(t, err)
	defer sa2.Close()
	must(t, a.RegisterCloudNode("m", 1))
	r1, err := sa.Sync(ctx)
	must(t, err)
	r2, err := sa2.Sync(ctx)
	must(t, err)
	if r1.Written+r2.Written != 1 || count(t, sa, "") != 2 {
		t.Fatalf("two stores of one fleet: %+v %+v, rows %d", r1, r2, count(t, sa, ""))
	}
}

// A failure text with NUL bytes, invalid UTF-8 and control characters is stored, and the
// entries after it are stored too (it used to stop the store for good with SQLSTATE 22021).
func TestAnyFailureTextReachesTheStore(t *testing.T) {
	ctx := context.Background()
	f := newFleet(t, 100)
	s, err := Open(ctx, f, dsn(t), Options{FleetID: fmt.Sprintf("text-%d", time.Now().UnixNano())})
	must(t, err)
	defer s.Close()
	storeFailureText(t, ctx, f, s, "provider said \x00\xff\xfe\x1b[31m no\n")
}

// storeFailureText fails a decommission with text, records one more entry, syncs, and checks
// both reached the table with the failure's text as the library recorded it (NUL as \x00).
func storeFailureText(t *testing.T, ctx context.Context, f *lifecycle.Fleet, s *Store, text string) {
	t.Helper()
	node := fmt.Sprintf("n%d", time.Now().UnixNano())
	must(t, f.RegisterCloudNode(node, 1))
	if _, err := f.Transition(node, lifecycle.StateInitializing, "cloud_init_started"); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Transition(node, lifecycle.StateReady, "cloud_init_completed"); err != nil {
		t.Fatal(err)
	}
	must(t, f.SetPolicy(lifecycle.Policy{ReadyGrace: lifecycle.Off}))
	ticket, err := f.BeginDecommission(node, "fuzz")
	must(t, err)
	must(t, f.FailDecommission(ticket, errors.New(text)))
	_, err = f.RecordAudit(lifecycle.AuditRecord{Action: lifecycle.ActionScaleDown, NodeID: node, Reason: "after"})
	must(t, err)
	failed, err := f.AuditByResult(lifecycle.ResultFailed, 1)
	must(t, err)
	if _, err := s.Sync(ctx); err != nil {
		t.Fatalf("sync after failure text %q: %v", text, err)
	}
	rows, err := s.Query(ctx, Filter{NodeID: node, Limit: 100})
	must(t, err)
	var gotFailure, gotAfter bool
	for _, e := range rows {
		if e.Result == lifecycle.ResultFailed {
			gotFailure = e.Error == storable(failed[0].Error)
		}
		gotAfter = gotAfter || e.Reason == "after"
	}
	if !gotFailure || !gotAfter {
		t.Fatalf("text %q: failure stored %v, later entry stored %v (rows %+v)", text, gotFailure, gotAfter, rows)
	}
}

// FuzzFailureTextToStore sends arbitrary failure texts through the library into PostgreSQL.
// `go test` runs the seeds; `go test -fuzz FuzzFailureTextToStore` explores.
func FuzzFailureTextToStore(f *testing.F) {
	for _, seed := range []string{"", "\x00", "\xff", "a\x00b\x00", "\\x00", strings.Repeat("é", 3000), "\u0085\u2028"} {
		f.Add(seed)
	}
	d := os.Getenv("NL_PG_DSN")
	if d == "" {
		f.Skip("NL_PG_DSN not set")
	}
	fleet, err := lifecycle.New(lifecycle.Options{ManualClockStart: t0, AuditCapacity: 100_000})
	if err != nil {
		f.Fatal(err)
	}
	defer fleet.Close()
	store, err := Open(context.Background(), fleet, d, Options{FleetID: fmt.Sprintf("fuzz-%d", time.Now().UnixNano())})
	if err != nil {
		f.Fatal(err)
	}
	defer store.Close()
	f.Fuzz(func(t *testing.T, text string) {
		storeFailureText(t, context.Background(), fleet, store, text)
	})
}

// A table dropped underneath is recreated: at the next Open, and by a running store's Sync.
func TestDroppedTableIsRecreated(t *testing.T) {
	ctx := context.Background()
	d := dsn(t)
	f := newFleet(t, 100)
	id := fmt.Sprintf("dropped-%d", time.Now().UnixNano())
	s, err := Open(ctx, f, d, Options{FleetID: id})
	must(t, err)
	defer s.Close()
	must(t, f.RegisterCloudNode("n", 1))
	_, err = s.Sync(ctx)
	must(t, err)

	_, err = s.pool.Exec(ctx, "DROP TABLE nl_audit_entries")
	must(t, err)
	must(t, f.RegisterCloudNode("m", 1))
	res, err := s.Sync(ctx)
	must(t, err)
	if res.Written != 1 || count(t, s, "") != 1 {
		t.Fatalf("sync after the drop: %+v, rows %d", res, count(t, s, ""))
	}

	_, err = s.pool.Exec(ctx, "DROP TABLE nl_audit_entries")
	must(t, err)
	again, err := Open(ctx, f, d, Options{FleetID: id})
	must(t, err)
	defer again.Close()
	var present bool
	must(t, again.pool.QueryRow(ctx, "SELECT to_regclass('nl_audit_entries') IS NOT NULL").Scan(&present))
	if !present {
		t.Fatal("Open did not recreate the dropped table")
	}
}
