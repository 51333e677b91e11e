package pgexec

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// pgbouncerInstallHint is the command that installs PgBouncer on Debian and
// Ubuntu; every "pgbouncer missing" error carries it.
const pgbouncerInstallHint = "apt-get install -y pgbouncer"

// ErrNoPgBouncer is wrapped by FindPgBouncer when no pgbouncer binary is
// found.
var ErrNoPgBouncer = errors.New("pgbouncer not found (install it with: " + pgbouncerInstallHint + ")")

// pgbouncerDirs are looked in after PATH: Debian installs pgbouncer in
// /usr/sbin, which a service's or a test's PATH may lack.
var pgbouncerDirs = []string{"/usr/sbin", "/usr/bin", "/usr/local/sbin", "/usr/local/bin"}

// Bounds of PgBouncer's start and stop.
const (
	// pgbouncerStartTimeout bounds how long Start waits for the port.
	pgbouncerStartTimeout = 30 * time.Second
	// pgbouncerStopGrace is how long Stop waits after SIGTERM before it
	// sends SIGKILL, and pgbouncerKillWait how long after that.
	pgbouncerStopGrace = 15 * time.Second
	pgbouncerKillWait  = 5 * time.Second
	// pgbouncerPortWait bounds how long Stop waits for the port to close
	// once the process is gone: the kernel closes a listening socket when
	// its process exits, so a port that stays open is someone else's.
	pgbouncerPortWait = 5 * time.Second
	// pgbouncerLogLines is how many log lines an error carries.
	pgbouncerLogLines = 20
)

// FindPgBouncer returns configured if non-empty (checking it is an
// executable), else pgbouncer from PATH, else from /usr/sbin and the other
// usual folders.
func FindPgBouncer(configured string) (string, error) {
	if configured != "" {
		if !isExecutable(configured) {
			return "", fmt.Errorf("pgexec: %s is not an executable: %w", configured, ErrNoPgBouncer)
		}
		return filepath.Abs(configured)
	}
	if p, err := exec.LookPath("pgbouncer"); err == nil {
		return filepath.Abs(p)
	}
	for _, d := range pgbouncerDirs {
		if p := filepath.Join(d, "pgbouncer"); isExecutable(p) {
			return p, nil
		}
	}
	return "", fmt.Errorf("pgexec: looked on PATH and in %s: %w", strings.Join(pgbouncerDirs, ", "), ErrNoPgBouncer)
}

// PgBouncer is one PgBouncer process: the ini it runs on, the pid and log
// files that ini names, and where the ini makes it listen. A process is this
// PgBouncer when it is a live pgbouncer whose command line ends with IniFile.
// Its methods are not safe for concurrent use on the same ini; callers
// serialise operations per instance.
type PgBouncer struct {
	// Bin is the pgbouncer executable (see FindPgBouncer); only Start
	// needs it.
	Bin string
	// IniFile, PidFile and LogFile are absolute paths; the ini must name
	// PidFile as its pidfile and LogFile as its logfile.
	IniFile, PidFile, LogFile string
	// ListenAddress and Port are where the ini makes PgBouncer accept TCP
	// clients. Port 0 means unknown: Start refuses it, Stop then does not
	// wait for the port to close.
	ListenAddress string
	Port          int
	// User is the OS user that runs pgbouncer (it refuses to run as root).
	User RunAs
	// Logger receives what pgdeck does to the process; nil discards it.
	Logger *slog.Logger
}

func (b *PgBouncer) logger() *slog.Logger {
	if b.Logger == nil {
		return slog.New(slog.DiscardHandler)
	}
	return b.Logger
}

// validate checks the fields every operation needs.
func (b *PgBouncer) validate() error {
	for what, p := range map[string]string{"IniFile": b.IniFile, "PidFile": b.PidFile, "LogFile": b.LogFile} {
		if !filepath.IsAbs(p) {
			return fmt.Errorf("pgexec: pgbouncer %s %q must be an absolute path", what, p)
		}
	}
	if b.Port < 0 || b.Port > 65535 {
		return fmt.Errorf("pgexec: pgbouncer port %d out of range 1-65535", b.Port)
	}
	return nil
}

