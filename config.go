package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/netip"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"pgdeck/provisioner/render"
)

// Config is pgdeck's whole configuration, read from flags and PGDECK_*
// environment variables (a flag wins over the variable).
type Config struct {
	Addr        string
	DataDir     string
	DatabaseURL string
	Runtime     string
	// Docker is the docker runtime's engine and images (PGDECK_RUNTIME
	// docker).
	Docker          DockerConfig
	MonitorInterval time.Duration
	MonitorTimeout  time.Duration
	MonitorConfirm  int
	// The replica lag thresholds: over Warn a replica is Lagging with
	// severity warning, over Crit critical.
	ReplicaWarnBytes int64
	ReplicaWarnLag   time.Duration
	ReplicaCritBytes int64
	ReplicaCritLag   time.Duration
	SecretKeyFile    string
	LogFormat        string
	LogLevel         string
	PGBinDir         string
	PortRange        string
	// Capacity is what this server holds for environments' instances
	// (PGDECK_CAPACITY); a zero field is not counted.
	Capacity render.Resources
	Workers  int
	// ShutdownGrace is how long a stopping pgdeck waits for running jobs
	// before cancelling them (they resume at the next start).
	ShutdownGrace time.Duration
	TLSCertFile   string
	TLSKeyFile    string
	// OdooUser is the OS user Odoo runs as (reads odoo.conf, owns the
	// filestore); empty leaves both to pgdeck's own user.
	OdooUser string
	// PublicURL is the address people open pgdeck at (scheme and host);
	// https marks session cookies Secure and turns on HSTS.
	PublicURL *url.URL
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	MetricsAddr    string
	ReadTimeout    time.Duration
	WriteTimeout   time.Duration
	IdleTimeout    time.Duration
	// BackupDir holds the backups; empty: <data-dir>/backups.
	BackupDir string
	// BackupUploadLimit bounds an uploaded archive.
	BackupUploadLimit int64
	// BackupWarnAge is the newest good backup's age over which the
	// Overview and the list warn.
	BackupWarnAge time.Duration
}

// DockerConfig is where the docker runtime runs environments' containers.
type DockerConfig struct {
	Host           string
	Image          string
	PoolerImage    string
	PublishAddress string
}

// configVar describes one setting: its flag name, variable, default and help.
type configVar struct {
	flag, env, def, help string
}

