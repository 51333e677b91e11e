package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The roles an instance of an environment can have.
const (
	InstancePrimary       = "primary"
	InstancePooler        = "pooler"
	InstanceReplica       = "replica"
	InstanceReplicaPooler = "replica_pooler"
)

// Instance is where pgdeck placed one instance of an environment.
type Instance struct {
	EnvironmentID int64     `db:"environment_id"`
	Role          string    `db:"role"`
	Port          *int      `db:"port"`
	CreatedAt     time.Time `db:"created_at"`
	UpdatedAt     time.Time `db:"updated_at"`
}

const instanceColumns = `environment_id, role, port, created_at, updated_at`

// Instances returns the instances recorded for an environment, primary first.
func (s *Store) Instances(ctx context.Context, envID int64) ([]Instance, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+instanceColumns+` FROM instances WHERE environment_id = $1
		ORDER BY array_position(ARRAY['primary', 'pooler', 'replica', 'replica_pooler'], role)`, envID)
	is, err := pgx.CollectRows(rows, pgx.RowToStructByName[Instance])
	if err != nil {
		return nil, fmt.Errorf("store: instances of %d: %w", envID, err)
	}
	return is, nil
}

// UsedPorts returns every port recorded for an instance.
func (s *Store) UsedPorts(ctx context.Context) (map[int]bool, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT port FROM instances WHERE port IS NOT NULL`)
	ports, err := pgx.CollectRows(rows, pgx.RowTo[int])
	if err != nil {
		return nil, fmt.Errorf("store: used ports: %w", err)
	}
	out := make(map[int]bool, len(ports))
	for _, p := range ports {
		out[p] = true
	}
	return out, nil
}

// SetInstancePort records the port of an environment's instance unless it
// has one; a port taken by another instance is ErrConflict. It returns the
// port now recorded.
func (s *Store) SetInstancePort(ctx context.Context, envID int64, role string, port int) (int, error) {
	var got int
	err := s.Pool.QueryRow(ctx, `INSERT INTO instances (environment_id, role, port) VALUES ($1, $2, $3)
		ON CONFLICT (environment_id, role) DO UPDATE SET port = coalesce(instances.port, EXCLUDED.port), updated_at = now()
		RETURNING port`, envID, role, port).Scan(&got)
	if isUniqueViolation(err) {
		return 0, fmt.Errorf("store: set port %d of %d/%s: %w", port, envID, role, ErrConflict)
	}
	if isForeignKeyViolation(err) {
		return 0, fmt.Errorf("store: set port %d of %d/%s: %w", port, envID, role, ErrNotFound)
	}
	if err != nil {
		return 0, fmt.Errorf("store: set port %d of %d/%s: %w", port, envID, role, err)
	}
	return got, nil
}

// SetPort records the port of the environment's primary (see SetInstancePort).
func (s *Store) SetPort(ctx context.Context, envID int64, port int) (int, error) {
	return s.SetInstancePort(ctx, envID, InstancePrimary, port)
}

// ClearPort forgets the primary's port of an environment that was never
// deployed, so that its next deploy chooses another.
func (s *Store) ClearPort(ctx context.Context, envID int64) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM instances i USING environments e
		WHERE i.environment_id = e.id AND e.id = $1 AND e.deployed_at IS NULL AND i.role = 'primary'`, envID)
	if err != nil {
		return fmt.Errorf("store: clear port of %d: %w", envID, err)
	}
	return nil
}

// DeleteInstance forgets an instance (its port is free again).
func (s *Store) DeleteInstance(ctx context.Context, envID int64, role string) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM instances WHERE environment_id = $1 AND role = $2`, envID, role)
	if err != nil {
		return fmt.Errorf("store: delete instance %d/%s: %w", envID, role, err)
	}
	return nil
}
