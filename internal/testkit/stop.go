package testkit

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Stopped says what StopPostgres found running and how it stopped it.
type Stopped struct {
	// Found lists the live processes it set out to stop.
	Found []int
	// Killed lists those it sent SIGKILL: PostgreSQL processes without a
	// postmaster.pid to stop them by, initdb runs, and whatever was still
	// alive at the deadline.
	Killed []int
}

// StopPostgres stops what runs under dir and waits, at most timeout, until
// it is gone. A postmaster named by its data directory's postmaster.pid is
// stopped with pg_ctl stop -m fast, run as the data directory's owner;
// other PostgreSQL processes and initdb runs under dir get SIGKILL; another
// daemon named by a *.pid file under dir (PgBouncer) gets SIGINT. What is
// still alive at the deadline gets SIGKILL and is named in the error, as is
// a pg_ctl that failed.
func StopPostgres(dir string, timeout time.Duration) (Stopped, error) {
	deadline := time.Now().Add(timeout)
	var st Stopped
	var errs []error
	kill := func(pid int) {
		if syscall.Kill(pid, syscall.SIGKILL) == nil {
			st.Killed = append(st.Killed, pid)
		}
	}

	// A cluster is stopped by pg_ctl when its postmaster.pid names one of
	// its live processes; the processes of any other (orphans of a killed
	// postmaster, a postmaster without its file) get SIGKILL.
	pg := PostgresUnder(dir)
	st.Found = append(st.Found, pg...)
	byDataDir := map[string][]int{}
	for _, pid := range pg {
		byDataDir[Cwd(pid)] = append(byDataDir[Cwd(pid)], pid)
	}
	for dataDir, pids := range byDataDir {
		if !slices.Contains(pids, pidFileNames(filepath.Join(dataDir, "postmaster.pid"))) {
			for _, pid := range pids {
				kill(pid)
			}
			continue
		}
		if err := pgCtlStop(dataDir, deadline); err != nil && len(PostgresUnder(dataDir)) > 0 {
			errs = append(errs, err)
		}
	}
	for _, pid := range ProcessesUnder(dir, "initdb") {
		st.Found = append(st.Found, pid)
		kill(pid)
	}
	daemons := otherDaemons(dir)
	for _, pid := range daemons {
		if syscall.Kill(pid, syscall.SIGINT) == nil {
			st.Found = append(st.Found, pid)
		}
	}

	// pg_ctl returns once postmaster.pid is gone; the processes may still be
	// exiting, so wait for them (bounded) before calling them left over.
	left := func() []int {
		out := append(PostgresUnder(dir), ProcessesUnder(dir, "initdb")...)
		for _, pid := range daemons {
			if Alive(pid) && Under(pid, dir) {
				out = append(out, pid)
			}
		}
		return out
	}
	for len(left()) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if pids := left(); len(pids) > 0 {
		for _, pid := range pids {
			kill(pid)
		}
		errs = append(errs, fmt.Errorf("processes %v under %s still ran %s after the stop began (killed)", pids, dir, timeout))
	}
	return st, errors.Join(errs...)
}

// StopLeftovers stops what a test left running under dir (StopPostgres,
// bounded at one minute), logs what it stopped, and fails the test when
// something could not be stopped cleanly.
func StopLeftovers(tb testing.TB, dir string) {
	tb.Helper()
	st, err := StopPostgres(dir, time.Minute)
	if len(st.Found) > 0 {
		tb.Logf("stopped leftover processes under %s: %v", dir, st.Found)
	}
	if err != nil {
		tb.Errorf("stop leftover processes: %v", err)
	}
}

// pidFileNames reads the pid on the first line of a pid file (0 when there
// is none).
func pidFileNames(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 1 {
		return 0
	}
	return pid
}

// otherDaemons lists the live processes named by *.pid files under dir
// (other than postmaster.pid) that are Under dir.
func otherDaemons(dir string) []int {
	var out []int
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(d.Name(), ".pid") || d.Name() == "postmaster.pid" {
			return nil
		}
		if pid := pidFileNames(path); pid > 0 && Alive(pid) && Under(pid, dir) && !slices.Contains(out, pid) {
			out = append(out, pid)
		}
		return nil
	})
	return out
}

// pgCtlStop runs pg_ctl stop -m fast on dataDir as the owner of dataDir
// (PostgreSQL refuses to run as root; the data directory's owner is the
// user it runs as).
func pgCtlStop(dataDir string, deadline time.Time) error {
	ctx, cancel := context.WithDeadline(context.Background(), deadline)
	defer cancel()
	secs := max(1, int(time.Until(deadline).Seconds()))
	cmd := exec.CommandContext(ctx, pgCtl(dataDir), "stop", "-w", "-t", strconv.Itoa(secs), "-m", "fast", "-D", dataDir)
	cmd.Dir = "/" // the owner may not be allowed into the test's folder
	cmd.Env = []string{"HOME=/", "LANG=C.UTF-8", "PATH=/usr/local/bin:/usr/bin:/bin"}
	if fi, err := os.Stat(dataDir); err == nil {
		if s, ok := fi.Sys().(*syscall.Stat_t); ok && int(s.Uid) != os.Geteuid() {
			cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: s.Uid, Gid: s.Gid}}
		}
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("pg_ctl stop -D %s: %v: %s", dataDir, err, out)
	}
	return nil
}

// pgCtl finds pg_ctl: in $PGDECK_PG_BIN_DIR, else Debian's folder for the
// data directory's major version, else on PATH.
func pgCtl(dataDir string) string {
	var candidates []string
	if d := os.Getenv("PGDECK_PG_BIN_DIR"); d != "" {
		candidates = append(candidates, filepath.Join(d, "pg_ctl"))
	}
	if v, err := os.ReadFile(filepath.Join(dataDir, "PG_VERSION")); err == nil {
		candidates = append(candidates, filepath.Join("/usr/lib/postgresql", strings.TrimSpace(string(v)), "bin", "pg_ctl"))
	}
	for _, c := range candidates {
		if _, err := os.Stat(c); err == nil {
			return c
		}
	}
	return "pg_ctl"
}
