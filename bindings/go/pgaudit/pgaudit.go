// Package pgaudit persists a lifecycle.Fleet's audit log to PostgreSQL, every entry exactly
// once, and answers history queries.
//
// The store follows the fleet's audit ring with its sequence cursor: Sync copies every entry
// after the highest sequence number already in the table, inside one transaction, with
// ON CONFLICT DO NOTHING as a second guard against duplicates. If the database is down, Sync
// fails and the cursor stays; the next Sync catches up. If the ring evicted entries before the
// store saw them (the database was down for longer than the ring holds), the gap is recorded
// in a table of its own and reported: nothing is lost silently.
//
// Identity: a FleetID is bound, in nl_audit_fleets, to the fleet's InstanceID (random at
// creation, kept in a persistent fleet's data directory). Opening a store for a FleetID bound
// to another fleet is ErrIdentityConflict, so two fleets never write one history unnoticed.
// Text: PostgreSQL cannot store NUL characters in TEXT or JSONB; the store writes each NUL as
// the four characters \x00 (the library escapes control characters in failure texts the same
// way), so no entry the library accepted can stall the store.
//
//	store, err := pgaudit.Open(ctx, fleet, "postgres://…", pgaudit.Options{FleetID: "eu-1"})
//	go store.Run(ctx, 5*time.Second)
package pgaudit

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

// Options configure a Store. The zero value is usable.
type Options struct {
	// FleetID separates the entries of several fleets in one table ("default").
	FleetID string
	// BatchSize is how many entries one Sync reads from the ring per round trip (500).
	BatchSize int
	// OnGap, if set, is called when the ring evicted entries the store never saw.
	OnGap func(afterSeq, missed uint64)
}

// ErrSequenceRegressed: the fleet's sequence numbers are below what the table already holds
// for this FleetID although it is the same fleet (its data directory was restored from an
// older copy).
var ErrSequenceRegressed = errors.New("pgaudit: the fleet's audit sequence is behind the table for this fleet id")

// ErrIdentityConflict: the FleetID is bound to another fleet (another InstanceID): a second
// fleet configured with the same FleetID, or an in-memory fleet that restarted (its identity
// is new on every start; give it a persistent data directory or a FleetID per process
// lifetime).
var ErrIdentityConflict = errors.New("pgaudit: the fleet id belongs to another fleet")

// Store writes a fleet's audit entries to PostgreSQL.
type Store struct {
	pool    *pgxpool.Pool
	fleet   *lifecycle.Fleet
	fleetID string
	batch   int
	onGap   func(afterSeq, missed uint64)

	mu     sync.Mutex // serialises Sync; the cursor is only read and written under it
	cursor uint64
	loaded bool
}

// SyncResult is what one Sync did.
type SyncResult struct {
	Written uint64
	// Missed counts entries the ring evicted before the store saw them.
	Missed uint64
	Cursor uint64
}

