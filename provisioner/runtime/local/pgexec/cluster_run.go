package pgexec

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
	// pg_ctl returns once postmaster.pid is gone; the postmaster and its
	// last children may still be exiting then (seen on a loaded machine),
	// so Stop also waits for the processes it saw.
	procs := serverProcesses(c.DataDir)
	defer c.waitExited(ctx, procs)
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

// waitExited waits, at most stopExitWait, until none of pids is a live
// PostgreSQL process any more.
func (c *Cluster) waitExited(ctx context.Context, pids []int) {
	deadline := time.Now().Add(stopExitWait)
	for _, pid := range pids {
		for isLivePostgres(pid) {
			if time.Now().After(deadline) || ctx.Err() != nil {
				c.logger().Warn("postgresql processes still exiting after stop", "data_dir", c.DataDir, "pid", pid)
				return
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// stopExitWait bounds how long Stop waits for the processes to exit once
// pg_ctl has returned.
const stopExitWait = 30 * time.Second

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
