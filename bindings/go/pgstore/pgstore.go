// Package pgstore keeps a lifecycle fleet shared by replicas in PostgreSQL: its files (the
// core's checksummed journal and snapshot frames) and its leader lease.
//
//	store, err := pgstore.Open(ctx, pool, "eu-1")
//	fleet, err := lifecycle.New(lifecycle.Options{Shared: &lifecycle.Replication{
//	    Store: store, ReplicaID: os.Getenv("POD_NAME"), OnLeadership: onLeadership}})
//
// Tables (created if missing):
//
//	nl_lease(fleet, holder, epoch, expires_at, version)   one row per fleet
//	nl_file(fleet, name, size)                             the fleet's files
//	nl_file_chunk(fleet, name, off, epoch, data)          their bytes, in appended pieces
//
// Fencing: every change is one transaction that starts by updating the fleet's lease row
// under the condition that the caller's holder and epoch are the current ones and the lease
// has not expired by the database's clock (clock_timestamp()); if no row matches, the
// transaction changes nothing and the call returns an error matching lifecycle.ErrFenced.
// Because that update locks the row, a takeover (which bumps the epoch on the same row) waits
// for a change in flight and a change after a takeover sees the new epoch: every change that
// was acknowledged is visible to the next leader's Load, and no change of a deposed leader is
// acknowledged. Time is the database's only, so the replicas' clocks do not matter.
//
// Integrity: the bytes stored are the core's frames, each with its own checksum, so damage in
// the database is found by the core at open (lifecycle.ErrCorrupt) exactly as on a disk.
package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	lifecycle "github.com/payperplay/node-lifecycle/bindings/go"
)

const schema = `
CREATE TABLE IF NOT EXISTS nl_lease (
    fleet      text PRIMARY KEY,
    holder     text NOT NULL,
    epoch      bigint NOT NULL,
    expires_at timestamptz NOT NULL,
    version    bigint NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS nl_file (
    fleet text NOT NULL,
    name  text NOT NULL,
    size  bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (fleet, name)
);
CREATE TABLE IF NOT EXISTS nl_file_chunk (
    fleet text NOT NULL,
    name  text NOT NULL,
    off   bigint NOT NULL,
    epoch bigint NOT NULL,
    data  bytea NOT NULL,
    PRIMARY KEY (fleet, name, off),
    FOREIGN KEY (fleet, name) REFERENCES nl_file (fleet, name) ON UPDATE CASCADE ON DELETE CASCADE
);`

// Store is one fleet's files and lease in PostgreSQL. It implements lifecycle.SharedStore.
type Store struct {
	pool  *pgxpool.Pool
	fleet string
}

var _ lifecycle.SharedStore = (*Store)(nil)

// Open prepares the tables and returns the store of fleet (a name; several fleets can share
// the tables).
func Open(ctx context.Context, pool *pgxpool.Pool, fleet string) (*Store, error) {
	if fleet == "" {
		return nil, errors.New("pgstore: empty fleet name")
	}
	// Two replicas starting together both create the tables; the advisory lock orders them.
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock(7355608)`); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, schema)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: creating the tables: %w", err)
	}
	return &Store{pool: pool, fleet: fleet}, nil
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Acquire implements lifecycle.SharedStore.
func (s *Store) Acquire(ctx context.Context, holder string, ttl time.Duration) (uint64, bool, error) {
	var epoch int64
	err := s.pool.QueryRow(ctx, `
INSERT INTO nl_lease AS l (fleet, holder, epoch, expires_at)
VALUES ($1, $2, 1, clock_timestamp() + $3 * interval '1 millisecond')
ON CONFLICT (fleet) DO UPDATE
   SET holder = EXCLUDED.holder, epoch = l.epoch + 1, expires_at = EXCLUDED.expires_at
 WHERE l.expires_at <= clock_timestamp() OR l.holder = EXCLUDED.holder
RETURNING epoch`, s.fleet, holder, ms(ttl)).Scan(&epoch)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("pgstore: acquire: %w", err)
	}
	return uint64(epoch), true, nil
}

// Renew implements lifecycle.SharedStore.
func (s *Store) Renew(ctx context.Context, holder string, epoch uint64, ttl time.Duration) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
UPDATE nl_lease SET expires_at = clock_timestamp() + $4 * interval '1 millisecond'
 WHERE fleet = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
		s.fleet, holder, int64(epoch), ms(ttl))
	if err != nil {
		return false, fmt.Errorf("pgstore: renew: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}

// Release implements lifecycle.SharedStore.
func (s *Store) Release(ctx context.Context, holder string, epoch uint64) error {
	_, err := s.pool.Exec(ctx, `
UPDATE nl_lease SET expires_at = clock_timestamp()
 WHERE fleet = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
		s.fleet, holder, int64(epoch))
	if err != nil {
		return fmt.Errorf("pgstore: release: %w", err)
	}
	return nil
}

