package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Database health statuses, the one vocabulary of pages, API and metrics.
const (
	HealthRunning = "running"
	HealthStopped = "stopped"
	HealthError   = "error"
)

// Health is the latest health result of an environment's primary, written
// by the monitor. Status changes only once several checks agree; CheckedAt
// and the figures follow every check.
type Health struct {
	EnvironmentID int64     `db:"environment_id"`
	Status        string    `db:"status"`
	Reason        string    `db:"reason"`
	CheckedAt     time.Time `db:"checked_at"`
	DurationMS    int       `db:"duration_ms"`
	// Stale is true when the last check could not read the figures, which
	// are then those read at FiguresAt.
	Stale     bool       `db:"stale"`
	FiguresAt *time.Time `db:"figures_at"`
	// PGVersion is the server_version the server reports.
	PGVersion       string     `db:"pg_version"`
	DBSizeBytes     int64      `db:"db_size_bytes"`
	Connections     int        `db:"connections"`
	MaxConnections  int        `db:"max_connections"`
	ServerStartedAt *time.Time `db:"server_started_at"`
}

// HealthHistoryEntry is one past check of an environment.
type HealthHistoryEntry struct {
	CheckedAt  time.Time `db:"checked_at"`
	Status     string    `db:"status"`
	Reason     string    `db:"reason"`
	DurationMS int       `db:"duration_ms"`
}

const healthColumns = `environment_id, status, reason, checked_at, duration_ms, stale, figures_at,
	pg_version, db_size_bytes, connections, max_connections, server_started_at`

// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation (the environment was deleted meanwhile).
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// UpsertHealth records the latest health of an environment, replacing the
// previous one; a deleted environment is ErrNotFound.
func (s *Store) UpsertHealth(ctx context.Context, h Health) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO health (`+healthColumns+`)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
		ON CONFLICT (environment_id) DO UPDATE SET
			status = excluded.status, reason = excluded.reason, checked_at = excluded.checked_at,
			duration_ms = excluded.duration_ms, stale = excluded.stale, figures_at = excluded.figures_at,
			pg_version = excluded.pg_version, db_size_bytes = excluded.db_size_bytes,
			connections = excluded.connections, max_connections = excluded.max_connections,
			server_started_at = excluded.server_started_at`,
		h.EnvironmentID, h.Status, h.Reason, h.CheckedAt, h.DurationMS, h.Stale, h.FiguresAt,
		h.PGVersion, h.DBSizeBytes, h.Connections, h.MaxConnections, h.ServerStartedAt)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: upsert health of %d: %w", h.EnvironmentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: upsert health of %d: %w", h.EnvironmentID, err)
	}
	return nil
}

// HealthOf returns the latest health of an environment, or ErrNotFound when
// it was never checked.
func (s *Store) HealthOf(ctx context.Context, envID int64) (Health, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+healthColumns+` FROM health WHERE environment_id = $1`, envID)
	h, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Health])
	if err != nil {
		return Health{}, fmt.Errorf("store: health of %d: %w", envID, notFound(err))
	}
	return h, nil
}

// HealthAll returns the latest health of every checked environment, by
// environment id.
func (s *Store) HealthAll(ctx context.Context) (map[int64]Health, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+healthColumns+` FROM health`)
	hs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Health])
	if err != nil {
		return nil, fmt.Errorf("store: all health: %w", err)
	}
	out := make(map[int64]Health, len(hs))
	for _, h := range hs {
		out[h.EnvironmentID] = h
	}
	return out, nil
}

// AddHealthHistory records one check of an environment; a deleted
// environment is ErrNotFound.
func (s *Store) AddHealthHistory(ctx context.Context, envID int64, checkedAt time.Time, status, reason string, durationMS int) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO health_history (environment_id, checked_at, status, reason, duration_ms)
		VALUES ($1, $2, $3, $4, $5)`, envID, checkedAt, status, reason, durationMS)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: add health history of %d: %w", envID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: add health history of %d: %w", envID, err)
	}
	return nil
}

// HealthHistory returns an environment's checks since a time, oldest first.
func (s *Store) HealthHistory(ctx context.Context, envID int64, since time.Time) ([]HealthHistoryEntry, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT checked_at, status, reason, duration_ms FROM health_history
		WHERE environment_id = $1 AND checked_at >= $2 ORDER BY checked_at, id`, envID, since)
	hs, err := pgx.CollectRows(rows, pgx.RowToStructByName[HealthHistoryEntry])
	if err != nil {
		return nil, fmt.Errorf("store: health history of %d: %w", envID, err)
	}
	return hs, nil
}

// PruneHealthHistory deletes the checks made before olderThan and returns
// how many it deleted.
func (s *Store) PruneHealthHistory(ctx context.Context, olderThan time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM health_history WHERE checked_at < $1`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("store: prune health history: %w", err)
	}
	return tag.RowsAffected(), nil
}