// migrations are applied in order, each once, recorded in nl_schema_migrations.
var migrations = []string{
	`CREATE TABLE IF NOT EXISTS nl_audit_entries (
		fleet_id     TEXT        NOT NULL,
		seq          BIGINT      NOT NULL,
		at           TIMESTAMPTZ NOT NULL,
		action       TEXT        NOT NULL,
		node_id      TEXT        NOT NULL,
		container_id TEXT,
		reason_code  INTEGER     NOT NULL,
		reason       TEXT        NOT NULL,
		decision_by  TEXT        NOT NULL,
		result       TEXT        NOT NULL,
		error        TEXT,
		from_state   TEXT,
		to_state     TEXT,
		snapshot     JSONB,
		PRIMARY KEY (fleet_id, seq)
	);
	CREATE INDEX IF NOT EXISTS nl_audit_entries_node   ON nl_audit_entries (fleet_id, node_id, seq);
	CREATE INDEX IF NOT EXISTS nl_audit_entries_action ON nl_audit_entries (fleet_id, action, seq);
	CREATE INDEX IF NOT EXISTS nl_audit_entries_result ON nl_audit_entries (fleet_id, result, seq);
	CREATE INDEX IF NOT EXISTS nl_audit_entries_at     ON nl_audit_entries (fleet_id, at);
	CREATE TABLE IF NOT EXISTS nl_audit_gaps (
		fleet_id    TEXT        NOT NULL,
		after_seq   BIGINT      NOT NULL,
		missed      BIGINT      NOT NULL,
		detected_at TIMESTAMPTZ NOT NULL DEFAULT now(),
		PRIMARY KEY (fleet_id, after_seq)
	);`,
	`CREATE TABLE IF NOT EXISTS nl_audit_fleets (
		fleet_id    TEXT        PRIMARY KEY,
		instance_id TEXT        NOT NULL,
		bound_at    TIMESTAMPTZ NOT NULL DEFAULT now()
	);
	ALTER TABLE nl_audit_entries ADD COLUMN IF NOT EXISTS related_node_id TEXT;
	ALTER TABLE nl_audit_entries ADD COLUMN IF NOT EXISTS ram_mb BIGINT;
	ALTER TABLE nl_audit_entries ADD COLUMN IF NOT EXISTS age_ms BIGINT;`,
}

// tables are the tables the store needs; Open verifies each is present.
var tables = []string{"nl_audit_entries", "nl_audit_gaps", "nl_audit_fleets", "nl_schema_migrations"}

// Open connects, applies the schema migrations and returns a store following fleet. The caller
// keeps ownership of fleet; Close the store before the fleet.
func Open(ctx context.Context, fleet *lifecycle.Fleet, connString string, opts Options) (*Store, error) {
	if fleet == nil {
		return nil, errors.New("pgaudit: nil fleet")
	}
	pool, err := pgxpool.New(ctx, connString)
	if err != nil {
		return nil, fmt.Errorf("pgaudit: connecting: %w", err)
	}
	s := &Store{pool: pool, fleet: fleet, fleetID: opts.FleetID, batch: opts.BatchSize, onGap: opts.OnGap}
	if s.fleetID == "" {
		s.fleetID = "default"
	}
	if s.batch <= 0 {
		s.batch = 500
	}
	if err := s.migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	if err := s.bind(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// bind binds the FleetID to the fleet's identity, or refuses if it is bound to another.
func (s *Store) bind(ctx context.Context) error {
	id, err := s.fleet.InstanceID()
	if err != nil {
		return err
	}
	if _, err := s.pool.Exec(ctx,
		`INSERT INTO nl_audit_fleets (fleet_id, instance_id) VALUES ($1, $2) ON CONFLICT (fleet_id) DO NOTHING`,
		s.fleetID, id.String()); err != nil {
		return fmt.Errorf("pgaudit: binding the fleet id: %w", err)
	}
	var bound string
	if err := s.pool.QueryRow(ctx, `SELECT instance_id FROM nl_audit_fleets WHERE fleet_id = $1`, s.fleetID).Scan(&bound); err != nil {
		return fmt.Errorf("pgaudit: reading the fleet id's binding: %w", err)
	}
	if bound != id.String() {
		return fmt.Errorf("%w: fleet id %q is bound to fleet instance %s, this fleet is %s", ErrIdentityConflict, s.fleetID, bound, id)
	}
	return nil
}

// Close releases the connection pool.
func (s *Store) Close() { s.pool.Close() }

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("pgaudit: migrating: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	// One migrator at a time, even across processes.
	if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7311170001)`); err != nil {
		return fmt.Errorf("pgaudit: migrating: %w", err)
	}
	if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS nl_schema_migrations (
		version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("pgaudit: migrating: %w", err)
	}
	// Every migration is idempotent and all run on every open: a table dropped underneath
	// the store is recreated even though its migration is recorded as applied.
	for v := 1; v <= len(migrations); v++ {
		if _, err := tx.Exec(ctx, migrations[v-1]); err != nil {
			return fmt.Errorf("pgaudit: migration %d: %w", v, err)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO nl_schema_migrations (version) VALUES ($1) ON CONFLICT DO NOTHING`, v); err != nil {
			return fmt.Errorf("pgaudit: migration %d: %w", v, err)
		}
	}
	for _, table := range tables {
		var present bool
		if err := tx.QueryRow(ctx, `SELECT to_regclass($1) IS NOT NULL`, table).Scan(&present); err != nil {
			return fmt.Errorf("pgaudit: checking the schema: %w", err)
		}
		if !present {
			return fmt.Errorf("pgaudit: table %s is missing after the migrations", table)
		}
	}
	return tx.Commit(ctx)
}