// addr is ListenAddress:Port.
func (b *PgBouncer) addr() string {
	return net.JoinHostPort(b.ListenAddress, strconv.Itoa(b.Port))
}

// Running reports whether the process named in PidFile is alive and runs
// IniFile, returning its pid. When ok is false, pid is the one recorded in a
// stale pid file, or 0.
func (b *PgBouncer) Running() (pid int, ok bool) {
	pid, exists, err := readPid(b.PidFile)
	if !exists || err != nil {
		return 0, false
	}
	return pid, runsIni(pid, b.IniFile)
}

// Stale reports whether PidFile is left behind by a PgBouncer that no longer
// runs, returning the pid it names: PgBouncer removes its pid file when it
// shuts down, so it was killed or crashed.
func (b *PgBouncer) Stale() (pid int, stale bool) {
	pid, exists, _ := readPid(b.PidFile)
	if !exists {
		return 0, false
	}
	_, ok := b.Running()
	return pid, !ok
}

// Accepts reports (nil) whether a TCP connection to ListenAddress:Port
// succeeds within timeout.
func (b *PgBouncer) Accepts(timeout time.Duration) error {
	c, err := net.DialTimeout("tcp", b.addr(), timeout)
	if err != nil {
		return err
	}
	c.Close()
	return nil
}

// Start runs `pgbouncer -d IniFile` as the user (PgBouncer daemonises
// itself, so it outlives this process) and waits, at most
// pgbouncerStartTimeout and while ctx lasts, until it runs and accepts TCP
// on its port. It returns nil if it already runs; a stale pid file, and a
// pgbouncer on IniFile that no pid file names, are cleared first. A failure
// carries the lines PgBouncer logged meanwhile.
func (b *PgBouncer) Start(ctx context.Context) error {
	if err := b.validate(); err != nil {
		return err
	}
	if b.Port == 0 || b.ListenAddress == "" {
		return fmt.Errorf("pgexec: start pgbouncer %s: no address to wait on", b.IniFile)
	}
	if _, ok := b.Running(); ok {
		return nil
	}
	if !isExecutable(b.Bin) {
		return fmt.Errorf("pgexec: start pgbouncer %s: %q: %w", b.IniFile, b.Bin, ErrNoPgBouncer)
	}
	// pgbouncer -d says nothing about a missing ini: say it here.
	if _, err := os.Stat(b.IniFile); err != nil {
		return fmt.Errorf("pgexec: start pgbouncer: %w (write the ini before starting)", err)
	}
	if err := b.clearStale(ctx); err != nil {
		return err
	}
	logStart := fileSize(b.LogFile)
	env := b.User.env(filepath.Dir(b.Bin))
	// No -q: PgBouncer logs nowhere until it has read the ini's logfile
	// setting, and without -q what goes wrong before (an invalid value
	// above that line) reaches its stderr, which run captures. Once
	// daemonised its output is /dev/null either way.
	out, err := runProgram(ctx, env, nil, b.User.sysProcAttr(true), b.Bin, "-d", b.IniFile)
	if err != nil {
		return b.startError(err, out, logStart)
	}
	if err := b.waitStarted(ctx, logStart); err != nil {
		return err
	}
	pid, _ := b.Running()
	b.logger().Info("started pgbouncer", "ini", b.IniFile, "pid", pid, "port", b.Port)
	return nil
}

