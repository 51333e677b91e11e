// Package local runs pgdeck instances as processes on this host, with the
// host's PostgreSQL binaries (initdb, pg_ctl) and PgBouncer (a pooler), under
// one folder per environment and role. The processes outlive pgdeck.
package local

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/envdir"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// listenAddress is where every local instance accepts TCP clients.
const listenAddress = "127.0.0.1"

// legacyMetaFile is where pgdeck before the instances record kept a copy of
// the port; the port is now read from the cluster's pgdeck.conf only, and a
// leftover file is removed by the next Create.
const legacyMetaFile = "instance.json"

// clientNetwork is the pg_hba.conf address of every local client.
const clientNetwork = "127.0.0.1/32"

// Config configures the local runtime.
type Config struct {
	// Root holds one folder per environment (e.g. <data-dir>/envs).
	Root string
	// BinDir holds the PostgreSQL binaries; "" finds them (see
	// pgexec.FindBinDir).
	BinDir string
	// PgBouncerBin is the pgbouncer executable; "" finds it when a pooler
	// needs it (see pgexec.FindPgBouncer).
	PgBouncerBin string
	// User runs the PostgreSQL and PgBouncer processes; the zero value
	// means the current user, or the `postgres` user when pgdeck runs as
	// root.
	User pgexec.RunAs
	// Logger receives the runtime's logs; nil means slog.Default().
	Logger *slog.Logger
}

// Runtime is the local runtime. It is safe for concurrent use; operations
// that change one instance are serialised.
type Runtime struct {
	root         string
	binDir       string
	pgbouncerBin string
	user         pgexec.RunAs
	log          *slog.Logger
	// envs are the environments' own files, beside their instances'
	// folders.
	envs envdir.Dirs

	mu    sync.Mutex
	locks map[runtime.InstanceID]*sync.Mutex
}

var _ runtime.Runtime = (*Runtime)(nil)

