package pgexec

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxSocketPath is the longest unix socket path the kernel accepts
// (sizeof(sun_path) is 108, including the terminating NUL).
const maxSocketPath = 107

// startTimeout bounds pg_ctl start -w and stop -w.
const startTimeout = 60 * time.Second

// Cluster is one PostgreSQL data directory and the settings to run it. Its
// methods are not safe for concurrent use on the same data directory; callers
// serialise operations per cluster.
type Cluster struct {
	// BinDir holds initdb, pg_ctl, psql, … (see FindBinDir).
	BinDir string
	// DataDir is PGDATA, an absolute path.
	DataDir string
	// SocketDir is unix_socket_directories, an absolute path; it is created
	// 0700 and owned by the run-as user.
	SocketDir string
	// ListenAddress is listen_addresses: "" means no TCP at all.
	ListenAddress string
	// Port is the TCP port and also names the socket file .s.PGSQL.<port>;
	// it must be set even without TCP.
	Port int
	// Superuser is the initdb -U role; "" means "postgres".
	Superuser string
	// User is the OS user that runs the server and its tools.
	User RunAs
	// LogFile is the server log (pg_ctl -l); "" means <DataDir>.log beside
	// the data directory.
	LogFile string
	// Logger receives what pgdeck does to the cluster; nil discards it.
	Logger *slog.Logger
}

// logger returns the cluster's logger, a discarding one when none is set.
func (c *Cluster) logger() *slog.Logger {
	if c.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return c.Logger
}

// InitOptions are the settings Init writes besides the Cluster's own.
type InitOptions struct {
	// Conf holds extra postgresql.conf settings (name → value), written into
	// pgdeck.conf, which postgresql.conf includes.
	Conf map[string]string
	// HBA holds pg_hba.conf lines that follow the superuser's local trust
	// lines; without any, the server is reachable only over its socket.
	HBA []string
	// SuperuserPassword, when set, is given to initdb (--pwfile) on creation.
	SuperuserPassword string
}

func (c *Cluster) superuser() string {
	if c.Superuser == "" {
		return "postgres"
	}
	return c.Superuser
}

// Log returns the path of the server log file.
func (c *Cluster) Log() string {
	if c.LogFile != "" {
		return c.LogFile
	}
	return filepath.Join(filepath.Dir(c.DataDir), filepath.Base(c.DataDir)+".log")
}

// SocketPath returns the path of the server's unix socket file.
func (c *Cluster) SocketPath() string {
	return filepath.Join(c.SocketDir, ".s.PGSQL."+strconv.Itoa(c.Port))
}

// validate checks the fields every operation needs.
func (c *Cluster) validate() error {
	switch {
	case c.BinDir == "":
		return errors.New("pgexec: cluster has no BinDir")
	case !filepath.IsAbs(c.DataDir):
		return fmt.Errorf("pgexec: DataDir %q must be an absolute path", c.DataDir)
	case !filepath.IsAbs(c.SocketDir):
		return fmt.Errorf("pgexec: SocketDir %q must be an absolute path", c.SocketDir)
	case c.LogFile != "" && !filepath.IsAbs(c.LogFile):
		return fmt.Errorf("pgexec: LogFile %q must be an absolute path", c.LogFile)
	case c.Port < 1 || c.Port > 65535:
		return fmt.Errorf("pgexec: port %d out of range 1-65535", c.Port)
	case !roleName.MatchString(c.superuser()):
		return fmt.Errorf("pgexec: invalid superuser name %q", c.Superuser)
	case strings.ContainsAny(c.ListenAddress, "'\n\r\x00"):
		return fmt.Errorf("pgexec: invalid listen address %q", c.ListenAddress)
	}
	if p := c.SocketPath(); len(p) > maxSocketPath {
		return fmt.Errorf("pgexec: unix socket path %s is %d bytes, over the %d-byte limit: use a shorter socket folder (data directory)", p, len(p), maxSocketPath)
	}
	return nil
}

