package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// A pooler instance (the primary's or the replica's) is a folder
// Root/<env>/pooler or Root/<env>/replica_pooler (0700, owned by the run-as
// user) that holds pgdeck.conf, the record of its port, and what the
// provisioner writes and PgBouncer makes there: runtime.PgBouncerIniFile,
// AuthFile, PidFile and LogFile. The role decides the program: a pooler
// runs PgBouncer, every other role PostgreSQL.

// poolerPortFile records the port of a pooler, in the format of a
// cluster's pgdeck.conf (read by pgexec.ReadPort).
const poolerPortFile = "pgdeck.conf"

// statusDialTimeout bounds Status's TCP check of a running pgbouncer.
const statusDialTimeout = 2 * time.Second

func isPooler(id runtime.InstanceID) bool {
	return id.Role == runtime.RolePooler || id.Role == runtime.RoleReplicaPooler
}

// bouncer returns the pgexec PgBouncer of a pooler with the given port.
func (r *Runtime) bouncer(id runtime.InstanceID, port int) *pgexec.PgBouncer {
	dir := r.InstanceDir(id)
	return &pgexec.PgBouncer{
		IniFile:       filepath.Join(dir, runtime.PgBouncerIniFile),
		PidFile:       filepath.Join(dir, runtime.PgBouncerPidFile),
		LogFile:       filepath.Join(dir, runtime.PgBouncerLogFile),
		ListenAddress: listenAddress,
		Port:          port,
		User:          r.user,
		Logger:        r.log,
	}
}

// loadPooler returns the PgBouncer of an existing pooler, or an error
// wrapping runtime.ErrMissing when Create never made it (no folder, or no
// port record). An unreadable port record is another error; the PgBouncer
// is then returned too, with port 0, so that it can still be stopped.
func (r *Runtime) loadPooler(id runtime.InstanceID) (*pgexec.PgBouncer, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	dir := r.InstanceDir(id)
	if _, err := os.Stat(filepath.Join(dir, poolerPortFile)); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("local runtime: %s: %w", id, runtime.ErrMissing)
	}
	port, err := pgexec.ReadPort(dir)
	if err != nil {
		return r.bouncer(id, 0), fmt.Errorf("local runtime: %s: %w", id, err)
	}
	return r.bouncer(id, port), nil
}

// createPooler makes the pooler's folder and records its port. A running
// PgBouncer whose port changed is stopped: it still listens on the old one,
// and its ini is rewritten after Create, so the next Start starts it anew.
func (r *Runtime) createPooler(ctx context.Context, spec runtime.Spec) error {
	id := spec.ID
	if spec.Program != runtime.ProgramPgBouncer || spec.Init.Kind != runtime.InitNone {
		return fmt.Errorf("local runtime: create %s: a pooler runs program %q with init %q, not %q / %q",
			id, runtime.ProgramPgBouncer, runtime.InitNone, spec.Program, spec.Init.Kind)
	}
	if len(spec.Conf) > 0 || len(spec.HBA) > 0 {
		return fmt.Errorf("local runtime: create %s: postgresql.conf settings and pg_hba lines do not apply to pgbouncer; its configuration is %s", id, runtime.PgBouncerIniFile)
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return fmt.Errorf("local runtime: create %s: port %d out of range 1-65535", id, spec.Port)
	}
	if _, err := pgexec.FindPgBouncer(r.pgbouncerBin); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	defer r.lock(id)()

	dir := r.InstanceDir(id)
	created, err := r.makePoolerDir(dir)
	if err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	oldPort, oldErr := pgexec.ReadPort(dir)
	record := fmt.Sprintf("# The port of this PgBouncer, recorded by pgdeck; %s must say the same.\nport = %d\n", runtime.PgBouncerIniFile, spec.Port)
	if err := pgexec.WriteFileAs(r.user, filepath.Join(dir, poolerPortFile), []byte(record), 0o600); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	if created {
		r.log.Info("created instance", "env", id.Env, "role", id.Role, "port", spec.Port, "dir", dir)
	}
	if oldErr == nil && oldPort != spec.Port {
		if _, ok := r.bouncer(id, oldPort).Running(); ok {
			r.log.Info("stopping pgbouncer: its port changed, the next start uses the new one", "env", id.Env, "role", id.Role, "old_port", oldPort, "port", spec.Port)
			if err := r.bouncer(id, oldPort).Stop(ctx); err != nil {
				return fmt.Errorf("local runtime: create %s: %w", id, err)
			}
		}
	}
	return nil
}

