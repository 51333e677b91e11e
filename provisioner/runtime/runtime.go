// Package runtime defines how pgdeck runs the PostgreSQL processes of an
// environment (primary, pooler, replica), whatever runs them: processes on
// this host (runtime/local) or containers (runtime/docker).
package runtime

import (
	"context"
	"errors"
	"fmt"
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
)

// Valid reports whether r is a known role.
func (r Role) Valid() bool {
	switch r {
	case RolePrimary, RolePooler, RoleReplica:
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
	// Port is the TCP port on 127.0.0.1 that pgdeck allocated for it.
	Port int
	// Conf holds extra postgresql.conf settings.
	Conf map[string]string
	// HBA holds pg_hba.conf lines, after the local trust line for the
	// superuser over the socket.
	HBA []string
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

// ErrMissing is returned (wrapped) by operations on an instance that was
// never created or was removed.
var ErrMissing = errors.New("instance does not exist")

// Runtime creates, starts, stops and removes instances, reports whether they
// run, writes files into them and runs commands in them. Every operation is
// idempotent; Start and Exec on an instance that does not exist return an
// error wrapping ErrMissing, while Stop and Remove return nil.
type Runtime interface {
	// Create makes the instance (initdb) if it is missing and rewrites its
	// configuration and pg_hba from spec every time.
	Create(ctx context.Context, spec Spec) error
	// Start starts the instance; starting a running instance does nothing.
	Start(ctx context.Context, id InstanceID) error
	// Stop stops the instance; stopping a stopped one does nothing.
	Stop(ctx context.Context, id InstanceID) error
	// Remove stops the instance and deletes everything of it.
	Remove(ctx context.Context, id InstanceID) error
	// Status reports the instance's state.
	Status(ctx context.Context, id InstanceID) (Status, error)
	// WriteFile writes data into the instance's folder at rel, a relative
	// path without "..".
	WriteFile(ctx context.Context, id InstanceID, rel string, data []byte, mode os.FileMode) error
	// Exec runs a command in the instance (e.g. "psql", "-c", sql) as the
	// superuser over the local socket and returns its combined output.
	Exec(ctx context.Context, id InstanceID, stdin []byte, argv ...string) ([]byte, error)
	// Address returns where clients reach the instance over TCP.
	Address(id InstanceID) (host string, port int)
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