// Initialized reports whether the data directory holds a cluster (PG_VERSION
// exists).
func (c *Cluster) Initialized() bool {
	_, err := os.Stat(filepath.Join(c.DataDir, "PG_VERSION"))
	return err == nil
}

// Init creates the cluster with initdb unless it exists (a half-made data
// directory without PG_VERSION is removed first), then (every time) writes
// its settings: listen_addresses, port, unix_socket_directories,
// unix_socket_permissions and opt.Conf into pgdeck.conf, included from
// postgresql.conf, and pg_hba.conf. A running server needs Reload (or a
// restart, for port and addresses) to apply them.
func (c *Cluster) Init(ctx context.Context, opt InitOptions) error {
	if err := c.validate(); err != nil {
		return err
	}
	initdb, err := binPath(c.BinDir, "initdb")
	if err != nil {
		return err
	}
	// Refuse bad settings before creating anything.
	if _, err := c.renderConf(opt.Conf); err != nil {
		return fmt.Errorf("pgexec: init %s: %w", c.DataDir, err)
	}
	if _, err := c.renderHBA(opt.HBA); err != nil {
		return fmt.Errorf("pgexec: init %s: %w", c.DataDir, err)
	}
	if err := c.prepareDirs(); err != nil {
		return err
	}
	if !c.Initialized() {
		if err := c.initdb(ctx, initdb, opt); err != nil {
			return err
		}
	}
	if err := c.writeSettings(opt); err != nil {
		return fmt.Errorf("pgexec: write settings of %s: %w", c.DataDir, err)
	}
	return nil
}

// prepareDirs creates the parent of the data directory, the socket folder
// (0700, owned by the run-as user) and the log file, and makes them
// reachable by the run-as user.
func (c *Cluster) prepareDirs() error {
	for _, d := range []string{filepath.Dir(c.DataDir), filepath.Dir(c.SocketDir), filepath.Dir(c.Log())} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return fmt.Errorf("pgexec: create %s: %w", d, err)
		}
	}
	if err := os.MkdirAll(c.SocketDir, 0o700); err != nil {
		return fmt.Errorf("pgexec: create socket folder: %w", err)
	}
	if err := os.Chmod(c.SocketDir, 0o700); err != nil {
		return fmt.Errorf("pgexec: chmod socket folder: %w", err)
	}
	if err := c.User.chownOne(c.SocketDir); err != nil {
		return err
	}
	f, err := os.OpenFile(c.Log(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("pgexec: create server log: %w", err)
	}
	f.Close()
	if err := c.User.chownOne(c.Log()); err != nil {
		return err
	}
	for _, p := range []string{c.DataDir, c.SocketPath(), c.Log()} {
		if err := c.User.EnsureTraversable(p, c.logger()); err != nil {
			return err
		}
	}
	return nil
}

