package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// PoolerSettings are an environment's saved PgBouncer settings; zero fields
// were never set (the provisioner fills in the defaults).
type PoolerSettings struct {
	Enabled       bool   `json:"enabled"`
	PoolSize      int    `json:"pool_size,omitempty"`
	PoolMode      string `json:"pool_mode,omitempty"`
	MaxClientConn int    `json:"max_client_conn,omitempty"`
}

// DatabaseSettings is what the operator saved on Settings → Database, and
// the snapshot of what the last deploy or redeploy applied.
type DatabaseSettings struct {
	EnvironmentID int64 `db:"environment_id"`
	// Parameters are the overrides of recommended postgresql.conf values.
	Parameters  map[string]string `db:"parameters"`
	PgBouncer   PoolerSettings    `db:"pgbouncer"`
	ReadReplica bool              `db:"read_replica"`
	// Applied is the provisioner's snapshot of the settings it last applied
	// (nil: none recorded yet), AppliedAt when.
	Applied   json.RawMessage `db:"applied"`
	AppliedAt *time.Time      `db:"applied_at"`
	UpdatedAt time.Time       `db:"updated_at"`
}

const settingsColumns = `environment_id, parameters, pgbouncer, read_replica, applied, applied_at, updated_at`

// DatabaseSettings returns an environment's settings; one whose operator
// never saved any gets empty ones (no override, PgBouncer off).
func (s *Store) DatabaseSettings(ctx context.Context, envID int64) (DatabaseSettings, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+settingsColumns+` FROM database_settings WHERE environment_id = $1`, envID)
	d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DatabaseSettings])
	if errors.Is(err, pgx.ErrNoRows) {
		return DatabaseSettings{EnvironmentID: envID, Parameters: map[string]string{}}, nil
	}
	if err != nil {
		return DatabaseSettings{}, fmt.Errorf("store: database settings of %d: %w", envID, err)
	}
	if d.Parameters == nil {
		d.Parameters = map[string]string{}
	}
	return d, nil
}

// UpdateDatabaseSettings changes an environment's saved settings with
// change, which sees the current ones; concurrent updates of one environment
// happen one after the other (the row is locked), so none is lost. An error
// from change saves nothing and is returned as is. The applied snapshot is
// left alone.
func (s *Store) UpdateDatabaseSettings(ctx context.Context, envID int64, change func(*DatabaseSettings) error) (DatabaseSettings, error) {
	var out DatabaseSettings
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO database_settings (environment_id) VALUES ($1) ON CONFLICT DO NOTHING`, envID); err != nil {
			if isForeignKeyViolation(err) {
				return fmt.Errorf("environment %d: %w", envID, ErrNotFound)
			}
			return err
		}
		rows, _ := tx.Query(ctx, `SELECT `+settingsColumns+` FROM database_settings WHERE environment_id = $1 FOR UPDATE`, envID)
		d, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DatabaseSettings])
		if err != nil {
			return err
		}
		if d.Parameters == nil {
			d.Parameters = map[string]string{}
		}
		if err := change(&d); err != nil {
			return changeError{err}
		}
		rows, _ = tx.Query(ctx, `UPDATE database_settings SET parameters = $2, pgbouncer = $3, read_replica = $4, updated_at = now()
			WHERE environment_id = $1 RETURNING `+settingsColumns, envID, d.Parameters, d.PgBouncer, d.ReadReplica)
		out, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[DatabaseSettings])
		return err
	})
	var ce changeError
	if errors.As(err, &ce) {
		return DatabaseSettings{}, ce.err
	}
	if err != nil {
		return DatabaseSettings{}, fmt.Errorf("store: update database settings of %d: %w", envID, err)
	}
	return out, nil
}

// changeError carries a change function's own error through the
// transaction, unwrapped.
type changeError struct{ err error }

func (e changeError) Error() string { return e.err.Error() }

// SetAppliedSettings records the snapshot of the settings a deploy or
// redeploy has just applied.
func (s *Store) SetAppliedSettings(ctx context.Context, envID int64, applied json.RawMessage) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO database_settings (environment_id, applied, applied_at) VALUES ($1, $2, now())
		ON CONFLICT (environment_id) DO UPDATE SET applied = EXCLUDED.applied, applied_at = now()`, envID, applied)
	if err != nil {
		return fmt.Errorf("store: applied settings of %d: %w", envID, err)
	}
	return nil
}
