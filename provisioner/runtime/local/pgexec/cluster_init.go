package pgexec

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Init creates the cluster unless it exists (a half-made data directory
// without PG_VERSION is removed first): with initdb, or for a standby
// (opt.Standby) with pg_basebackup from its primary. Then (every time) it
// writes its settings: listen_addresses, port, unix_socket_directories,
// unix_socket_permissions, opt.Conf and a standby's primary_conninfo,
// primary_slot_name and hot_standby into pgdeck.conf, included from
// postgresql.conf, and pg_hba.conf; a standby also gets standby.signal and
// its passfile. A running server needs Reload (or a restart, for port and
// addresses) to apply them.
func (c *Cluster) Init(ctx context.Context, opt InitOptions) error {
	if err := c.validate(); err != nil {
		return err
	}
	tool := "initdb"
	if opt.Standby != nil {
		tool = "pg_basebackup"
		if err := opt.Standby.validate(); err != nil {
			return fmt.Errorf("pgexec: init %s: %w", c.DataDir, err)
		}
	}
	bin, err := binPath(c.BinDir, tool)
	if err != nil {
		return err
	}
	// Refuse bad settings before creating anything.
	if _, err := c.renderConf(opt.Conf, opt.Standby); err != nil {
		return fmt.Errorf("pgexec: init %s: %w", c.DataDir, err)
	}
	if _, err := c.renderHBA(opt.HBA); err != nil {
		return fmt.Errorf("pgexec: init %s: %w", c.DataDir, err)
	}
	if err := c.prepareDirs(); err != nil {
		return err
	}
	if !c.Initialized() {
		if opt.Standby != nil {
			err = c.baseBackup(ctx, bin, opt)
		} else {
			err = c.initdb(ctx, bin, opt)
		}
		if err != nil {
			return err
		}
	}
	if err := c.writeSettings(c.DataDir, opt); err != nil {
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
		tmp, err := c.freshDataDir(initdbPattern)
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

// initdbPattern and baseBackupPattern name the folders initdb and
// pg_basebackup run in before they become DataDir.
const (
	initdbPattern     = ".initdb-*"
	baseBackupPattern = ".basebackup-*"
)

// freshDataDir removes a half-made data directory and what earlier initdb
// and pg_basebackup runs left (stopping server processes still working
// there), then creates an empty folder beside DataDir named after pattern,
// owned by the run-as user (initdb cannot create it in a root-owned
// parent), and returns its path.
func (c *Cluster) freshDataDir(pattern string) (string, error) {
	if _, err := os.Lstat(c.DataDir); err == nil {
		c.logger().Warn("removing half-made postgresql data directory (no PG_VERSION)", "data_dir", c.DataDir)
		if err := os.RemoveAll(c.DataDir); err != nil {
			return "", fmt.Errorf("pgexec: remove half-made data directory: %w", err)
		}
	}
	for _, p := range []string{initdbPattern, baseBackupPattern} {
		leftovers, _ := filepath.Glob(c.DataDir + p)
		for _, d := range leftovers {
			c.logger().Warn("removing what an interrupted initdb or pg_basebackup left", "dir", d)
			if pids := serverProcesses(d); len(pids) > 0 {
				killAll(context.Background(), pids, d)
			}
			if err := os.RemoveAll(d); err != nil {
				return "", fmt.Errorf("pgexec: remove what an interrupted initdb or pg_basebackup left: %w", err)
			}
		}
	}
	tmp, err := os.MkdirTemp(filepath.Dir(c.DataDir), filepath.Base(c.DataDir)+pattern)
	if err != nil {
		return "", fmt.Errorf("pgexec: create data directory: %w", err)
	}
	if err := c.User.chownOne(tmp); err != nil {
		os.RemoveAll(tmp)
		return "", err
	}
	return tmp, nil
}
