package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Components of an environment that the monitor checks, each with its own
// latest health and history.
const (
	ComponentPrimary = "primary"
	ComponentPooler  = "pooler"
	ComponentReplica = "replica"
)

// Health statuses, the one vocabulary of pages, API and metrics. The
// primary is running, stopped or error; the pooler also disabled; the
// replica online, lagging, offline or error.
const (
	HealthRunning  = "running"
	HealthStopped  = "stopped"
	HealthError    = "error"
	HealthDisabled = "disabled"
	HealthOnline   = "online"
	HealthLagging  = "lagging"
	HealthOffline  = "offline"
)

// Severities of a replica's lag against the thresholds; empty for
// components without one.
const (
	SeverityOK       = "ok"
	SeverityWarning  = "warning"
	SeverityCritical = "critical"
)

// Health is the latest health result of one component of an environment,
// written by the monitor. Status changes only once several checks agree;
// CheckedAt and the figures follow every check.
type Health struct {
	EnvironmentID int64 `db:"environment_id"`
	// Component is ComponentPrimary, ComponentPooler or ComponentReplica;
	// empty means the primary.
	Component  string    `db:"component"`
	Status     string    `db:"status"`
	Reason     string    `db:"reason"`
	Severity   string    `db:"severity"`
	CheckedAt  time.Time `db:"checked_at"`
	DurationMS int       `db:"duration_ms"`
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
	// LagBytes and LagSeconds are a replica's lag; nil when not measured.
	LagBytes   *int64   `db:"lag_bytes"`
	LagSeconds *float64 `db:"lag_seconds"`
	// Details holds figures only one component has (a JSON object, such as
	// the pooler's pools); nil is an empty object.
	Details json.RawMessage `db:"details"`
}

// HealthKey names one component of one environment.
type HealthKey struct {
	EnvironmentID int64
	Component     string
}

// HealthHistoryEntry is one past check of a component: what it observed,
// before confirmation.
type HealthHistoryEntry struct {
	// Component is the checked component; empty means the primary.
	Component  string    `db:"component"`
	CheckedAt  time.Time `db:"checked_at"`
	Status     string    `db:"status"`
	Reason     string    `db:"reason"`
	DurationMS int       `db:"duration_ms"`
	Severity   string    `db:"severity"`
	LagBytes   *int64    `db:"lag_bytes"`
	LagSeconds *float64  `db:"lag_seconds"`
}

const healthColumns = `environment_id, component, status, reason, severity, checked_at, duration_ms, stale, figures_at,
	pg_version, db_size_bytes, connections, max_connections, server_started_at, lag_bytes, lag_seconds, details`