var configVars = []configVar{
	{"addr", "PGDECK_ADDR", "127.0.0.1:8080", "address the web server listens on"},
	{"data-dir", "PGDECK_DATA_DIR", "./data", "folder for the control-plane cluster, environments and the secret key"},
	{"database-url", "PGDECK_DATABASE_URL", "", "control-plane PostgreSQL URL; empty runs the embedded cluster under <data-dir>/control"},
	{"runtime", "PGDECK_RUNTIME", "local", "where environment databases run: local (processes on this host) or docker (containers)"},
	{"docker-host", "PGDECK_DOCKER_HOST", "unix:///var/run/docker.sock", "Docker Engine of the docker runtime (unix:// or tcp://)"},
	{"docker-image", "PGDECK_DOCKER_IMAGE", "", "image the docker runtime runs PostgreSQL from (initdb, postgres, pg_basebackup, psql and a postgres user); required with PGDECK_RUNTIME=docker"},
	{"docker-pooler-image", "PGDECK_DOCKER_POOLER_IMAGE", "", "image the docker runtime runs PgBouncer from; empty: PGDECK_DOCKER_IMAGE"},
	{"docker-publish-address", "PGDECK_DOCKER_PUBLISH_ADDRESS", "127.0.0.1", "host address the docker runtime publishes instances' ports on (pgdeck and Odoo reach them there)"},
	{"monitor-interval", "PGDECK_MONITOR_INTERVAL", "5s", "time between health checks"},
	{"monitor-timeout", "PGDECK_MONITOR_TIMEOUT", "3s", "time one health check may take"},
	{"monitor-confirm", "PGDECK_MONITOR_CONFIRM", "2", "consecutive agreeing checks before a health status changes"},
	{"replica-warn-bytes", "PGDECK_REPLICA_WARN_BYTES", "50MB", "replica lag (WAL not replayed) over which it is Lagging, severity warning: bytes, or with kB, MB, GB (decimal: 1MB = 1000000 bytes)"},
	{"replica-warn-seconds", "PGDECK_REPLICA_WARN_SECONDS", "15", "replica lag in seconds over which it is Lagging, severity warning"},
	{"replica-crit-bytes", "PGDECK_REPLICA_CRIT_BYTES", "100MB", "replica lag over which it is Lagging, severity critical: bytes, or with kB, MB, GB"},
	{"replica-crit-seconds", "PGDECK_REPLICA_CRIT_SECONDS", "30", "replica lag in seconds over which it is Lagging, severity critical"},
	{"secret-key-file", "PGDECK_SECRET_KEY_FILE", "", "AES key file for database passwords; empty: <data-dir>/secret.key (created 0600)"},
	{"log-format", "PGDECK_LOG_FORMAT", "text", "log format: text or json"},
	{"log-level", "PGDECK_LOG_LEVEL", "info", "log level: debug, info, warn or error"},
	{"pg-bin-dir", "PGDECK_PG_BIN_DIR", "", "PostgreSQL server binaries; empty: newest /usr/lib/postgresql/*/bin"},
	{"port-range", "PGDECK_PORT_RANGE", "25432-25999", "127.0.0.1 ports handed to environment databases"},
	{"capacity", "PGDECK_CAPACITY", "", "what this server holds for environments, e.g. memory=64GB,cpus=16,storage=1TB; a read replica must fit in what deployed environments leave (empty or a missing field: not counted)"},
	{"workers", "PGDECK_WORKERS", "4", "job workers running in this process"},
	{"shutdown-grace", "PGDECK_SHUTDOWN_GRACE", "30s", "on SIGTERM/SIGINT, time running jobs get to end before they are cancelled (they resume at the next start); a second signal exits at once"},
	{"tls-cert-file", "PGDECK_TLS_CERT_FILE", "", "serve HTTPS with this certificate (and key); session cookies become Secure"},
	{"tls-key-file", "PGDECK_TLS_KEY_FILE", "", "private key for PGDECK_TLS_CERT_FILE"},
	{"odoo-user", "PGDECK_ODOO_USER", "", "OS user Odoo runs as: odoo.conf is readable by its group (0640) and the filestore is its own; empty: both stay pgdeck's (odoo.conf 0600)"},
	{"public-url", "PGDECK_PUBLIC_URL", "", "URL people open pgdeck at, e.g. https://pgdeck.example.com; https makes cookies Secure and turns on HSTS"},
	{"trusted-proxies", "PGDECK_TRUSTED_PROXIES", "", "comma-separated CIDRs of reverse proxies whose X-Forwarded-For is believed; empty believes none"},
	{"metrics-addr", "PGDECK_METRICS_ADDR", "", "serve /metrics without a token on this address only; empty: /metrics on the main address with a bearer token"},
	{"read-timeout", "PGDECK_READ_TIMEOUT", "30s", "time a client may take to send a whole request, body included"},
	{"write-timeout", "PGDECK_WRITE_TIMEOUT", "60s", "time an answer may take to be written"},
	{"idle-timeout", "PGDECK_IDLE_TIMEOUT", "120s", "time an idle keep-alive connection stays open"},
	{"backup-dir", "PGDECK_BACKUP_DIR", "", "folder for backups (a folder per environment, and import/ for archives to import); empty: <data-dir>/backups"},
	{"backup-upload-limit", "PGDECK_BACKUP_UPLOAD_LIMIT", "20GB", "largest backup archive an upload may bring: bytes, or with kB, MB, GB"},
	{"backup-warn-age", "PGDECK_BACKUP_WARN_AGE", "24h", "age of an environment's newest good backup over which the Overview and the list warn"},
}