// initdb creates the data directory. C.UTF-8 is preferred for its ctype
// behaviour; hosts without that locale fall back to C.
//
// initdb writes PG_VERSION long before it is done, so it runs in a fresh
// sibling folder that is renamed to DataDir only once initdb succeeded: a
// DataDir with PG_VERSION is always a whole cluster, even after pgdeck was
// killed during initdb. initdb is also killed with pgdeck, so that no orphan
// keeps writing while the next attempt runs.
func (c *Cluster) initdb(ctx context.Context, initdb string, opt InitOptions) error {
	var lastErr error
	for _, locale := range []string{"C.UTF-8", "C"} {
		tmp, err := c.freshDataDir()
		if err != nil {
			return err
		}
		args := []string{
			"-D", tmp,
			"-U", c.superuser(),
			"--auth-local=trust",
			"--auth-host=scram-sha-256",
			"--encoding=UTF8",
			"--locale=" + locale,
		}
		if opt.SuperuserPassword != "" {
			pw := filepath.Join(c.SocketDir, ".pgdeck-initdb-pw")
			if err := WriteFileAs(c.User, pw, []byte(opt.SuperuserPassword+"\n"), 0o600); err != nil {
				return err
			}
			defer os.Remove(pw)
			args = append(args, "--pwfile="+pw)
		}
		out, err := c.runTied(ctx, initdb, args...)
		if err == nil {
			if err := os.Rename(tmp, c.DataDir); err != nil {
				os.RemoveAll(tmp)
				return fmt.Errorf("pgexec: initdb %s: %w", c.DataDir, err)
			}
			c.logger().Info("initialized postgresql cluster", "data_dir", c.DataDir, "locale", locale)
			return nil
		}
		os.RemoveAll(tmp)
		lastErr = fmt.Errorf("pgexec: initdb %s: %w: %s", c.DataDir, err, strings.TrimSpace(string(out)))
		// Only a missing locale is worth another try: initdb's banner always
		// mentions "locale", so matching that word retried every failure.
		if !strings.Contains(string(out), "invalid locale name") {
			break
		}
	}
	// Leave no half-made cluster behind.
	os.RemoveAll(c.DataDir)
	return lastErr
}

// initdbPattern names the folders initdb runs in before they become DataDir.
const initdbPattern = ".initdb-*"