// Sync writes every entry the ring holds beyond what the table has. Safe to call from several
// goroutines (calls are serialised). On a database error nothing advances: call it again.
func (s *Store) Sync(ctx context.Context) (SyncResult, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.loaded {
		if err := s.pool.QueryRow(ctx,
			`SELECT COALESCE(MAX(seq), 0) FROM nl_audit_entries WHERE fleet_id = $1`, s.fleetID,
		).Scan(&s.cursor); err != nil {
			return SyncResult{}, fmt.Errorf("pgaudit: reading the cursor: %w", err)
		}
		s.loaded = true
	}
	stats, err := s.fleet.AuditStats()
	if err != nil {
		return SyncResult{}, err
	}
	if stats.NextSeq-1 < s.cursor {
		return SyncResult{Cursor: s.cursor}, fmt.Errorf("%w (fleet at %d, table at %d)", ErrSequenceRegressed, stats.NextSeq-1, s.cursor)
	}
	res := SyncResult{Cursor: s.cursor}
	for {
		page, err := s.fleet.AuditSince(s.cursor, s.batch)
		if err != nil {
			return res, err
		}
		if len(page.Entries) == 0 && page.Missed == 0 {
			return res, nil
		}
		written, err := s.write(ctx, page)
		if isUndefinedTable(err) {
			// The schema was dropped underneath the store: recreate it and retry once.
			if err = s.migrate(ctx); err == nil {
				written, err = s.write(ctx, page)
			}
		}
		if err != nil {
			// The transaction rolled back: the cursor stays, the next Sync retries.
			return res, err
		}
		if page.Missed > 0 && s.onGap != nil {
			s.onGap(s.cursor, page.Missed)
		}
		res.Written += written
		res.Missed += page.Missed
		s.cursor = page.NextCursor
		res.Cursor = s.cursor
	}
}

