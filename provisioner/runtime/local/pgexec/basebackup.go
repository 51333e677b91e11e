package pgexec

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	goruntime "runtime"
	"strconv"
	"syscall"
	"time"
)

// baseBackup copies the standby's primary into DataDir with pg_basebackup
// (fast checkpoint, WAL streamed alongside through the caller's slot). Like
// initdb it runs in a fresh sibling folder, which receives the standby's
// settings and only then is renamed to DataDir: a DataDir with PG_VERSION
// is always a whole replica with its own port, even after pgdeck was
// killed during the copy. pg_basebackup is killed with pgdeck.
func (c *Cluster) baseBackup(ctx context.Context, bin string, opt InitOptions) error {
	s := opt.Standby
	tmp, err := c.freshDataDir(baseBackupPattern)
	if err != nil {
		return err
	}
	fail := func(err error) error {
		os.RemoveAll(tmp)
		os.Remove(s.PassFile)
		return err
	}
	// pg_basebackup reads the password from the standby's own passfile: it
	// never shows on a command line or in an environment.
	if err := c.writeFile(s.PassFile, []byte(s.passfileLine()), 0o600); err != nil {
		return fail(err)
	}
	env := c.User.env(c.BinDir, "PGPASSFILE="+s.PassFile, "PGAPPNAME=pgdeck_basebackup")
	args := []string{
		"-D", tmp,
		"-h", s.Host,
		"-p", strconv.Itoa(s.Port),
		"-U", s.User,
		"--no-password",
		"--checkpoint=fast",
		"--wal-method=stream",
		"--slot=" + s.Slot,
		"--progress",
		"--verbose",
	}
	start := time.Now()
	output, err := c.runProgress(ctx, env, ProgressFunc(s.Progress), bin, args...)
	if err != nil {
		return fail(fmt.Errorf("pgexec: pg_basebackup from %s:%d into %s: %w: %s", s.Host, s.Port, c.DataDir, err, output))
	}
	if err := c.writeSettings(tmp, opt); err != nil {
		return fail(fmt.Errorf("pgexec: write settings of %s: %w", c.DataDir, err))
	}
	if err := os.Rename(tmp, c.DataDir); err != nil {
		return fail(fmt.Errorf("pgexec: pg_basebackup into %s: %w", c.DataDir, err))
	}
	c.logger().Info("copied postgresql cluster with pg_basebackup", "data_dir", c.DataDir,
		"primary", s.Host+":"+strconv.Itoa(s.Port), "slot", s.Slot, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// runProgress runs a program as the run-as user with env, handing each
// output line (split at line feeds and carriage returns) to progress, and
// returns the last lines progress did not take, for messages. The program
// runs in its own process group, killed as a whole when ctx ends or it
// fails (pg_basebackup streams WAL from a child process), and dies with
// pgdeck.
func (c *Cluster) runProgress(ctx context.Context, env []string, progress func(string) bool, path string, args ...string) (string, error) {
	// The parent-death signal fires when the thread that started the child
	// exits: keep that thread until the child is done.
	goruntime.LockOSThread()
	defer goruntime.UnlockOSThread()
	cmd := exec.CommandContext(ctx, path, args...)
	cmd.Dir = "/"
	cmd.Env = env
	attr := c.User.sysProcAttr(false)
	attr.Setpgid = true
	attr.Pdeathsig = syscall.SIGKILL
	cmd.SysProcAttr = attr
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 10 * time.Second
	out := NewLineWriter(progress)
	cmd.Stdout = out
	cmd.Stderr = out
	err := cmd.Run()
	out.Flush()
	if err != nil && cmd.Process != nil {
		// A background WAL receiver may outlive its parent.
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
	}
	if err != nil && ctx.Err() != nil {
		err = fmt.Errorf("%w (%v)", ctx.Err(), err)
	}
	return out.Tail(), err
}