// upsertHealthSQL writes the latest health of a component ($1…$17 in the
// order of healthColumns).
const upsertHealthSQL = `INSERT INTO health (` + healthColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, coalesce($17::jsonb, '{}'))
		ON CONFLICT (environment_id, component) DO UPDATE SET
			status = excluded.status, reason = excluded.reason, severity = excluded.severity,
			checked_at = excluded.checked_at, duration_ms = excluded.duration_ms, stale = excluded.stale,
			figures_at = excluded.figures_at, pg_version = excluded.pg_version, db_size_bytes = excluded.db_size_bytes,
			connections = excluded.connections, max_connections = excluded.max_connections,
			server_started_at = excluded.server_started_at, lag_bytes = excluded.lag_bytes,
			lag_seconds = excluded.lag_seconds, details = excluded.details`

func componentOr(c string) string {
	if c == "" {
		return ComponentPrimary
	}
	return c
}

func (h Health) args() []any {
	var details any
	if len(h.Details) > 0 {
		details = string(h.Details)
	}
	return []any{h.EnvironmentID, componentOr(h.Component), h.Status, h.Reason, h.Severity, h.CheckedAt, h.DurationMS,
		h.Stale, h.FiguresAt, h.PGVersion, h.DBSizeBytes, h.Connections, h.MaxConnections, h.ServerStartedAt,
		h.LagBytes, h.LagSeconds, details}
}

// isForeignKeyViolation reports whether err is PostgreSQL's
// foreign_key_violation (the environment was deleted meanwhile).
func isForeignKeyViolation(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "23503"
}

// UpsertHealth records the latest health of a component, replacing the
// previous one; a deleted environment is ErrNotFound.
func (s *Store) UpsertHealth(ctx context.Context, h Health) error {
	_, err := s.Pool.Exec(ctx, upsertHealthSQL, h.args()...)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: upsert %s health of %d: %w", componentOr(h.Component), h.EnvironmentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: upsert %s health of %d: %w", componentOr(h.Component), h.EnvironmentID, err)
	}
	return nil
}

// RecordHealth stores one check in one statement: h becomes the latest
// health of its component and observed joins its history. A deleted
// environment is ErrNotFound.
func (s *Store) RecordHealth(ctx context.Context, h Health, observed HealthHistoryEntry) error {
	args := append(h.args(), observed.CheckedAt, observed.Status, observed.Reason, observed.DurationMS,
		observed.Severity, observed.LagBytes, observed.LagSeconds)
	// A data-modifying WITH runs once whether or not it is read.
	_, err := s.Pool.Exec(ctx, `WITH latest AS (`+upsertHealthSQL+`)
		INSERT INTO health_history (environment_id, component, checked_at, status, reason, duration_ms, severity, lag_bytes, lag_seconds)
		VALUES ($1, $2, $18, $19, $20, $21, $22, $23, $24)`, args...)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: record %s health of %d: %w", componentOr(h.Component), h.EnvironmentID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: record %s health of %d: %w", componentOr(h.Component), h.EnvironmentID, err)
	}
	return nil
}

// HealthOf returns the latest health of an environment's primary, or
// ErrNotFound when it was never checked.
func (s *Store) HealthOf(ctx context.Context, envID int64) (Health, error) {
	return s.ComponentHealth(ctx, envID, ComponentPrimary)
}

// ComponentHealth returns the latest health of one component of an
// environment, or ErrNotFound when it was never checked.
func (s *Store) ComponentHealth(ctx context.Context, envID int64, component string) (Health, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+healthColumns+` FROM health WHERE environment_id = $1 AND component = $2`,
		envID, component)
	h, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Health])
	if err != nil {
		return Health{}, fmt.Errorf("store: %s health of %d: %w", component, envID, notFound(err))
	}
	return h, nil
}

// HealthAll returns the latest health of every checked environment's
// primary, by environment id.
func (s *Store) HealthAll(ctx context.Context) (map[int64]Health, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+healthColumns+` FROM health WHERE component = $1`, ComponentPrimary)
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

// HealthAllComponents returns the latest health of every checked component
// of every environment.
func (s *Store) HealthAllComponents(ctx context.Context) (map[HealthKey]Health, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+healthColumns+` FROM health`)
	hs, err := pgx.CollectRows(rows, pgx.RowToStructByName[Health])
	if err != nil {
		return nil, fmt.Errorf("store: all component health: %w", err)
	}
	out := make(map[HealthKey]Health, len(hs))
	for _, h := range hs {
		out[HealthKey{h.EnvironmentID, h.Component}] = h
	}
	return out, nil
}

// DeleteComponentHealth forgets a component's latest health (a replica
// removed, a pooler turned off), keeping its history until it is pruned.
func (s *Store) DeleteComponentHealth(ctx context.Context, envID int64, component string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM health WHERE environment_id = $1 AND component = $2`, envID, component)
	if err != nil {
		return fmt.Errorf("store: delete %s health of %d: %w", component, envID, err)
	}
	return nil
}

// AddHealthHistory records one check of a component of an environment; a
// deleted environment is ErrNotFound.
func (s *Store) AddHealthHistory(ctx context.Context, envID int64, e HealthHistoryEntry) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO health_history
			(environment_id, component, checked_at, status, reason, duration_ms, severity, lag_bytes, lag_seconds)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		envID, componentOr(e.Component), e.CheckedAt, e.Status, e.Reason, e.DurationMS, e.Severity, e.LagBytes, e.LagSeconds)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: add health history of %d: %w", envID, ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("store: add health history of %d: %w", envID, err)
	}
	return nil
}

// HealthHistory returns the checks of an environment's primary since a
// time, oldest first.
func (s *Store) HealthHistory(ctx context.Context, envID int64, since time.Time) ([]HealthHistoryEntry, error) {
	return s.ComponentHistory(ctx, envID, ComponentPrimary, since)
}

// ComponentHistory returns the checks of one component of an environment
// since a time, oldest first (a replica's lag chart reads the last hour).
func (s *Store) ComponentHistory(ctx context.Context, envID int64, component string, since time.Time) ([]HealthHistoryEntry, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT component, checked_at, status, reason, duration_ms, severity, lag_bytes, lag_seconds
		FROM health_history WHERE environment_id = $1 AND component = $2 AND checked_at >= $3
		ORDER BY checked_at, id`, envID, component, since)
	hs, err := pgx.CollectRows(rows, pgx.RowToStructByName[HealthHistoryEntry])
	if err != nil {
		return nil, fmt.Errorf("store: %s health history of %d: %w", component, envID, err)
	}
	return hs, nil
}

// PruneHealthHistory deletes the checks (of every component) made before
// olderThan and returns how many it deleted.
func (s *Store) PruneHealthHistory(ctx context.Context, olderThan time.Time) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM health_history WHERE checked_at < $1`, olderThan)
	if err != nil {
		return 0, fmt.Errorf("store: prune health history: %w", err)
	}
	return tag.RowsAffected(), nil
}