// write stores one page in one transaction and returns how many rows it inserted (an entry
// already in the table is not counted).
func (s *Store) write(ctx context.Context, page lifecycle.AuditPage) (uint64, error) {
	tx, err := s.pool.Begin(ctx)
	if err != nil {
		return 0, fmt.Errorf("pgaudit: writing: %w", err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // a no-op after Commit
	if page.Missed > 0 {
		if _, err := tx.Exec(ctx,
			`INSERT INTO nl_audit_gaps (fleet_id, after_seq, missed) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING`,
			s.fleetID, s.cursor, page.Missed); err != nil {
			return 0, fmt.Errorf("pgaudit: recording a gap: %w", err)
		}
	}
	batch := &pgx.Batch{}
	for _, e := range page.Entries {
		var snapshot []byte
		if e.Snapshot != nil {
			if snapshot, err = json.Marshal(storableSnapshot(*e.Snapshot)); err != nil {
				return 0, err
			}
		}
		var ram, age *int64
		if e.RAMMB != nil {
			v := int64(*e.RAMMB)
			ram = &v
		}
		if e.Age != nil {
			v := e.Age.Milliseconds()
			age = &v
		}
		batch.Queue(`INSERT INTO nl_audit_entries
			(fleet_id, seq, at, action, node_id, container_id, reason_code, reason, decision_by, result, error,
			 from_state, to_state, snapshot, related_node_id, ram_mb, age_ms)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			ON CONFLICT (fleet_id, seq) DO NOTHING`,
			s.fleetID, int64(e.Seq), e.Time, e.Action.String(), storable(e.NodeID), nullable(e.ContainerID),
			int32(e.ReasonCode), storable(e.Reason), storable(e.DecisionBy), e.Result.String(), nullable(e.Error),
			stateName(e.FromState), stateName(e.ToState), snapshot, nullable(e.RelatedNodeID), ram, age)
	}
	results := tx.SendBatch(ctx, batch)
	var written uint64
	for range page.Entries {
		tag, err := results.Exec()
		if err != nil {
			results.Close()
			return 0, fmt.Errorf("pgaudit: writing: %w", err)
		}
		written += uint64(tag.RowsAffected())
	}
	if err := results.Close(); err != nil {
		return 0, fmt.Errorf("pgaudit: writing: %w", err)
	}
	if err := tx.Commit(ctx); err != nil {
		return 0, fmt.Errorf("pgaudit: committing: %w", err)
	}
	return written, nil
}

func isUndefinedTable(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42P01"
}

// storable makes any text storable in PostgreSQL: NUL becomes the four characters \x00 (TEXT
// and JSONB cannot hold NUL), and invalid UTF-8 (which the library never produces) is replaced.
func storable(s string) string {
	if strings.IndexByte(s, 0) >= 0 {
		s = strings.ReplaceAll(s, "\x00", `\x00`)
	}
	if !utf8.ValidString(s) {
		s = strings.ToValidUTF8(s, "\uFFFD")
	}
	return s
}

// storableSnapshot is the snapshot with every text made storable.
func storableSnapshot(s lifecycle.StateSnapshot) lifecycle.StateSnapshot {
	s.InstanceType = storable(s.InstanceType)
	s.EvacuatedBy = storable(s.EvacuatedBy)
	holds := make([]lifecycle.Mark, len(s.Holds))
	for i, h := range s.Holds {
		holds[i] = lifecycle.Mark{Name: storable(h.Name), Detail: storable(h.Detail)}
	}
	s.Holds = holds
	cordons := make([]lifecycle.SnapshotCordon, len(s.Cordons))
	for i, c := range s.Cordons {
		cordons[i] = lifecycle.SnapshotCordon{Name: storable(c.Name), Reason: storable(c.Reason), Evacuate: c.Evacuate}
	}
	s.Cordons = cordons
	if s.Labels != nil {
		labels := make(map[string]string, len(s.Labels))
		for k, v := range s.Labels {
			labels[storable(k)] = storable(v)
		}
		s.Labels = labels
	}
	return s
}

func nullable(s string) *string {
	if s == "" {
		return nil
	}
	s = storable(s)
	return &s
}

func stateName(s *lifecycle.State) *string {
	if s == nil {
		return nil
	}
	name := s.String()
	return &name
}

// Run calls Sync every interval until ctx is done. Errors (a database outage) are passed to
// onError if given and retried at the next tick; the store catches up from its cursor.
func (s *Store) Run(ctx context.Context, interval time.Duration, onError func(error)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		if _, err := s.Sync(ctx); err != nil && onError != nil && ctx.Err() == nil {
			onError(err)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Filter selects history. Zero fields do not filter; Limit 0 means 1000.
type Filter struct {
	NodeID string
	Action *lifecycle.Action
	Result *lifecycle.Result
	From   time.Time // inclusive
	To     time.Time // exclusive
	// AfterSeq returns entries with a higher sequence number (a cursor for paging).
	AfterSeq uint64
	Limit    int
}

// Query returns the matching entries in sequence order.
func (s *Store) Query(ctx context.Context, f Filter) ([]lifecycle.AuditEntry, error) {
	q := `SELECT seq, at, action, node_id, COALESCE(container_id, ''), reason_code, reason, decision_by,
		result, COALESCE(error, ''), from_state, to_state, snapshot, COALESCE(related_node_id, ''), ram_mb, age_ms
		FROM nl_audit_entries WHERE fleet_id = $1 AND seq > $2`
	args := []any{s.fleetID, int64(f.AfterSeq)}
	add := func(cond string, v any) {
		args = append(args, v)
		q += fmt.Sprintf(" AND %s $%d", cond, len(args))
	}
	if f.NodeID != "" {
		add("node_id =", f.NodeID)
	}
	if f.Action != nil {
		add("action =", f.Action.String())
	}
	if f.Result != nil {
		add("result =", f.Result.String())
	}
	if !f.From.IsZero() {
		add("at >=", f.From)
	}
	if !f.To.IsZero() {
		add("at <", f.To)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 1000
	}
	args = append(args, limit)
	q += fmt.Sprintf(" ORDER BY seq LIMIT $%d", len(args))

	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("pgaudit: querying: %w", err)
	}
	defer rows.Close()
	out := []lifecycle.AuditEntry{}
	for rows.Next() {
		var (
			e                  lifecycle.AuditEntry
			seq                int64
			action, result     string
			reasonCode         int32
			fromState, toState *string
			snapshot           []byte
			ram, age           *int64
		)
		if err := rows.Scan(&seq, &e.Time, &action, &e.NodeID, &e.ContainerID, &reasonCode, &e.Reason,
			&e.DecisionBy, &result, &e.Error, &fromState, &toState, &snapshot, &e.RelatedNodeID, &ram, &age); err != nil {
			return nil, fmt.Errorf("pgaudit: reading: %w", err)
		}
		e.Seq = uint64(seq)
		if ram != nil {
			v := int(*ram)
			e.RAMMB = &v
		}
		if age != nil {
			v := time.Duration(*age) * time.Millisecond
			e.Age = &v
		}
		e.ReasonCode = lifecycle.Reason(reasonCode)
		if err := e.Action.UnmarshalText([]byte(action)); err != nil {
			return nil, err
		}
		if err := e.Result.UnmarshalText([]byte(result)); err != nil {
			return nil, err
		}
		if e.FromState, err = parseState(fromState); err != nil {
			return nil, err
		}
		if e.ToState, err = parseState(toState); err != nil {
			return nil, err
		}
		if snapshot != nil {
			e.Snapshot = &lifecycle.StateSnapshot{}
			if err := json.Unmarshal(snapshot, e.Snapshot); err != nil {
				return nil, err
			}
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func parseState(name *string) (*lifecycle.State, error) {
	if name == nil {
		return nil, nil
	}
	s, err := lifecycle.ParseState(*name)
	return &s, err
}

// Gap is a range of entries the ring evicted before the store saw them.
type Gap struct {
	AfterSeq   uint64
	Missed     uint64
	DetectedAt time.Time
}

// Gaps lists the recorded gaps, oldest first.
func (s *Store) Gaps(ctx context.Context) ([]Gap, error) {
	rows, err := s.pool.Query(ctx,
		`SELECT after_seq, missed, detected_at FROM nl_audit_gaps WHERE fleet_id = $1 ORDER BY after_seq`, s.fleetID)
	if err != nil {
		return nil, fmt.Errorf("pgaudit: querying gaps: %w", err)
	}
	defer rows.Close()
	out := []Gap{}
	for rows.Next() {
		var g Gap
		var after, missed int64
		if err := rows.Scan(&after, &missed, &g.DetectedAt); err != nil {
			return nil, err
		}
		g.AfterSeq, g.Missed = uint64(after), uint64(missed)
		out = append(out, g)
	}
	return out, rows.Err()
}