// freshDataDir removes a half-made data directory and what earlier initdb
// runs left (stopping server processes still working there), then creates
// an empty folder beside DataDir for initdb, owned by the run-as user
// (initdb cannot create it in a root-owned parent), and returns its path.
func (c *Cluster) freshDataDir() (string, error) {
	if _, err := os.Lstat(c.DataDir); err == nil {
		c.logger().Warn("removing half-made postgresql data directory (no PG_VERSION)", "data_dir", c.DataDir)
		if err := os.RemoveAll(c.DataDir); err != nil {
			return "", fmt.Errorf("pgexec: remove half-made data directory: %w", err)
		}
	}
	leftovers, _ := filepath.Glob(c.DataDir + initdbPattern)
	for _, d := range leftovers {
		c.logger().Warn("removing what an interrupted initdb left", "dir", d)
		if pids := serverProcesses(d); len(pids) > 0 {
			killAll(context.Background(), pids, d)
		}
		if err := os.RemoveAll(d); err != nil {
			return "", fmt.Errorf("pgexec: remove what an interrupted initdb left: %w", err)
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(c.DataDir), filepath.Base(c.DataDir)+initdbPattern)
	if err != nil {
		return "", fmt.Errorf("pgexec: create data directory: %w", err)
	}
	if err := c.User.chownOne(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}

// Running reports whether the postmaster named in postmaster.pid is alive and
// really is this cluster's PostgreSQL server (a live, non-zombie postgres
// process working in DataDir), returning its pid. When ok is false, pid is
// the one recorded in a stale postmaster.pid, or 0.
func (c *Cluster) Running() (pid int, ok bool) {
	pid, exists, err := readPidFile(c.DataDir)
	if !exists || err != nil {
		return 0, false
	}
	if !servesDataDir(pid, c.DataDir) {
		return pid, false
	}
	return pid, true
}

// Stale reports whether postmaster.pid is left behind by a server that no
// longer runs (it crashed or was killed).
func (c *Cluster) Stale() bool {
	_, exists, _ := readPidFile(c.DataDir)
	if !exists {
		return false
	}
	_, ok := c.Running()
	return !ok
}

// Start starts the server with pg_ctl start -w, detached in its own session
// so that it outlives this process. It returns nil if the server already
// runs; a stale postmaster.pid (and backends orphaned by a killed postmaster)
// is cleared first.
func (c *Cluster) Start(ctx context.Context) error {
	if err := c.validate(); err != nil {
		return err
	}
	if !c.Initialized() {
		return fmt.Errorf("pgexec: start %s: cluster is not initialized", c.DataDir)
	}
	if _, ok := c.Running(); ok {
		return nil
	}
	pgctl, err := binPath(c.BinDir, "pg_ctl")
	if err != nil {
		return err
	}
	if err := c.clearStale(ctx); err != nil {
		return err
	}
	if err := c.prepareDirs(); err != nil {
		return err
	}
	out, err := c.run(ctx, nil, true, pgctl, "start", "-w", "-t", strconv.Itoa(int(startTimeout/time.Second)),
		"-D", c.DataDir, "-l", c.Log())
	if err != nil {
		return fmt.Errorf("pgexec: start %s: %w: %s\nserver log:\n%s", c.DataDir, err, strings.TrimSpace(string(out)), c.LogTail(20))
	}
	pid, _ := c.Running()
	c.logger().Info("started postgresql", "data_dir", c.DataDir, "pid", pid, "port", c.Port)
	return nil
}

// Stop stops the server with pg_ctl stop -m fast -w (immediate if fast does
// not finish in time). It returns nil if the server is not running, clearing
// a stale postmaster.pid.
func (c *Cluster) Stop(ctx context.Context) error {
	if err := c.validate(); err != nil {
		return err
	}
	if _, ok := c.Running(); !ok {
		return c.clearStale(ctx)
	}
	pgctl, err := binPath(c.BinDir, "pg_ctl")
	if err != nil {
		return err
	}
	t := strconv.Itoa(int(startTimeout / time.Second))
	out, err := c.run(ctx, nil, false, pgctl, "stop", "-w", "-t", t, "-m", "fast", "-D", c.DataDir)
	if err != nil {
		if _, ok := c.Running(); !ok {
			return nil
		}
		c.logger().Warn("fast shutdown failed, trying immediate", "data_dir", c.DataDir, "error", err, "output", strings.TrimSpace(string(out)))
		out, err = c.run(ctx, nil, false, pgctl, "stop", "-w", "-t", t, "-m", "immediate", "-D", c.DataDir)
		if err != nil {
			if _, ok := c.Running(); ok {
				return fmt.Errorf("pgexec: stop %s: %w: %s", c.DataDir, err, strings.TrimSpace(string(out)))
			}
		}
	}
	c.logger().Info("stopped postgresql", "data_dir", c.DataDir)
	return nil
}

// Reload asks a running server to re-read its configuration files.
func (c *Cluster) Reload(ctx context.Context) error {
	if _, ok := c.Running(); !ok {
		return nil
	}
	pgctl, err := binPath(c.BinDir, "pg_ctl")
	if err != nil {
		return err
	}
	if out, err := c.run(ctx, nil, false, pgctl, "reload", "-D", c.DataDir); err != nil {
		return fmt.Errorf("pgexec: reload %s: %w: %s", c.DataDir, err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Ready reports (nil) whether the server accepts connections on its socket,
// using pg_isready.
func (c *Cluster) Ready(ctx context.Context) error {
	out, err := c.Exec(ctx, nil, "pg_isready", "-q", "-t", "5", "-d", "postgres")
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			switch ee.ExitCode() {
			case 1:
				return errors.New("server is rejecting connections (starting up or shutting down)")
			case 2:
				return errors.New("server does not answer on its socket")
			}
		}
		return fmt.Errorf("pg_isready: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// clearStale removes a postmaster.pid (and socket lock file) left by a
// server that no longer runs, after stopping backends it orphaned: a
// postmaster refuses to start while they hold its shared memory, or while the
// pid in a stale lock file belongs to an unrelated process.
func (c *Cluster) clearStale(ctx context.Context) error {
	pid, exists, _ := readPidFile(c.DataDir)
	if orphans := serverProcesses(c.DataDir); len(orphans) > 0 {
		c.logger().Warn("stopping orphaned postgresql processes", "data_dir", c.DataDir, "pids", orphans)
		killAll(ctx, orphans, c.DataDir)
	}
	if exists {
		c.logger().Warn("removing stale postmaster.pid", "data_dir", c.DataDir, "pid", pid)
		if err := os.Remove(filepath.Join(c.DataDir, pidFileName)); err != nil && !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("pgexec: remove stale postmaster.pid: %w", err)
		}
	}
	lock := c.SocketPath() + ".lock"
	if lpid, err := readLockPid(lock); err == nil && !isLivePostgres(lpid) {
		os.Remove(lock)
		os.Remove(c.SocketPath())
	}
	return nil
}

// killAll sends SIGQUIT to the processes, then SIGKILL to those still
// serving dataDir after a few seconds.
func killAll(ctx context.Context, pids []int, dataDir string) {
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGQUIT)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) && ctx.Err() == nil {
		if len(serverProcesses(dataDir)) == 0 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, p := range serverProcesses(dataDir) {
		syscall.Kill(p, syscall.SIGKILL)
	}
	for i := 0; i < 50 && len(serverProcesses(dataDir)) > 0; i++ {
		time.Sleep(100 * time.Millisecond)
	}
}

func readLockPid(path string) (int, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	line, _, _ := strings.Cut(string(b), "\n")
	return strconv.Atoi(strings.TrimSpace(line))
}

func isLivePostgres(pid int) bool {
	info, ok := readProc(pid)
	return ok && info.state != 'Z' && info.state != 'X' && isPostgresComm(info.comm)
}

// LogTail returns up to the last n lines of the server log.
func (c *Cluster) LogTail(n int) string {
	return tailFile(c.Log(), n)
}

func tailFile(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size() > maxRead {
		f.Seek(fi.Size()-maxRead, io.SeekStart)
	}
	b, _ := io.ReadAll(f)
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// DSN returns a pgx/libpq connection string to database db as the superuser
// over the unix socket.
func (c *Cluster) DSN(db string) string {
	return fmt.Sprintf("host=%s port=%d user=%s dbname=%s sslmode=disable",
		dsnQuote(c.SocketDir), c.Port, dsnQuote(c.superuser()), dsnQuote(db))
}

// dsnQuote quotes a keyword/value connection string value when needed.
func dsnQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`+"\t\n") {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// Exec runs a program from BinDir (psql, createdb, pg_dump, …) as the run-as
// user with PGHOST, PGPORT and PGUSER pointing at this cluster's socket and
// superuser, and returns its combined output; the error includes the output.
func (c *Cluster) Exec(ctx context.Context, stdin []byte, name string, args ...string) ([]byte, error) {
	p, err := binPath(c.BinDir, name)
	if err != nil {
		return nil, err
	}
	out, err := c.run(ctx, stdin, false, p, args...)
	if err != nil {
		return out, fmt.Errorf("pgexec: %s: %w: %s", name, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// runTied runs a program like run, but it is killed when pgdeck dies.
func (c *Cluster) runTied(ctx context.Context, path string, args ...string) ([]byte, error) {
	// The parent-death signal fires when the thread that started the child
	// exits: keep that thread until the child is done.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	attr := c.User.sysProcAttr(false)
	attr.Pdeathsig = syscall.SIGKILL
	return c.runWith(ctx, nil, attr, path, args...)
}

// run runs a program as the run-as user with a clean environment and returns
// its combined output.
func (c *Cluster) run(ctx context.Context, stdin []byte, setsid bool, path string, args ...string) ([]byte, error) {
	return c.runWith(ctx, stdin, c.User.sysProcAttr(setsid), path, args...)
}

func (c *Cluster) runWith(ctx context.Context, stdin []byte, attr *syscall.SysProcAttr, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.Env = c.User.env(c.BinDir,
		"PGHOST="+c.SocketDir,
		"PGPORT="+strconv.Itoa(c.Port),
		"PGUSER="+c.superuser(),
	)
	cmd.SysProcAttr = attr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start hands its output descriptors to nobody (the server's go
	// to the log file), but do not hang forever if a child keeps them.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}