// Lease implements lifecycle.SharedStore.
func (s *Store) Lease(ctx context.Context) (lifecycle.LeaseInfo, error) {
	var l lifecycle.LeaseInfo
	var epoch int64
	err := s.pool.QueryRow(ctx, `SELECT holder, epoch, expires_at FROM nl_lease WHERE fleet = $1`, s.fleet).
		Scan(&l.Holder, &epoch, &l.Expires)
	if errors.Is(err, pgx.ErrNoRows) {
		return lifecycle.LeaseInfo{}, nil
	}
	if err != nil {
		return l, fmt.Errorf("pgstore: lease: %w", err)
	}
	l.Epoch = uint64(epoch)
	return l, nil
}

// Load implements lifecycle.SharedStore: one repeatable-read transaction, so the files and
// the version are one view.
func (s *Store) Load(ctx context.Context) (map[string][]byte, uint64, error) {
	files := map[string][]byte{}
	var version int64
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT coalesce((SELECT version FROM nl_lease WHERE fleet = $1), 0)`, s.fleet).Scan(&version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT name FROM nl_file WHERE fleet = $1`, s.fleet)
		if err != nil {
			return err
		}
		names, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			return err
		}
		for _, n := range names {
			files[n] = []byte{}
		}
		rows, err = tx.Query(ctx, `SELECT name, off, data FROM nl_file_chunk WHERE fleet = $1 ORDER BY name, off`, s.fleet)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var name string
			var off int64
			var data []byte
			if err := rows.Scan(&name, &off, &data); err != nil {
				return err
			}
			if int64(len(files[name])) != off {
				return fmt.Errorf("file %s: a piece at offset %d follows %d bytes (the table was edited)", name, off, len(files[name]))
			}
			files[name] = append(files[name], data...)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("pgstore: load: %w", err)
	}
	return files, uint64(version), nil
}

// Version implements lifecycle.SharedStore.
func (s *Store) Version(ctx context.Context) (uint64, error) {
	var v int64
	err := s.pool.QueryRow(ctx, `SELECT coalesce((SELECT version FROM nl_lease WHERE fleet = $1), 0)`, s.fleet).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("pgstore: version: %w", err)
	}
	return uint64(v), nil
}

// fenced runs change in a transaction that first claims the lease row for holder's epoch.
func (s *Store) fenced(ctx context.Context, what, holder string, epoch uint64, change func(tx pgx.Tx) error) error {
	err := pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `
UPDATE nl_lease SET version = version + 1
 WHERE fleet = $1 AND holder = $2 AND epoch = $3 AND expires_at > clock_timestamp()`,
			s.fleet, holder, int64(epoch))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%w: %s by %s under epoch %d: not the live lease", lifecycle.ErrFenced, what, holder, epoch)
		}
		return change(tx)
	})
	if err != nil && !errors.Is(err, lifecycle.ErrFenced) {
		return fmt.Errorf("pgstore: %s: %w", what, err)
	}
	return err
}

// Append implements lifecycle.SharedStore.
func (s *Store) Append(ctx context.Context, holder string, epoch uint64, name string, off int64, data []byte) error {
	return s.fenced(ctx, "append to "+name, holder, epoch, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO nl_file (fleet, name) VALUES ($1, $2) ON CONFLICT DO NOTHING`, s.fleet, name); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE nl_file SET size = size + $4 WHERE fleet = $1 AND name = $2 AND size = $3`,
			s.fleet, name, off, int64(len(data)))
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("append at %d does not continue the file", off)
		}
		if len(data) == 0 {
			return nil
		}
		_, err = tx.Exec(ctx, `INSERT INTO nl_file_chunk (fleet, name, off, epoch, data) VALUES ($1, $2, $3, $4, $5)`,
			s.fleet, name, off, int64(epoch), data)
		return err
	})
}

// Truncate implements lifecycle.SharedStore.
func (s *Store) Truncate(ctx context.Context, holder string, epoch uint64, name string, size int64) error {
	return s.fenced(ctx, "truncate "+name, holder, epoch, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM nl_file_chunk WHERE fleet = $1 AND name = $2 AND off >= $3`, s.fleet, name, size); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `
UPDATE nl_file_chunk SET data = substring(data FROM 1 FOR ($3 - off)::int)
 WHERE fleet = $1 AND name = $2 AND off < $3 AND off + length(data) > $3`, s.fleet, name, size); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, `UPDATE nl_file SET size = least(size, $3) WHERE fleet = $1 AND name = $2`, s.fleet, name, size)
		return err
	})
}

// Rename implements lifecycle.SharedStore.
func (s *Store) Rename(ctx context.Context, holder string, epoch uint64, from, to string) error {
	return s.fenced(ctx, "rename "+from, holder, epoch, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `DELETE FROM nl_file WHERE fleet = $1 AND name = $2`, s.fleet, to); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `UPDATE nl_file SET name = $3 WHERE fleet = $1 AND name = $2`, s.fleet, from, to)
		if err != nil {
			return err
		}
		if tag.RowsAffected() != 1 {
			return fmt.Errorf("%s does not exist", from)
		}
		return nil
	})
}

// Remove implements lifecycle.SharedStore.
func (s *Store) Remove(ctx context.Context, holder string, epoch uint64, name string) error {
	return s.fenced(ctx, "remove "+name, holder, epoch, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM nl_file WHERE fleet = $1 AND name = $2`, s.fleet, name)
		return err
	})
}
