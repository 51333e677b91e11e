// Package runtime defines how pgdeck runs the PostgreSQL processes of an
// environment (primary, pooler, replica), whatever runs them: processes on
// this host (runtime/local) or containers (runtime/docker).
package runtime

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"regexp"
	"strings"
)

// Role is what an instance does for its environment.
type Role string

// The roles an instance can have.
const (
	RolePrimary Role = "primary"
	RolePooler  Role = "pooler"
	RoleReplica Role = "replica"
	// RoleReplicaPooler is the PgBouncer in front of the replica.
	RoleReplicaPooler Role = "replica_pooler"
)

// ReplicaSlot is the physical replication slot, on the primary, that an
// environment's replica streams through.
const ReplicaSlot = "pgdeck_replica"

// ReplicaApplicationName is the application_name the replica of env streams
// with: its row in the primary's pg_stat_replication.
func ReplicaApplicationName(env string) string { return env + "_replica" }

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RolePrimary, RolePooler, RoleReplica, RoleReplicaPooler:
		return true
	}
	return false
}

// InstanceID names one instance: an environment and a role in it.
type InstanceID struct {
	// Env is the environment's name, a DNS-safe slug.
	Env  string
	Role Role
}

// String returns "env/role", for logs and errors.
func (id InstanceID) String() string {
	return id.Env + "/" + string(id.Role)
}

var envSlug = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)

// Validate checks that the environment is a DNS-safe slug (lower-case
// letters, digits and inner hyphens, at most 63 characters) and the role is
// known.
func (id InstanceID) Validate() error {
	if !envSlug.MatchString(id.Env) {
		return fmt.Errorf("runtime: invalid environment name %q: use lower-case letters, digits and hyphens", id.Env)
	}
	if !id.Role.Valid() {
		return fmt.Errorf("runtime: invalid role %q", id.Role)
	}
	return nil
}

// Spec is the desired shape of an instance.
type Spec struct {
	ID InstanceID
	// Port is the port pgdeck allocated for it (recorded in the store's
	// instances); where clients reach it is the runtime's Address.
	Port int
	// Init says how the instance's data is made the first time.
	Init Init
	// Program is what the instance runs; the zero value is postgres.
	Program Program
	// Resources are the plan's limits for the instance; a runtime that can
	// enforce them (containers) does, the local runtime records nothing.
	Resources Resources
	// Conf holds extra postgresql.conf settings.
	Conf map[string]string
	// HBA holds pg_hba.conf lines, after the local trust line for the
	// superuser over the socket.
	HBA []string
}

// InitKind is how an instance's data is made.
type InitKind string

// The ways an instance's data is made.
const (
	// InitDB makes a new, empty cluster (initdb); the zero value.
	InitDB InitKind = ""
	// InitBaseBackup copies another instance (pg_basebackup through a
	// replication slot), for a replica.
	InitBaseBackup InitKind = "basebackup"
	// InitNone makes no data folder (a pooler).
	InitNone InitKind = "none"
)

// Init is how an instance's data is made the first time.
type Init struct {
	Kind InitKind
	// From is the instance a base backup copies, and Slot the physical
	// replication slot it streams through (InitBaseBackup only).
	From InstanceID
	Slot string
	// User and Password are the replication role the base backup and then
	// the standby log in to From as (InitBaseBackup only). The password is
	// kept only where the standby's server reads it, readable by the
	// run-as user alone.
	User, Password string
	// Progress, when set, is called while a base backup copies, with the
	// bytes done and the total expected (0 when unknown).
	Progress func(done, total int64)
}

// Program is the server an instance runs.
type Program string

// The programs an instance can run.
const (
	ProgramPostgres  Program = ""
	ProgramPgBouncer Program = "pgbouncer"
)

// The files of a PgBouncer instance (Program ProgramPgBouncer), relative to
// its folder. The runtime starts PgBouncer on PgBouncerIniFile and finds its
// pid in PgBouncerPidFile; the provisioner writes the ini and the auth file
// with WriteFile, and the ini must name all four by their InstancePath.
const (
	PgBouncerIniFile  = "pgbouncer.ini"
	PgBouncerAuthFile = "userlist.txt"
	PgBouncerPidFile  = "pgbouncer.pid"
	PgBouncerLogFile  = "pgbouncer.log"
)

// Resources are an instance's share of its plan.
type Resources struct {
	MemoryMB  int
	CPUs      float64
	StorageGB int
}

// Owner is the OS account that owns an environment-level file or folder;
// the zero value is the runtime's own default (pgdeck's user).
type Owner struct {
	UID, GID int
	// Name is the account's name, for messages.
	Name string
	Set  bool
}

// State is what a runtime knows about an instance.
type State string

// The states of an instance.
const (
	StateRunning State = "running"
	StateStopped State = "stopped"
	StateMissing State = "missing"
	StateBroken  State = "broken"
)