// waitStarted waits until the pid file names a live pgbouncer on IniFile and
// its port accepts TCP. It fails early once no pgbouncer on IniFile is left:
// after daemonising, PgBouncer still exits when it cannot listen.
func (b *PgBouncer) waitStarted(ctx context.Context, logStart int64) error {
	deadline := time.Now().Add(pgbouncerStartTimeout)
	for gone := 0; ; {
		_, ok := b.Running()
		var acceptErr error
		switch {
		case ok:
			gone = 0
			if acceptErr = b.Accepts(time.Second); acceptErr == nil {
				return nil
			}
		case len(processesOnIni(b.IniFile)) > 0:
			gone = 0
		default:
			// PgBouncer forks twice to daemonise, and one scan of /proc
			// can miss both: the parent exiting, its child not listed
			// yet. Only a few scans in a row that find none tell.
			if gone++; gone >= 3 {
				return fmt.Errorf("pgexec: start pgbouncer %s: it exited during start-up; log:\n%s", b.IniFile, b.logSince(logStart))
			}
		}
		if time.Now().After(deadline) {
			why := "no pid file"
			if ok {
				why = fmt.Sprintf("it runs but %s does not accept TCP: %v", b.addr(), acceptErr)
			}
			return fmt.Errorf("pgexec: start pgbouncer %s: not ready after %s (%s); log:\n%s", b.IniFile, pgbouncerStartTimeout, why, b.logSince(logStart))
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("pgexec: start pgbouncer %s: %w; log:\n%s", b.IniFile, ctx.Err(), b.logSince(logStart))
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// startError describes a pgbouncer -d that exited with an error: its output
// (what it said before it knew its logfile), then the lines it logged that
// its output does not already hold.
func (b *PgBouncer) startError(err error, out []byte, logStart int64) error {
	msg := fmt.Sprintf("pgexec: start pgbouncer %s: %v", b.IniFile, err)
	said := strings.TrimSpace(string(out))
	if said != "" {
		msg += ":\n" + said
	}
	var logged []string
	for _, line := range strings.Split(b.logSince(logStart), "\n") {
		if line != "" && !strings.Contains(said, line) {
			logged = append(logged, line)
		}
	}
	if len(logged) > 0 {
		msg += "\nlog:\n" + strings.Join(logged, "\n")
	}
	if said == "" && len(logged) == 0 {
		msg += " (it said and logged nothing)"
	}
	return errors.New(msg)
}

// Stop sends SIGTERM to the pgbouncer on IniFile (PgBouncer 1.18 shuts down
// at once, closing its clients' connections; SIGINT would wait for them)
// and waits, while ctx lasts, until it has exited and its port no longer
// accepts TCP. One still alive after pgbouncerStopGrace gets SIGKILL. A
// stale pid file is removed. Stopping a stopped pgbouncer does nothing.
func (b *PgBouncer) Stop(ctx context.Context) error {
	if err := b.validate(); err != nil {
		return err
	}
	pids := processesOnIni(b.IniFile)
	if pid, ok := b.Running(); ok && !slices.Contains(pids, pid) {
		pids = append(pids, pid)
	}
	if len(pids) == 0 {
		return b.removeStalePid()
	}
	if err := b.terminate(ctx, pids); err != nil {
		return err
	}
	if err := b.removeStalePid(); err != nil {
		return err
	}
	if b.Port > 0 && b.ListenAddress != "" {
		deadline := time.Now().Add(pgbouncerPortWait)
		for b.Accepts(100*time.Millisecond) == nil {
			if time.Now().After(deadline) {
				return fmt.Errorf("pgexec: stop pgbouncer %s: it exited but %s still accepts TCP: another process listens there", b.IniFile, b.addr())
			}
			if err := sleepCtx(ctx, 50*time.Millisecond); err != nil {
				return fmt.Errorf("pgexec: stop pgbouncer %s: %w", b.IniFile, err)
			}
		}
	}
	b.logger().Info("stopped pgbouncer", "ini", b.IniFile, "pids", pids)
	return nil
}

// terminate sends SIGTERM to pids, then SIGKILL to those still running
// IniFile after pgbouncerStopGrace, and waits until none is left.
func (b *PgBouncer) terminate(ctx context.Context, pids []int) error {
	alive := func() []int {
		var out []int
		for _, p := range pids {
			if runsIni(p, b.IniFile) {
				out = append(out, p)
			}
		}
		return out
	}
	for _, p := range pids {
		syscall.Kill(p, syscall.SIGTERM)
	}
	killAt := time.Now().Add(pgbouncerStopGrace)
	giveUp := killAt.Add(pgbouncerKillWait)
	killed := false
	for left := alive(); len(left) > 0; left = alive() {
		now := time.Now()
		switch {
		case now.After(giveUp):
			return fmt.Errorf("pgexec: stop pgbouncer %s: pids %v survived SIGKILL", b.IniFile, left)
		case now.After(killAt) && !killed:
			b.logger().Warn("pgbouncer did not stop on SIGTERM, sending SIGKILL", "ini", b.IniFile, "pids", left)
			for _, p := range left {
				syscall.Kill(p, syscall.SIGKILL)
			}
			killed = true
		}
		if err := sleepCtx(ctx, 20*time.Millisecond); err != nil {
			return fmt.Errorf("pgexec: stop pgbouncer %s: %w", b.IniFile, err)
		}
	}
	return nil
}

// clearStale stops pgbouncers on IniFile that no pid file names (their pid
// file was removed: a new one could not listen beside them) and removes a
// pid file whose process is gone. PgBouncer clears a stale pid file itself,
// but it takes a killed process that its parent has not reaped yet (a
// zombie) for a live one and refuses to start.
func (b *PgBouncer) clearStale(ctx context.Context) error {
	if strays := processesOnIni(b.IniFile); len(strays) > 0 {
		b.logger().Warn("stopping pgbouncer processes that no pid file names", "ini", b.IniFile, "pids", strays)
		if err := b.terminate(ctx, strays); err != nil {
			return err
		}
	}
	return b.removeStalePid()
}

// removeStalePid removes PidFile when it names no live pgbouncer on IniFile.
func (b *PgBouncer) removeStalePid() error {
	pid, stale := b.Stale()
	if !stale {
		return nil
	}
	b.logger().Warn("removing stale pgbouncer pid file", "pid_file", b.PidFile, "pid", pid)
	if err := os.Remove(b.PidFile); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("pgexec: remove stale %s: %w", b.PidFile, err)
	}
	return nil
}

// LogTail returns up to the last n lines of PgBouncer's log.
func (b *PgBouncer) LogTail(n int) string {
	return tailFile(b.LogFile, n)
}

// logSince returns the last lines PgBouncer logged after offset.
func (b *PgBouncer) logSince(offset int64) string {
	if fileSize(b.LogFile) <= offset {
		return ""
	}
	f, err := os.Open(b.LogFile)
	if err != nil {
		return ""
	}
	defer f.Close()
	const maxRead = 16 << 10
	if fi, err := f.Stat(); err == nil && fi.Size()-offset > maxRead {
		offset = fi.Size() - maxRead
	}
	buf := make([]byte, maxRead)
	n, _ := f.ReadAt(buf, offset)
	lines := strings.Split(strings.TrimRight(string(buf[:n]), "\n"), "\n")
	if len(lines) > pgbouncerLogLines {
		lines = lines[len(lines)-pgbouncerLogLines:]
	}
	return strings.Join(lines, "\n")
}

// fileSize returns the size of path, 0 when it cannot be read.
func fileSize(path string) int64 {
	fi, err := os.Stat(path)
	if err != nil {
		return 0
	}
	return fi.Size()
}

// runsIni reports whether pid is a live (not zombie) pgbouncer whose command
// line ends with ini. The ini path tells one instance's pgbouncer from
// another's, and from a process that reused the pid.
func runsIni(pid int, ini string) bool {
	info, ok := readProc(pid)
	if !ok || info.state == 'Z' || info.state == 'X' || info.comm != "pgbouncer" {
		return false
	}
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	if err != nil {
		return false
	}
	args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
	return len(args) > 1 && samePath(args[len(args)-1], ini)
}

// processesOnIni lists the live pgbouncer processes running ini.
func processesOnIni(ini string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if runsIni(pid, ini) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// sleepCtx sleeps for d, or less when ctx ends (returning its error).
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(d):
		return nil
	}
}