// makePoolerDir creates the pooler's folder, or checks the existing one,
// and makes it 0700 and the run-as user's: PgBouncer writes its pid and log
// files there and reads the ini and the auth file, which hold secrets.
func (r *Runtime) makePoolerDir(dir string) (created bool, err error) {
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return false, err
	}
	if err := os.Mkdir(dir, 0o700); err == nil {
		created = true
	} else if !errors.Is(err, fs.ErrExist) {
		return false, err
	}
	fi, err := os.Lstat(dir)
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		return false, fmt.Errorf("%s is not a folder", dir)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return false, err
	}
	if r.user.Set {
		// Only the folder itself: what is inside was written as the user.
		if err := os.Lchown(dir, r.user.UID, r.user.GID); err != nil {
			return false, err
		}
	}
	return created, r.user.EnsureTraversable(dir, r.log)
}

// startPooler starts PgBouncer on the pooler's ini; a running one is left
// alone.
func (r *Runtime) startPooler(ctx context.Context, id runtime.InstanceID) error {
	defer r.lock(id)()
	b, err := r.loadPooler(id)
	if err != nil {
		return fmt.Errorf("local runtime: start: %w", err)
	}
	if b.Bin, err = pgexec.FindPgBouncer(r.pgbouncerBin); err != nil {
		return fmt.Errorf("local runtime: start %s: %w", id, err)
	}
	if err := b.Start(ctx); err != nil {
		return fmt.Errorf("local runtime: start %s: %w", id, err)
	}
	return nil
}

// stopPooler stops the pooler's PgBouncer; a stopped or missing pooler is
// left alone.
func (r *Runtime) stopPooler(ctx context.Context, id runtime.InstanceID) error {
	defer r.lock(id)()
	b, err := r.loadPooler(id)
	if errors.Is(err, runtime.ErrMissing) {
		return nil
	}
	if b == nil {
		return fmt.Errorf("local runtime: stop: %w", err)
	}
	// Without a port record the process is still found by its ini.
	if err := b.Stop(ctx); err != nil {
		return fmt.Errorf("local runtime: stop %s: %w", id, err)
	}
	return nil
}

// removePooler stops the pooler's PgBouncer, whether or not Create finished
// (a folder without a port record may have an ini someone started), and
// deletes the folder.
func (r *Runtime) removePooler(ctx context.Context, id runtime.InstanceID) error {
	defer r.lock(id)()
	dir := r.InstanceDir(id)
	if _, err := os.Lstat(dir); errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	// An unreadable port record goes with the folder.
	b, _ := r.loadPooler(id)
	if b == nil {
		b = r.bouncer(id, 0)
	}
	if err := b.Stop(ctx); err != nil {
		return fmt.Errorf("local runtime: remove %s: %w", id, err)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("local runtime: remove %s: %w", id, err)
	}
	// Only succeeds when the environment folder is empty.
	os.Remove(filepath.Dir(dir))
	r.log.Info("removed instance", "env", id.Env, "role", id.Role, "dir", dir)
	return nil
}

// poolerStatus reports a pooler missing (Create never made it), stopped,
// running (the pid file names a live pgbouncer on the instance's ini and its
// port accepts TCP) or broken. A pid file left by a pgbouncer that is gone
// reads broken, as a postmaster.pid does for PostgreSQL: PgBouncer removes
// it when it shuts down, so it was killed or crashed; Start clears it.
func (r *Runtime) poolerStatus(id runtime.InstanceID) (runtime.Status, error) {
	b, err := r.loadPooler(id)
	if errors.Is(err, runtime.ErrMissing) {
		return runtime.Status{State: runtime.StateMissing}, nil
	}
	if b == nil {
		return runtime.Status{}, err
	}
	if err != nil {
		return runtime.Status{State: runtime.StateBroken, Reason: err.Error()}, nil
	}
	if pid, ok := b.Running(); ok {
		err := b.Accepts(statusDialTimeout)
		if err == nil {
			return runtime.Status{State: runtime.StateRunning, PID: pid}, nil
		}
		// A pgbouncer that was just killed may still show in /proc while
		// its socket is already closed: look again before blaming it.
		if _, ok = b.Running(); ok {
			return runtime.Status{State: runtime.StateBroken, PID: pid,
				Reason: fmt.Sprintf("pgbouncer (pid %d) runs but does not accept TCP on port %d: %v; last log: %s", pid, b.Port, err, oneLine(b.LogTail(3)))}, nil
		}
	}
	if pid, stale := b.Stale(); stale {
		return runtime.Status{State: runtime.StateBroken,
			Reason: fmt.Sprintf("pgbouncer is not running (stale %s of pid %d: it was killed or crashed; last log: %s)", runtime.PgBouncerPidFile, pid, oneLine(b.LogTail(3)))}, nil
	}
	return runtime.Status{State: runtime.StateStopped}, nil
}
