package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Environment is one Odoo environment and the desired state of its database.
type Environment struct {
	ID           int64  `db:"id"`
	Name         string `db:"name"`
	OdooVersion  string `db:"odoo_version"`
	Stage        string `db:"stage"`
	Plan         string `db:"plan"`
	DesiredState string `db:"desired_state"`
	// Server is the server the environment lives on (store.Server's name).
	Server    string    `db:"server"`
	CreatedAt time.Time `db:"created_at"`
	UpdatedAt time.Time `db:"updated_at"`
	// Port is the port of the environment's primary instance, once
	// allocated (read from its instances record).
	Port *int `db:"port"`
	// PoolerPort is the port of the environment's pooler instance (PgBouncer),
	// nil when it has none.
	PoolerPort *int `db:"pooler_port"`
	// DBName and DBUser are the environment's database and its owning role.
	DBName string `db:"db_name"`
	DBUser string `db:"db_user"`
	// DBPassword and AdminPassword are sealed with the secret key (AES-GCM).
	DBPassword    []byte `db:"db_password"`
	AdminPassword []byte `db:"admin_password"`
	// DeployedAt is set when a deploy first succeeds.
	DeployedAt *time.Time `db:"deployed_at"`
	// MonitorUser is the cluster's monitoring role (pg_monitor) that health
	// probes log in as, and MonitorPassword its sealed password; empty
	// until a deploy has made it.
	MonitorUser     string `db:"monitor_user"`
	MonitorPassword []byte `db:"monitor_password"`
	// ReplicaPort is the replica's port; nil when it has none.
	ReplicaPort *int `db:"replica_port"`
	// ReplicationUser is the role the replica streams as, and
	// ReplicationPassword its sealed password; empty until a redeploy has
	// prepared the primary for a replica.
	ReplicationUser     string `db:"replication_user"`
	ReplicationPassword []byte `db:"replication_password"`
}

// Deployed reports whether a deploy has succeeded.
func (e Environment) Deployed() bool { return e.DeployedAt != nil }

const environmentColumns = `id, name, odoo_version, stage, plan, desired_state, server, created_at, updated_at,
	(SELECT i.port FROM instances i WHERE i.environment_id = environments.id AND i.role = 'primary') AS port,
	(SELECT i.port FROM instances i WHERE i.environment_id = environments.id AND i.role = 'pooler') AS pooler_port,
	(SELECT i.port FROM instances i WHERE i.environment_id = environments.id AND i.role = 'replica') AS replica_port,
	db_name, db_user, db_password, admin_password, deployed_at, monitor_user, monitor_password,
	replication_user, replication_password`

// CreateEnvironment inserts an environment on e.Server (the built-in
// server when empty); a duplicate name is ErrConflict, a server that does
// not exist ErrNotFound.
func (s *Store) CreateEnvironment(ctx context.Context, e Environment) (Environment, error) {
	return insertEnvironment(ctx, s.Pool, e)
}