// Status is an instance's state, with the server's pid when it runs and the
// reason when it is broken (or stopped for a notable reason).
type Status struct {
	State  State
	PID    int
	Reason string
}

// StreamErrTail is how much of a streamed command's standard error its
// error carries.
const StreamErrTail = 8 << 10

// ErrMissing is returned (wrapped) by operations on an instance that was
// never created or was removed.
var ErrMissing = errors.New("instance does not exist")

// Runtime creates, starts, stops and removes instances, reports whether they
// run, writes files into them and runs commands in them; it also keeps each
// environment's own files (odoo.conf, the filestore). Every operation is
// idempotent; Start and Exec on an instance that does not exist return an
// error wrapping ErrMissing, while Stop and Remove return nil.
type Runtime interface {
	// Create makes the instance (spec.Init) if it is missing and rewrites
	// its configuration and pg_hba from spec every time. A running
	// PostgreSQL does not read them until it is reloaded (pg_reload_conf())
	// or restarted, so that the caller may check them first
	// (pg_file_settings); a changed port restarts it at once. A PgBouncer
	// instance gets its folder and port; its configuration is the
	// PgBouncerIniFile the caller writes.
	Create(ctx context.Context, spec Spec) error
	// Start starts the instance; starting a running instance does nothing.
	Start(ctx context.Context, id InstanceID) error
	// Stop stops the instance; stopping a stopped one does nothing.
	Stop(ctx context.Context, id InstanceID) error
	// Remove stops the instance and deletes everything of it.
	Remove(ctx context.Context, id InstanceID) error
	// Status reports the instance's state.
	Status(ctx context.Context, id InstanceID) (Status, error)
	// List returns every instance the runtime holds (folders locally,
	// labelled containers in Docker), whatever the store says.
	List(ctx context.Context) ([]InstanceID, error)
	// WriteFile writes data into the instance's folder at rel, a relative
	// path without "..".
	WriteFile(ctx context.Context, id InstanceID, rel string, data []byte, mode os.FileMode) error
	// InstancePath returns the absolute path under which the instance's
	// program sees the file that WriteFile(id, rel, …) writes (locally, its
	// path on this host), "" when id or rel is invalid.
	InstancePath(id InstanceID, rel string) string
	// Exec runs a command in the instance (e.g. "psql", "-c", sql) as the
	// superuser over the local socket and returns its combined output. A
	// runtime may refuse it on a PgBouncer instance.
	Exec(ctx context.Context, id InstanceID, stdin []byte, argv ...string) ([]byte, error)
	// Stream runs a command in the instance like Exec, reading its standard
	// input from in (nil: none) and writing its standard output to out as
	// it comes, never holding either in memory: dumps and restores. Its
	// standard error (the last StreamErrTail bytes) is part of the error
	// when it fails.
	Stream(ctx context.Context, id InstanceID, in io.Reader, out io.Writer, argv ...string) error
	// Address returns where pgdeck (and Odoo, which runs beside it) reaches
	// the instance over TCP; port 0 when it is missing.
	Address(id InstanceID) (host string, port int)
	// PeerAddress returns where the environment's other instances reach
	// it (a replica its primary, a pooler its database); inside a Docker
	// network this differs from Address.
	PeerAddress(id InstanceID) (host string, port int)
	// PortFree reports whether port can be handed to a new instance:
	// nothing listens on it where the runtime publishes instances.
	PortFree(port int) bool
	// ClientNetwork is the address range, as a pg_hba.conf address, from
	// which the environment's clients (Odoo, pgdeck, its other instances)
	// reach its instances.
	ClientNetwork(env string) string

	// EnvPath is where an environment-level file or folder lives, as Odoo
	// (on this host) sees it: odoo.conf, the filestore.
	EnvPath(env, rel string) string
	// MakeEnvDir creates an environment-level folder and hands it, with
	// everything below it, to owner.
	MakeEnvDir(ctx context.Context, env, rel string, owner Owner) error
	// WriteEnvFile replaces an environment-level file atomically, owned by
	// owner with mode.
	WriteEnvFile(ctx context.Context, env, rel string, data []byte, mode os.FileMode, owner Owner) error
	// RemoveEnv removes every instance of the environment and its own files.
	RemoveEnv(ctx context.Context, env string) error
}

// CleanRel checks a path for WriteFile: relative, inside the instance folder
// (no ".." element), and returns it cleaned.
func CleanRel(rel string) (string, error) {
	if rel == "" || strings.HasPrefix(rel, "/") || strings.ContainsRune(rel, 0) {
		return "", fmt.Errorf("runtime: invalid file path %q: want a relative path", rel)
	}
	for _, el := range strings.Split(rel, "/") {
		if el == ".." {
			return "", fmt.Errorf("runtime: invalid file path %q: %q is not allowed", rel, "..")
		}
	}
	clean := path.Clean(rel)
	if clean == "." {
		return "", fmt.Errorf("runtime: invalid file path %q", rel)
	}
	return clean, nil
}