// loadConfig reads the flags in args over the PGDECK_* variables and
// validates them. fs may already hold a command's own flags.
func loadConfig(fs *flag.FlagSet, args []string, getenv func(string) string) (Config, error) {
	vals := make(map[string]*string, len(configVars))
	for _, v := range configVars {
		def := v.def
		if e := getenv(v.env); e != "" {
			def = e
		}
		vals[v.flag] = fs.String(v.flag, def, v.help+" ("+v.env+")")
	}
	if err := fs.Parse(args); err != nil {
		return Config{}, err
	}
	get := func(name string) string { return strings.TrimSpace(*vals[name]) }
	c := Config{
		Addr:        get("addr"),
		DataDir:     get("data-dir"),
		DatabaseURL: get("database-url"),
		Runtime:     get("runtime"),
		Docker: DockerConfig{
			Host:           get("docker-host"),
			Image:          get("docker-image"),
			PoolerImage:    get("docker-pooler-image"),
			PublishAddress: get("docker-publish-address"),
		},
		SecretKeyFile: get("secret-key-file"),
		LogFormat:     get("log-format"),
		LogLevel:      get("log-level"),
		PGBinDir:      get("pg-bin-dir"),
		PortRange:     get("port-range"),
		TLSCertFile:   get("tls-cert-file"),
		TLSKeyFile:    get("tls-key-file"),
		OdooUser:      get("odoo-user"),
	}
	var errs []error
	var err error
	if c.MonitorInterval, err = time.ParseDuration(get("monitor-interval")); err != nil || c.MonitorInterval < 100*time.Millisecond {
		errs = append(errs, fmt.Errorf("PGDECK_MONITOR_INTERVAL: want a duration of at least 100ms, got %q", get("monitor-interval")))
	}
	if c.MonitorTimeout, err = time.ParseDuration(get("monitor-timeout")); err != nil || c.MonitorTimeout <= 0 {
		errs = append(errs, fmt.Errorf("PGDECK_MONITOR_TIMEOUT: want a positive duration, got %q", get("monitor-timeout")))
	}
	if c.MonitorConfirm, err = strconv.Atoi(get("monitor-confirm")); err != nil || c.MonitorConfirm < 1 || c.MonitorConfirm > 10 {
		errs = append(errs, fmt.Errorf("PGDECK_MONITOR_CONFIRM: want 1 to 10, got %q", get("monitor-confirm")))
	}
	errs = append(errs, c.loadReplicaThresholds(get)...)
	errs = append(errs, c.loadBackupSettings(get)...)
	if c.Workers, err = strconv.Atoi(get("workers")); err != nil || c.Workers < 1 || c.Workers > 64 {
		errs = append(errs, fmt.Errorf("PGDECK_WORKERS: want 1 to 64, got %q", get("workers")))
	}
	if c.ShutdownGrace, err = time.ParseDuration(get("shutdown-grace")); err != nil || c.ShutdownGrace <= 0 {
		errs = append(errs, fmt.Errorf("PGDECK_SHUTDOWN_GRACE: want a positive duration, got %q", get("shutdown-grace")))
	}
	if c.Addr == "" {
		errs = append(errs, errors.New("PGDECK_ADDR: must not be empty"))
	}
	if c.DataDir == "" {
		errs = append(errs, errors.New("PGDECK_DATA_DIR: must not be empty"))
	}
	switch c.Runtime {
	case "local":
	case "docker":
		if c.Docker.Image == "" {
			errs = append(errs, errors.New("PGDECK_DOCKER_IMAGE: PGDECK_RUNTIME=docker needs the image to run PostgreSQL from"))
		}
		if !strings.HasPrefix(c.Docker.Host, "unix://") && !strings.HasPrefix(c.Docker.Host, "tcp://") {
			errs = append(errs, fmt.Errorf("PGDECK_DOCKER_HOST: want unix:///path or tcp://host:port, got %q", c.Docker.Host))
		}
		if _, err := netip.ParseAddr(c.Docker.PublishAddress); err != nil {
			errs = append(errs, fmt.Errorf("PGDECK_DOCKER_PUBLISH_ADDRESS: want an IP address, got %q", c.Docker.PublishAddress))
		}
	default:
		errs = append(errs, fmt.Errorf("PGDECK_RUNTIME: want local or docker, got %q", c.Runtime))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, fmt.Errorf("PGDECK_LOG_FORMAT: want text or json, got %q", c.LogFormat))
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		errs = append(errs, err)
	}
	if c.Capacity, err = parseCapacity(get("capacity")); err != nil {
		errs = append(errs, err)
	}
	if _, _, err := parsePortRange(c.PortRange); err != nil {
		errs = append(errs, err)
	}
	for _, d := range []struct {
		name string
		dst  *time.Duration
	}{{"read-timeout", &c.ReadTimeout}, {"write-timeout", &c.WriteTimeout}, {"idle-timeout", &c.IdleTimeout}} {
		if *d.dst, err = time.ParseDuration(get(d.name)); err != nil || *d.dst < time.Second {
			errs = append(errs, fmt.Errorf("PGDECK_%s: want a duration of at least 1s, got %q",
				strings.ToUpper(strings.ReplaceAll(d.name, "-", "_")), get(d.name)))
		}
	}
	if v := get("public-url"); v != "" {
		u, err := url.Parse(v)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
			errs = append(errs, fmt.Errorf("PGDECK_PUBLIC_URL: want http(s)://host[:port], got %q", v))
		} else {
			c.PublicURL = u
		}
	}
	for _, p := range strings.Split(get("trusted-proxies"), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			a, aerr := netip.ParseAddr(p)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("PGDECK_TRUSTED_PROXIES: want CIDRs like 10.0.0.0/8, got %q in %q", p, get("trusted-proxies")))
				continue
			}
			pfx = netip.PrefixFrom(a, a.BitLen())
		}
		c.TrustedProxies = append(c.TrustedProxies, pfx.Masked())
	}
	c.MetricsAddr = get("metrics-addr")
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, errors.New("PGDECK_TLS_CERT_FILE and PGDECK_TLS_KEY_FILE go together"))
	}
	return c, errors.Join(errs...)
}

