// Package store is pgdeck's control-plane database: a pgx pool, embedded
// ordered migrations and one file per aggregate.
package store

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// ErrConflict is returned when a unique constraint rejects a write.
var ErrConflict = errors.New("already exists")

// ErrSchemaTooNew is returned when the database was migrated by a newer pgdeck.
var ErrSchemaTooNew = errors.New("schema is newer than this pgdeck")

// ErrLockHeld is returned by TryLock when another session holds the lock.
var ErrLockHeld = errors.New("lock held by another session")

// MinPoolConns is the fewest connections Open allows the pool: every running
// job and the monitor's lock keep one for as long as they last, so the pool
// must leave room for everything else (the provisioner runs at most
// MaxConns-8 workers). A larger pool_max_conns in the URL is kept.
const MinPoolConns = 16

// Advisory lock namespaces: the first key of PostgreSQL's two-int form, so
// that pgdeck's locks never meet each other (the migration lock uses the
// one-bigint form, a separate space).
const (
	// lockNSJobs: the second key is a job's id (its low 32 bits), held by
	// the instance that runs the job.
	lockNSJobs int32 = 7_001_002
	// lockNSTasks: the second key names a task that one instance at a time
	// runs, such as LockMonitor.
	lockNSTasks int32 = 7_001_003
)

// LockMonitor is the TryLock key held by the one instance that runs the
// health monitor.
const LockMonitor int32 = 1

// lockPlacement serialises placing and creating environments.
const lockPlacement int32 = 2

// unlockTimeout bounds the unlock when a SessionLock is released.
const unlockTimeout = 5 * time.Second

//go:embed migrations/*.sql
var migrationFS embed.FS

// Store holds the pool to the control-plane database.
type Store struct {
	Pool *pgxpool.Pool
}

// Open connects to url, applies pending migrations and refuses a schema newer
// than this binary knows. The pool gets at least MinPoolConns connections.
func Open(ctx context.Context, url string) (*Store, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, fmt.Errorf("store: parse database url: %w", err)
	}
	if cfg.MaxConns < MinPoolConns {
		cfg.MaxConns = MinPoolConns
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	s := &Store{Pool: pool}
	if err := s.Migrate(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Close closes the pool.
func (s *Store) Close() { s.Pool.Close() }

// Ping checks that the database answers a query.
func (s *Store) Ping(ctx context.Context) error {
	var one int
	return s.Pool.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// SessionLock is a session-level advisory lock held on its own pooled
// connection: it lasts until Release, or until that connection dies (the
// process was killed, the network broke), whichever comes first.
type SessionLock struct {
	mu      sync.Mutex
	conn    *pgxpool.Conn
	ns, key int32
}

// TryLock takes the advisory lock (LockMonitor, …) on a dedicated pooled
// connection without waiting; ErrLockHeld when another session holds it.
func (s *Store) TryLock(ctx context.Context, key int32) (*SessionLock, error) {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("store: lock %d: %w", key, err)
	}
	var got bool
	if err := conn.QueryRow(ctx, "SELECT pg_try_advisory_lock($1, $2)", lockNSTasks, key).Scan(&got); err != nil {
		// Cut off mid-query, the lock may have been granted: never hand such
		// a session back to the pool.
		conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck
		conn.Release()
		return nil, fmt.Errorf("store: lock %d: %w", key, err)
	}
	if !got {
		conn.Release()
		return nil, fmt.Errorf("store: lock %d: %w", key, ErrLockHeld)
	}
	return &SessionLock{conn: conn, ns: lockNSTasks, key: key}, nil
}

// Alive checks that the session holding the lock still answers; an error
// means the lock may be lost and should be released.
func (l *SessionLock) Alive(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return errors.New("store: lock released")
	}
	if _, err := l.conn.Exec(ctx, "SELECT 1"); err != nil {
		return fmt.Errorf("store: lock session: %w", err)
	}
	return nil
}

// Release unlocks and gives the connection back to the pool, or closes it
// when the unlock cannot be confirmed. Calling it again, or on nil, does
// nothing.
func (l *SessionLock) Release() {
	if l == nil {
		return
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conn == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), unlockTimeout)
	defer cancel()
	var unlocked bool
	if err := l.conn.QueryRow(ctx, "SELECT pg_advisory_unlock($1, $2)", l.ns, l.key).Scan(&unlocked); err != nil || !unlocked {
		// A pooled session that might still hold the lock would keep the
		// job or task from ever being taken over; closing it drops the lock.
		l.conn.Conn().Close(ctx) //nolint:errcheck
	}
	l.conn.Release()
	l.conn = nil
}

type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, err
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		if !ok {
			return nil, fmt.Errorf("store: migration %q has no version prefix", e.Name())
		}
		v, err := strconv.Atoi(num)
		if err != nil {
			return nil, fmt.Errorf("store: migration %q: %w", e.Name(), err)
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, err
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].version < out[j].version })
	return out, nil
}

// LatestVersion is the newest schema version this binary knows.
func LatestVersion() int {
	ms, err := migrations()
	if err != nil || len(ms) == 0 {
		return 0
	}
	return ms[len(ms)-1].version
}

// Migrate applies every pending migration, each in its own transaction, under
// an advisory lock so that two pgdeck instances never migrate at once.
func (s *Store) Migrate(ctx context.Context) error {
	ms, err := migrations()
	if err != nil {
		return fmt.Errorf("store: read migrations: %w", err)
	}
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	defer conn.Release()
	const lockKey = 7_001_001
	if _, err := conn.Exec(ctx, "SELECT pg_advisory_lock($1)", lockKey); err != nil {
		return fmt.Errorf("store: migrate: lock: %w", err)
	}
	defer conn.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", lockKey) //nolint:errcheck

	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`); err != nil {
		return fmt.Errorf("store: migrate: %w", err)
	}
	var current int
	if err := conn.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&current); err != nil {
		return fmt.Errorf("store: migrate: read version: %w", err)
	}
	latest := 0
	if len(ms) > 0 {
		latest = ms[len(ms)-1].version
	}
	if current > latest {
		return fmt.Errorf("store: the database schema is at version %d but this pgdeck knows versions up to %d; run the newer pgdeck that migrated it: %w", current, latest, ErrSchemaTooNew)
	}
	for _, m := range ms {
		if m.version <= current {
			continue
		}
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", m.version, m.name)
			return err
		})
		if err != nil {
			return fmt.Errorf("store: apply migration %s: %w", m.name, err)
		}
	}
	return nil
}

// SchemaVersion returns the applied schema version.
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	err := s.Pool.QueryRow(ctx, "SELECT coalesce(max(version), 0) FROM schema_migrations").Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// isUniqueViolation reports whether err is PostgreSQL's unique_violation.
func isUniqueViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23505"
}

// notFound maps pgx.ErrNoRows to ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, pgx.ErrNoRows) {
		return ErrNotFound
	}
	return err
}
