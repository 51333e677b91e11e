package pgexec

import (
	"context"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
)

// ControlPlanePort names the control-plane cluster's socket file; it never listens on TCP.
const ControlPlanePort = 5432

// ControlPlane is the control-plane PostgreSQL cluster that pgdeck runs under
// <data-dir>/control when no database URL is configured. main starts it
// before opening the store (which knows only its URL), and the store's
// tests start one of their own.
type ControlPlane struct {
	cluster     Cluster
	log         *slog.Logger
	startedByUs bool
}

// NewControlPlane describes the cluster under dataDir/control.
func NewControlPlane(dataDir, binDir string, user RunAs, log *slog.Logger) (*ControlPlane, error) {
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, fmt.Errorf("pgexec: data dir: %w", err)
	}
	root := filepath.Join(abs, "control")
	return &ControlPlane{
		cluster: Cluster{
			BinDir:    binDir,
			DataDir:   filepath.Join(root, "pgdata"),
			SocketDir: filepath.Join(root, "run"),
			Port:      ControlPlanePort,
			Superuser: "pgdeck",
			User:      user,
			LogFile:   filepath.Join(root, "postgres.log"),
			Logger:    log,
		},
		log: log,
	}, nil
}

// Start makes the cluster on first use and starts it when it is not already
// running (a stale postmaster.pid from a crash is handled by pgexec).
func (e *ControlPlane) Start(ctx context.Context) error {
	if !e.cluster.Initialized() {
		e.log.Info("creating the control-plane cluster", "data_dir", e.cluster.DataDir)
	}
	if err := e.cluster.Init(ctx, InitOptions{}); err != nil {
		return fmt.Errorf("pgexec: control-plane cluster: %w", err)
	}
	if _, ok := e.cluster.Running(); !ok {
		if err := e.cluster.Start(ctx); err != nil {
			return fmt.Errorf("pgexec: control-plane cluster: %w", err)
		}
		e.startedByUs = true
	}
	out, err := e.cluster.Exec(ctx, nil, "psql", "-X", "-qAt", "-d", "postgres", "-c", "SELECT 1 FROM pg_database WHERE datname = 'pgdeck'")
	if err != nil {
		return fmt.Errorf("pgexec: control-plane cluster: %w", err)
	}
	if len(out) == 0 {
		// A CLI command starting next to the server may race it here.
		if out, err := e.cluster.Exec(ctx, nil, "createdb", "pgdeck"); err != nil && !strings.Contains(string(out)+err.Error(), "already exists") {
			return fmt.Errorf("pgexec: control-plane cluster: %w", err)
		}
	}
	return nil
}

// StartedByUs reports whether Start started the server (rather than finding it running).
func (e *ControlPlane) StartedByUs() bool { return e.startedByUs }

// URL is the connection string to pgdeck's database over the Unix socket.
func (e *ControlPlane) URL() string { return e.cluster.DSN("pgdeck") }

// Stop shuts the cluster down cleanly.
func (e *ControlPlane) Stop(ctx context.Context) error {
	if err := e.cluster.Stop(ctx); err != nil {
		return fmt.Errorf("pgexec: stop control-plane cluster: %w", err)
	}
	return nil
}

// URLFor is the connection string to another database of the cluster.
func (e *ControlPlane) URLFor(db string) string { return e.cluster.DSN(db) }
