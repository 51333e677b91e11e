package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The runtimes a server runs environments with.
const (
	ServerLocal  = "local"
	ServerDocker = "docker"
)

// The statuses the monitor gives a server.
const (
	ServerUnknown = "unknown"
	ServerOnline  = "online"
	ServerOffline = "offline"
)

// BuiltinServer is the name of this host's own server.
const BuiltinServer = "local"

// Server is a machine environments run on: this host's own runtime (the
// built-in one) or a Docker host an owner or admin registered.
type Server struct {
	Name       string `db:"name"`
	Runtime    string `db:"runtime"`
	DockerHost string `db:"docker_host"`
	// TLSCA, TLSCert and TLSKey are PEM, sealed with the secret key;
	// empty for a unix socket.
	TLSCA   []byte `db:"tls_ca"`
	TLSCert []byte `db:"tls_cert"`
	TLSKey  []byte `db:"tls_key"`
	// The capacity; 0 is not counted.
	MemoryBytes  int64 `db:"memory_bytes"`
	CPUs         int   `db:"cpus"`
	StorageBytes int64 `db:"storage_bytes"`
	Builtin      bool  `db:"builtin"`
	// Status, Reason and CheckedAt are the monitor's last check.
	Status    string     `db:"status"`
	Reason    string     `db:"reason"`
	CheckedAt *time.Time `db:"checked_at"`
	CreatedAt time.Time  `db:"created_at"`
}

const serverColumns = `name, runtime, docker_host, tls_ca, tls_cert, tls_key, memory_bytes, cpus, storage_bytes,
	builtin, status, reason, checked_at, created_at`

// CreateServer registers a server; a taken name is ErrConflict.
func (s *Store) CreateServer(ctx context.Context, sv Server) (Server, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO servers (name, runtime, docker_host, tls_ca, tls_cert, tls_key,
		memory_bytes, cpus, storage_bytes) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+serverColumns,
		sv.Name, sv.Runtime, sv.DockerHost, sv.TLSCA, sv.TLSCert, sv.TLSKey, sv.MemoryBytes, sv.CPUs, sv.StorageBytes)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Server])
	if isUniqueViolation(err) {
		return Server{}, fmt.Errorf("store: create server %q: %w", sv.Name, ErrConflict)
	}
	if err != nil {
		return Server{}, fmt.Errorf("store: create server %q: %w", sv.Name, err)
	}
	return out, nil
}

// EnsureBuiltinServer makes the built-in server (made by the migration)
// what this host's runtime is: runtime, engine and capacity; its status is
// kept.
func (s *Store) EnsureBuiltinServer(ctx context.Context, sv Server) (Server, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE servers SET runtime = $2, docker_host = $3, memory_bytes = $4, cpus = $5,
			storage_bytes = $6 WHERE name = $1 AND builtin RETURNING `+serverColumns,
		BuiltinServer, sv.Runtime, sv.DockerHost, sv.MemoryBytes, sv.CPUs, sv.StorageBytes)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Server])
	if err != nil {
		return Server{}, fmt.Errorf("store: built-in server: %w", err)
	}
	return out, nil
}

// ListServers returns every server, the built-in one first, then by name.
func (s *Store) ListServers(ctx context.Context) ([]Server, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+serverColumns+` FROM servers ORDER BY builtin DESC, name`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Server])
	if err != nil {
		return nil, fmt.Errorf("store: list servers: %w", err)
	}
	return out, nil
}

// GetServer returns the named server or ErrNotFound.
func (s *Store) GetServer(ctx context.Context, name string) (Server, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+serverColumns+` FROM servers WHERE name = $1`, name)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Server])
	if errors.Is(err, pgx.ErrNoRows) {
		return Server{}, fmt.Errorf("store: server %q: %w", name, ErrNotFound)
	}
	if err != nil {
		return Server{}, fmt.Errorf("store: server %q: %w", name, err)
	}
	return out, nil
}

// ErrServerInUse is returned when a server that still holds environments
// is to be deleted.
var ErrServerInUse = errors.New("server holds environments")

// DeleteServer forgets a server that holds no environment (ErrServerInUse
// otherwise, ErrNotFound when there is none).
func (s *Store) DeleteServer(ctx context.Context, name string) error {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM servers WHERE name = $1`, name)
	if isForeignKeyViolation(err) {
		return fmt.Errorf("store: delete server %q: %w", name, ErrServerInUse)
	}
	if err != nil {
		return fmt.Errorf("store: delete server %q: %w", name, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: delete server %q: %w", name, ErrNotFound)
	}
	return nil
}

// SetServerStatus records the monitor's check of a server.
func (s *Store) SetServerStatus(ctx context.Context, name, status, reason string, at time.Time) error {
	_, err := s.Pool.Exec(ctx, `UPDATE servers SET status = $2, reason = $3, checked_at = $4 WHERE name = $1`,
		name, status, reason, at)
	if err != nil {
		return fmt.Errorf("store: server %q status: %w", name, err)
	}
	return nil
}

// EnvironmentServer returns the server an environment lives on, or
// ErrNotFound when there is no such environment.
func (s *Store) EnvironmentServer(ctx context.Context, env string) (string, error) {
	var name string
	err := s.Pool.QueryRow(ctx, `SELECT server FROM environments WHERE name = $1`, env).Scan(&name)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", fmt.Errorf("store: server of %q: %w", env, ErrNotFound)
	}
	if err != nil {
		return "", fmt.Errorf("store: server of %q: %w", env, err)
	}
	return name, nil
}
