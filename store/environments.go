package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment is one Odoo environment and the desired state of its database.
type Environment struct {
	ID           int64     `db:"id"`
	Name         string    `db:"name"`
	OdooVersion  string    `db:"odoo_version"`
	Stage        string    `db:"stage"`
	Plan         string    `db:"plan"`
	DesiredState string    `db:"desired_state"`
	CreatedAt    time.Time `db:"created_at"`
	UpdatedAt    time.Time `db:"updated_at"`
}

const environmentColumns = `id, name, odoo_version, stage, plan, desired_state, created_at, updated_at`

// CreateEnvironment inserts an environment; a duplicate name is ErrConflict.
func (s *Store) CreateEnvironment(ctx context.Context, e Environment) (Environment, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO environments (name, odoo_version, stage, plan) VALUES ($1, $2, $3, $4)
		RETURNING `+environmentColumns, e.Name, e.OdooVersion, e.Stage, e.Plan)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if isUniqueViolation(err) {
		return Environment{}, fmt.Errorf("store: create environment %q: %w", e.Name, ErrConflict)
	}
	if err != nil {
		return Environment{}, fmt.Errorf("store: create environment %q: %w", e.Name, err)
	}
	return out, nil
}

// ListEnvironments returns every environment ordered by name.
func (s *Store) ListEnvironments(ctx context.Context) ([]Environment, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+environmentColumns+` FROM environments ORDER BY name`)
	es, err := pgx.CollectRows(rows, pgx.RowToStructByName[Environment])
	if err != nil {
		return nil, fmt.Errorf("store: list environments: %w", err)
	}
	return es, nil
}

// EnvironmentByName finds an environment by its name.
func (s *Store) EnvironmentByName(ctx context.Context, name string) (Environment, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+environmentColumns+` FROM environments WHERE name = $1`, name)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if err != nil {
		return Environment{}, fmt.Errorf("store: environment %q: %w", name, notFound(err))
	}
	return e, nil
}