// CreateEnvironmentPlaced inserts e on the server place chooses, one
// creation at a time across every pgdeck sharing the store (an advisory
// lock held until the insert commits), so that two creations at once
// cannot both take a server's last room. An error of place is returned
// as it is.
func (s *Store) CreateEnvironmentPlaced(ctx context.Context, e Environment, place func(context.Context) (string, error)) (Environment, error) {
	var out Environment
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, $2)`, lockNSTasks, lockPlacement); err != nil {
			return fmt.Errorf("store: create environment %q: %w", e.Name, err)
		}
		var err error
		if e.Server, err = place(ctx); err != nil {
			return err
		}
		out, err = insertEnvironment(ctx, tx, e)
		return err
	})
	return out, err
}

// querier is what an insert needs of a pool or a transaction.
type querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

func insertEnvironment(ctx context.Context, q querier, e Environment) (Environment, error) {
	if e.Server == "" {
		e.Server = BuiltinServer
	}
	rows, _ := q.Query(ctx, `INSERT INTO environments (name, odoo_version, stage, plan, server) VALUES ($1, $2, $3, $4, $5)
		RETURNING `+environmentColumns, e.Name, e.OdooVersion, e.Stage, e.Plan, e.Server)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if isUniqueViolation(err) {
		return Environment{}, fmt.Errorf("store: create environment %q: %w", e.Name, ErrConflict)
	}
	if isForeignKeyViolation(err) {
		return Environment{}, fmt.Errorf("store: create environment %q: server %q: %w", e.Name, e.Server, ErrNotFound)
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

// EnvironmentByID finds an environment by its id.
func (s *Store) EnvironmentByID(ctx context.Context, id int64) (Environment, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+environmentColumns+` FROM environments WHERE id = $1`, id)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if err != nil {
		return Environment{}, fmt.Errorf("store: environment %d: %w", id, notFound(err))
	}
	return e, nil
}

// SetCredentials records the environment's database, role and sealed
// passwords, keeping ones already recorded (a redeploy reuses them).
func (s *Store) SetCredentials(ctx context.Context, id int64, dbName, dbUser string, dbPassword, adminPassword []byte) (Environment, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE environments SET
			db_name = CASE WHEN db_name = '' THEN $2 ELSE db_name END,
			db_user = CASE WHEN db_user = '' THEN $3 ELSE db_user END,
			db_password = coalesce(db_password, $4),
			admin_password = coalesce(admin_password, $5),
			updated_at = now()
		WHERE id = $1 RETURNING `+environmentColumns, id, dbName, dbUser, dbPassword, adminPassword)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if err != nil {
		return Environment{}, fmt.Errorf("store: set credentials of %d: %w", id, notFound(err))
	}
	return e, nil
}

// SetReplicationCredentials records the environment's replication role and
// its sealed password, keeping ones already recorded.
func (s *Store) SetReplicationCredentials(ctx context.Context, id int64, user string, password []byte) (Environment, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE environments SET
			replication_user = CASE WHEN replication_user = '' THEN $2 ELSE replication_user END,
			replication_password = coalesce(replication_password, $3),
			updated_at = now()
		WHERE id = $1 RETURNING `+environmentColumns, id, user, password)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if err != nil {
		return Environment{}, fmt.Errorf("store: set replication credentials of %d: %w", id, notFound(err))
	}
	return e, nil
}

// SetMonitorCredentials records the cluster's monitoring role and its
// sealed password, keeping ones already recorded (a redeploy reuses them).
func (s *Store) SetMonitorCredentials(ctx context.Context, id int64, user string, password []byte) (Environment, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE environments SET
			monitor_user = CASE WHEN monitor_user = '' THEN $2 ELSE monitor_user END,
			monitor_password = coalesce(monitor_password, $3),
			updated_at = now()
		WHERE id = $1 RETURNING `+environmentColumns, id, user, password)
	e, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Environment])
	if err != nil {
		return Environment{}, fmt.Errorf("store: set monitor credentials of %d: %w", id, notFound(err))
	}
	return e, nil
}

// MarkDeployed records a successful deploy.
func (s *Store) MarkDeployed(ctx context.Context, id int64) error {
	_, err := s.Pool.Exec(ctx, `UPDATE environments SET deployed_at = coalesce(deployed_at, now()), updated_at = now() WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: mark deployed %d: %w", id, err)
	}
	return nil
}

// SetDesiredState records whether the operator wants the database running or stopped.
func (s *Store) SetDesiredState(ctx context.Context, id int64, state string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE environments SET desired_state = $2, updated_at = now() WHERE id = $1`, id, state)
	if err != nil {
		return fmt.Errorf("store: set desired state of %d: %w", id, err)
	}
	return nil
}

// DeleteEnvironment removes the environment row (its health goes with it;
// its jobs keep the name).
func (s *Store) DeleteEnvironment(ctx context.Context, id int64) error {
	_, err := s.Pool.Exec(ctx, `DELETE FROM environments WHERE id = $1`, id)
	if err != nil {
		return fmt.Errorf("store: delete environment %d: %w", id, err)
	}
	return nil
}
