package pgexec

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"strings"
	"syscall"
	"time"
)

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
	env := c.User.env(c.BinDir,
		"PGHOST="+c.SocketDir,
		"PGPORT="+strconv.Itoa(c.Port),
		"PGUSER="+c.superuser(),
	)
	return runProgram(ctx, env, stdin, attr, path, args...)
}

// runProgram runs a program with the environment env (see RunAs.env) and
// the process attributes attr (see RunAs.sysProcAttr) in /, and returns its
// combined output.
func runProgram(ctx context.Context, env []string, stdin []byte, attr *syscall.SysProcAttr, path string, args ...string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.Env = env
	cmd.SysProcAttr = attr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	// pg_ctl start and pgbouncer -d hand their output descriptors to nobody
	// (the servers' go to their log files), but do not hang forever if a
	// child keeps them.
	cmd.WaitDelay = 10 * time.Second
	err := cmd.Run()
	return out.Bytes(), err
}

// Stream runs a program from BinDir like Exec, with stdin read from in (nil:
// none) and stdout written to out as it comes; the error carries the last
// tail bytes of its standard error.
func (c *Cluster) Stream(ctx context.Context, in io.Reader, out io.Writer, tail int, name string, args ...string) error {
	p, err := binPath(c.BinDir, name)
	if err != nil {
		return err
	}
	cmd := exec.CommandContext(ctx, p, args...)
	cmd.Dir = "/"
	cmd.Env = c.User.env(c.BinDir,
		"PGHOST="+c.SocketDir,
		"PGPORT="+strconv.Itoa(c.Port),
		"PGUSER="+c.superuser(),
	)
	cmd.SysProcAttr = c.User.sysProcAttr(false)
	cmd.Stdin = in
	cmd.Stdout = out
	stderr := &TailBuffer{Max: tail}
	cmd.Stderr = stderr
	cmd.WaitDelay = 10 * time.Second
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("pgexec: %s: %w: %s", name, err, strings.TrimSpace(stderr.String()))
	}
	return nil
}

// TailBuffer keeps the last Max bytes written to it.
type TailBuffer struct {
	Max int
	buf []byte
}

// Write keeps the tail of p; it never fails.
func (t *TailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.Max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// String returns what is kept.
func (t *TailBuffer) String() string { return string(t.buf) }