// loadBackupSettings reads where backups go, how large an upload may be and
// when the newest backup is old.
func (c *Config) loadBackupSettings(get func(string) string) []error {
	var errs []error
	var ok bool
	c.BackupDir = get("backup-dir")
	if c.BackupUploadLimit, ok = parseBytes(get("backup-upload-limit")); !ok {
		errs = append(errs, fmt.Errorf("PGDECK_BACKUP_UPLOAD_LIMIT: want a positive size such as 20GB, got %q", get("backup-upload-limit")))
	}
	var ageErr error
	if c.BackupWarnAge, ageErr = time.ParseDuration(get("backup-warn-age")); ageErr != nil || c.BackupWarnAge <= 0 {
		errs = append(errs, fmt.Errorf("PGDECK_BACKUP_WARN_AGE: want a positive duration such as 24h, got %q", get("backup-warn-age")))
	}
	return errs
}

// loadReplicaThresholds reads the replica lag thresholds: each positive,
// and a critical one not below its warning one.
func (c *Config) loadReplicaThresholds(get func(string) string) []error {
	var errs []error
	var ok bool
	if c.ReplicaWarnBytes, ok = parseBytes(get("replica-warn-bytes")); !ok {
		errs = append(errs, fmt.Errorf("PGDECK_REPLICA_WARN_BYTES: want a positive size such as 52428800 or 50MB, got %q", get("replica-warn-bytes")))
	}
	if c.ReplicaCritBytes, ok = parseBytes(get("replica-crit-bytes")); !ok {
		errs = append(errs, fmt.Errorf("PGDECK_REPLICA_CRIT_BYTES: want a positive size such as 104857600 or 100MB, got %q", get("replica-crit-bytes")))
	}
	if c.ReplicaWarnLag, ok = parseSeconds(get("replica-warn-seconds")); !ok {
		errs = append(errs, fmt.Errorf("PGDECK_REPLICA_WARN_SECONDS: want a positive number of seconds such as 15, got %q", get("replica-warn-seconds")))
	}
	if c.ReplicaCritLag, ok = parseSeconds(get("replica-crit-seconds")); !ok {
		errs = append(errs, fmt.Errorf("PGDECK_REPLICA_CRIT_SECONDS: want a positive number of seconds such as 30, got %q", get("replica-crit-seconds")))
	}
	if len(errs) > 0 {
		return errs
	}
	if c.ReplicaCritBytes < c.ReplicaWarnBytes {
		errs = append(errs, fmt.Errorf("PGDECK_REPLICA_CRIT_BYTES (%q) is below PGDECK_REPLICA_WARN_BYTES (%q)", get("replica-crit-bytes"), get("replica-warn-bytes")))
	}
	if c.ReplicaCritLag < c.ReplicaWarnLag {
		errs = append(errs, fmt.Errorf("PGDECK_REPLICA_CRIT_SECONDS (%q) is below PGDECK_REPLICA_WARN_SECONDS (%q)", get("replica-crit-seconds"), get("replica-warn-seconds")))
	}
	return errs
}

