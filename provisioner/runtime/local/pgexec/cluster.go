package pgexec

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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
	// Standby, when set, makes the cluster a streaming replica: Init copies
	// it from the primary with pg_basebackup instead of running initdb, and
	// writes the standby's settings every time.
	Standby *StandbyOptions
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