// New checks the configuration, finds the binaries and creates Root.
func New(cfg Config) (*Runtime, error) {
	if cfg.Root == "" {
		return nil, errors.New("local runtime: no root folder configured")
	}
	root, err := filepath.Abs(cfg.Root)
	if err != nil {
		return nil, fmt.Errorf("local runtime: root %q: %w", cfg.Root, err)
	}
	binDir, err := pgexec.FindBinDir(cfg.BinDir)
	if err != nil {
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	user := cfg.User
	if !user.Set && os.Geteuid() == 0 {
		if user, err = pgexec.DefaultRunAs(); err != nil {
			return nil, fmt.Errorf("local runtime: %w", err)
		}
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.Default()
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("local runtime: create root: %w", err)
	}
	if err := user.EnsureTraversable(filepath.Join(root, "x"), logger); err != nil {
		return nil, fmt.Errorf("local runtime: %w", err)
	}
	logger = logger.With("runtime", "local")
	return &Runtime{
		root:         root,
		binDir:       binDir,
		pgbouncerBin: cfg.PgBouncerBin,
		user:         user,
		log:          logger,
		envs:         envdir.Dirs{Root: root, Runtime: "local runtime", Taken: envTaken, Log: logger},
		locks:        map[runtime.InstanceID]*sync.Mutex{},
	}, nil
}

// BinDir returns the folder of the PostgreSQL binaries in use.
func (r *Runtime) BinDir() string { return r.binDir }

// InstanceDir returns the instance's folder: Root/<env>/<role>.
func (r *Runtime) InstanceDir(id runtime.InstanceID) string {
	return filepath.Join(r.root, id.Env, string(id.Role))
}

// InstancePath returns the path on this host of the file that WriteFile(id,
// rel, …) writes, "" when id or rel is invalid.
func (r *Runtime) InstancePath(id runtime.InstanceID, rel string) string {
	if id.Validate() != nil {
		return ""
	}
	clean, err := runtime.CleanRel(rel)
	if err != nil {
		return ""
	}
	return filepath.Join(r.InstanceDir(id), filepath.FromSlash(clean))
}

func (r *Runtime) lock(id runtime.InstanceID) func() {
	r.mu.Lock()
	l, ok := r.locks[id]
	if !ok {
		l = &sync.Mutex{}
		r.locks[id] = l
	}
	r.mu.Unlock()
	l.Lock()
	return l.Unlock
}

// cluster returns the pgexec cluster of an instance with the given port.
func (r *Runtime) cluster(id runtime.InstanceID, port int) *pgexec.Cluster {
	dir := r.InstanceDir(id)
	c := &pgexec.Cluster{
		BinDir:        r.binDir,
		DataDir:       filepath.Join(dir, "pgdata"),
		SocketDir:     filepath.Join(dir, "run"),
		ListenAddress: listenAddress,
		Port:          port,
		User:          r.user,
		LogFile:       filepath.Join(dir, "postgresql.log"),
		Logger:        r.log,
	}
	if port > 0 && len(c.SocketPath()) > 107 {
		// Sockets paths are limited to 107 bytes; deep data folders and
		// long environment names get a short, stable folder instead.
		sum := sha256.Sum256([]byte(dir))
		c.SocketDir = filepath.Join(os.TempDir(), "pgdeck-"+hex.EncodeToString(sum[:6]))
	}
	return c
}

// load returns the cluster of an existing instance, or an error wrapping
// runtime.ErrMissing.
func (r *Runtime) load(id runtime.InstanceID) (*pgexec.Cluster, error) {
	if err := id.Validate(); err != nil {
		return nil, err
	}
	c := r.cluster(id, 0)
	if !c.Initialized() {
		return nil, fmt.Errorf("local runtime: %s: %w", id, runtime.ErrMissing)
	}
	port, err := pgexec.ReadPort(c.DataDir)
	if err != nil {
		return nil, fmt.Errorf("local runtime: %s: %w", id, err)
	}
	return r.cluster(id, port), nil
}

// Create makes the instance if it is missing (a primary with initdb, a
// replica with pg_basebackup from spec.Init.From, see standbyOptions) and
// writes its configuration from spec every time. A running instance reads
// it when reloaded, or restarts at once when its port changed. A pooler
// gets its folder and port record (see createPooler).
func (r *Runtime) Create(ctx context.Context, spec runtime.Spec) error {
	id := spec.ID
	if err := id.Validate(); err != nil {
		return err
	}
	if isPooler(id) {
		return r.createPooler(ctx, spec)
	}
	if err := runtime.CheckInit(spec); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return fmt.Errorf("local runtime: create %s: port %d out of range 1-65535", id, spec.Port)
	}
	var standby *pgexec.StandbyOptions
	if spec.Init.Kind == runtime.InitBaseBackup {
		var err error
		if standby, err = r.standbyOptions(spec); err != nil {
			return fmt.Errorf("local runtime: create %s: %w", id, err)
		}
	}
	defer r.lock(id)()

	dir := r.InstanceDir(id)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	if r.user.Set {
		// Only the folder itself: the data folder below may be large.
		if err := os.Lchown(dir, r.user.UID, r.user.GID); err != nil {
			return fmt.Errorf("local runtime: create %s: %w", id, err)
		}
	}
	c := r.cluster(id, spec.Port)
	oldPort, oldErr := pgexec.ReadPort(c.DataDir)
	if err := r.ensureSocketDir(c); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	created := !c.Initialized()
	err := c.Init(ctx, pgexec.InitOptions{Conf: spec.Conf, HBA: spec.HBA, Standby: standby})
	if err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	os.Remove(filepath.Join(dir, legacyMetaFile))
	if created {
		r.log.Info("created instance", "env", id.Env, "role", id.Role, "port", spec.Port, "dir", dir)
	}
	if oldErr != nil || oldPort == spec.Port {
		// A running server keeps its configuration until the caller
		// checks the new one and reloads (or restarts) it.
		return nil
	}
	// The port (and with it the socket name) changed: a running server must
	// restart to move, and it must be stopped through its old socket.
	prev := r.cluster(id, oldPort)
	if _, ok := prev.Running(); !ok {
		return nil
	}
	r.log.Info("restarting instance on its new port", "env", id.Env, "role", id.Role, "old_port", oldPort, "port", spec.Port)
	if err := prev.Stop(ctx); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("local runtime: create %s: %w", id, err)
	}
	return nil
}