// parseBytes reads a positive size: a number of bytes, or one with the
// unit kB, MB, GB or TB (1024-based, as PostgreSQL reads them), with or
// without a space.
func parseBytes(s string) (int64, bool) {
	num := strings.TrimSpace(s)
	mult := int64(1)
	// Decimal units, as the page shows sizes: 50MB is 50,000,000 bytes.
	for i, u := range []string{"kB", "MB", "GB", "TB"} {
		if rest, ok := strings.CutSuffix(num, u); ok {
			num, mult = strings.TrimSpace(rest), int64(math.Pow10(3*(i+1)))
			break
		}
	}
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, false
	}
	return n * mult, true
}

// parseSeconds reads a positive number of seconds (15, 0.5).
func parseSeconds(s string) (time.Duration, bool) {
	f, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
	if err != nil || f <= 0 || f > 1e9 {
		return 0, false
	}
	return time.Duration(f * float64(time.Second)), true
}

func parseLevel(s string) (slog.Level, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return 0, fmt.Errorf("PGDECK_LOG_LEVEL: want debug, info, warn or error, got %q", s)
	}
	return l, nil
}

// parseCapacity reads PGDECK_CAPACITY: comma-separated memory=, cpus= and
// storage= (sizes with GB or TB, 1024-based as plans are).
func parseCapacity(s string) (render.Resources, error) {
	var r render.Resources
	if strings.TrimSpace(s) == "" {
		return r, nil
	}
	bad := fmt.Errorf("PGDECK_CAPACITY: want e.g. memory=64GB,cpus=16,storage=1TB, got %q", s)
	for _, part := range strings.Split(s, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return r, bad
		}
		switch k {
		case "cpus":
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return r, bad
			}
			r.CPUs = n
		case "memory", "storage":
			var unit int64
			switch {
			case strings.HasSuffix(v, "TB"):
				unit, v = render.GiB<<10, strings.TrimSuffix(v, "TB")
			case strings.HasSuffix(v, "GB"):
				unit, v = render.GiB, strings.TrimSuffix(v, "GB")
			default:
				return r, bad
			}
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n <= 0 || n > 1<<20 {
				return r, bad
			}
			if k == "memory" {
				r.Memory = n * unit
			} else {
				r.Storage = n * unit
			}
		default:
			return r, bad
		}
	}
	return r, nil
}

func parsePortRange(s string) (lo, hi int, err error) {
	a, b, ok := strings.Cut(s, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || lo > hi {
		return 0, 0, fmt.Errorf("PGDECK_PORT_RANGE: want LOW-HIGH within 1024-65535, got %q", s)
	}
	return lo, hi, nil
}

func newLogger(c Config, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.LogLevel)
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// secretKeyPath is PGDECK_SECRET_KEY_FILE or <data-dir>/secret.key.
func (c Config) secretKeyPath() string {
	if c.SecretKeyFile != "" {
		return c.SecretKeyFile
	}
	return filepath.Join(c.DataDir, "secret.key")
}

// envRoot is the folder holding one folder per environment.
// backupDir is where backups are kept, as an absolute path.
func (c Config) backupDir() string {
	dir := c.BackupDir
	if dir == "" {
		dir = filepath.Join(c.DataDir, "backups")
	}
	if abs, err := filepath.Abs(dir); err == nil {
		return abs
	}
	return dir
}

func (c Config) envRoot() string {
	abs, err := filepath.Abs(filepath.Join(c.DataDir, "envs"))
	if err != nil {
		return filepath.Join(c.DataDir, "envs")
	}
	return abs
}