// ensureSocketDir checks a socket folder outside the instance folder (see
// cluster): it must be a real folder owned by us or the run-as user, never
// a symlink planted in a shared temporary folder.
func (r *Runtime) ensureSocketDir(c *pgexec.Cluster) error {
	if filepath.Dir(c.SocketDir) == filepath.Dir(c.DataDir) {
		return nil
	}
	if err := os.Mkdir(c.SocketDir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	fi, err := os.Lstat(c.SocketDir)
	if err != nil {
		return err
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	owner := -1
	if st != nil {
		owner = int(st.Uid)
	}
	if !fi.IsDir() || (owner != os.Geteuid() && !(r.user.Set && owner == r.user.UID)) {
		return fmt.Errorf("socket folder %s is not a folder owned by pgdeck", c.SocketDir)
	}
	return nil
}

// Start starts the instance; a running instance is left alone.
func (r *Runtime) Start(ctx context.Context, id runtime.InstanceID) error {
	if isPooler(id) {
		return r.startPooler(ctx, id)
	}
	defer r.lock(id)()
	c, err := r.load(id)
	if err != nil {
		return fmt.Errorf("local runtime: start: %w", err)
	}
	if err := r.ensureSocketDir(c); err != nil {
		return fmt.Errorf("local runtime: start %s: %w", id, err)
	}
	if err := c.Start(ctx); err != nil {
		return fmt.Errorf("local runtime: start %s: %w", id, err)
	}
	return nil
}

// Stop stops the instance; a stopped or missing instance is left alone.
func (r *Runtime) Stop(ctx context.Context, id runtime.InstanceID) error {
	if isPooler(id) {
		return r.stopPooler(ctx, id)
	}
	defer r.lock(id)()
	c, err := r.load(id)
	if errors.Is(err, runtime.ErrMissing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("local runtime: stop: %w", err)
	}
	if err := c.Stop(ctx); err != nil {
		return fmt.Errorf("local runtime: stop %s: %w", id, err)
	}
	return nil
}

// Remove stops the instance and deletes its folder (and the environment's
// folder when nothing else is left in it). A missing instance is fine.
func (r *Runtime) Remove(ctx context.Context, id runtime.InstanceID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	if isPooler(id) {
		return r.removePooler(ctx, id)
	}
	defer r.lock(id)()
	dir := r.InstanceDir(id)
	c, err := r.load(id)
	switch {
	case err == nil:
		if err := c.Stop(ctx); err != nil {
			return fmt.Errorf("local runtime: remove %s: %w", id, err)
		}
	case !errors.Is(err, runtime.ErrMissing):
		// Without pgdeck.conf the port is unknown, but a server may still
		// run in the data folder: stop it through pg_ctl, which needs none.
		c = r.cluster(id, 1)
		if err := c.Stop(ctx); err != nil {
			return fmt.Errorf("local runtime: remove %s: %w", id, err)
		}
	}
	if c != nil && filepath.Dir(c.SocketDir) != dir {
		os.RemoveAll(c.SocketDir)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("local runtime: remove %s: %w", id, err)
	}
	// Only succeeds when the environment folder is empty.
	os.Remove(filepath.Dir(dir))
	r.log.Info("removed instance", "env", id.Env, "role", id.Role, "dir", dir)
	return nil
}

// Address returns 127.0.0.1 and the instance's port (0 when it is missing).
func (r *Runtime) Address(id runtime.InstanceID) (host string, port int) {
	if isPooler(id) {
		b, err := r.loadPooler(id)
		if err != nil {
			return listenAddress, 0
		}
		return listenAddress, b.Port
	}
	c, err := r.load(id)
	if err != nil {
		return listenAddress, 0
	}
	return listenAddress, c.Port
}

// PeerAddress is Address: locally every instance reaches every other one
// the way pgdeck does.
func (r *Runtime) PeerAddress(id runtime.InstanceID) (host string, port int) {
	return r.Address(id)
}

// PortFree reports whether nothing listens on 127.0.0.1:port.
func (r *Runtime) PortFree(port int) bool {
	ln, err := net.Listen("tcp", net.JoinHostPort(listenAddress, strconv.Itoa(port)))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// ClientNetwork is 127.0.0.1/32: every local instance listens there only.
func (r *Runtime) ClientNetwork(string) string { return clientNetwork }

// Cluster returns the pgexec cluster behind an instance, for callers that
// need more than the Runtime interface (e.g. pg_basebackup for a replica).
func (r *Runtime) Cluster(id runtime.InstanceID) (*pgexec.Cluster, error) {
	return r.load(id)
}
