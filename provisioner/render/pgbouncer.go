package render

import (
	"fmt"
	"net"
	"regexp"
	"strings"
	"time"
)

// PgBouncer pool modes pgdeck offers. Statement mode is left out: it breaks
// every multi-statement transaction, and Odoo's are all of that kind.
const (
	PoolModeSession     = "session"
	PoolModeTransaction = "transaction"
)

// PgBouncer defaults and bounds.
const (
	DefaultPoolSize      = 20
	DefaultPoolMode      = PoolModeTransaction
	DefaultMaxClientConn = 100 // PgBouncer's own default
	// MaxClientConnLimit bounds max_client_conn: each client is a file
	// descriptor, and PgBouncer needs about max_client_conn + server
	// connections of them.
	MaxClientConnLimit = 10000
	// PostgresPoolSize is the session-mode pool of the cluster's `postgres`
	// database: one LISTEN session for Odoo's bus (one gevent process) and
	// one per cron thread (2 by default), the short connections that send
	// NOTIFY after a commit, and Odoo's database checks at start.
	PostgresPoolSize = 10
	// ReservePoolSize is how many more server connections the environment's
	// pool may open for clients that waited ReservePoolTimeout.
	ReservePoolSize    = 5
	ReservePoolTimeout = 5 * time.Second
)

// PoolerSettings are an environment's PgBouncer settings as the operator sets
// them.
type PoolerSettings struct {
	Enabled       bool   `json:"enabled"`
	PoolSize      int    `json:"pool_size"`
	PoolMode      string `json:"pool_mode"`
	MaxClientConn int    `json:"max_client_conn"`
}

// DefaultPoolerSettings returns the settings of an environment whose operator
// has not touched them (PgBouncer off).
func DefaultPoolerSettings() PoolerSettings {
	return PoolerSettings{PoolSize: DefaultPoolSize, PoolMode: DefaultPoolMode, MaxClientConn: DefaultMaxClientConn}
}

// MaxPoolSize is the largest pool the environment's database may have: what
// max_connections leaves after the superuser's reserved slots, pgdeck's own
// connections, the `postgres` entry's pool and the reserve pool.
func MaxPoolSize(maxConnections int) int {
	return max(maxConnections-SuperuserReservedConnections-PgdeckConnections-PostgresPoolSize-ReservePoolSize, 0)
}

func maxPoolSizeWhy(maxConnections int) string {
	return fmt.Sprintf("max_connections %d leaves %d after %d for the superuser, %d for pgdeck, %d for the postgres entry and %d in reserve",
		maxConnections, MaxPoolSize(maxConnections), SuperuserReservedConnections, PgdeckConnections, PostgresPoolSize, ReservePoolSize)
}

// ValidatePoolerSettings checks PgBouncer settings against the server's
// max_connections and returns one message per bad field (pool_size,
// pool_mode, max_client_conn). Settings are checked whether or not
// PgBouncer is enabled, so that turning it on later cannot meet bad values.
func ValidatePoolerSettings(s PoolerSettings, maxConnections int) []FieldError {
	var errs []FieldError
	if s.PoolMode != PoolModeSession && s.PoolMode != PoolModeTransaction {
		errs = append(errs, FieldError{"pool_mode", "use session or transaction"})
	}
	if top := MaxPoolSize(maxConnections); s.PoolSize < 1 || s.PoolSize > top {
		errs = append(errs, FieldError{"pool_size", fmt.Sprintf("use 1 to %d (%s)", top, maxPoolSizeWhy(maxConnections))})
	}
	switch {
	case s.MaxClientConn < 1 || s.MaxClientConn > MaxClientConnLimit:
		errs = append(errs, FieldError{"max_client_conn", fmt.Sprintf("use 1 to %d", MaxClientConnLimit)})
	case s.PoolSize >= 1 && s.MaxClientConn < s.PoolSize:
		errs = append(errs, FieldError{"max_client_conn", fmt.Sprintf("use at least the pool size (%d): fewer clients than server connections leaves the pool unused", s.PoolSize)})
	}
	return errs
}

// PgBouncerConf is what pgbouncer.ini says for one environment.
type PgBouncerConf struct {
	ListenAddr string // an IP address, or * for all
	ListenPort int
	// ServerHost and ServerPort reach the environment's PostgreSQL (host: an
	// IP address, a host name or a socket directory).
	ServerHost string
	ServerPort int
	DBName     string // the environment's database
	Pool       PoolerSettings
	// MaxConnections is the server's max_connections, which bounds the pool.
	MaxConnections int
	// AdminUser is pgdeck's console user (admin_users and stats_users); its
	// SCRAM secret goes in the auth_file beside the environment's role.
	AdminUser string
	// Absolute paths. UnixSocketDir may be empty: no Unix socket.
	AuthFile, LogFile, PidFile, UnixSocketDir string
}

var (
	// Names pgdeck writes into pgbouncer.ini and userlist.txt: PostgreSQL
	// identifiers as pgdeck makes them, nothing to quote or escape.
	iniNameRe = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,62}$`)
	// Paths and hosts: nothing that could end a line, start a comment or
	// need quoting in pgbouncer.ini or a libpq connection string.
	iniPathRe = regexp.MustCompile(`^/[A-Za-z0-9_./@+-]*$`)
	hostRe    = regexp.MustCompile(`^[A-Za-z0-9_.:-]+$`)
	// scramRe is PostgreSQL's SCRAM verifier as pg_authid.rolpassword holds it.
	scramRe = regexp.MustCompile(`^SCRAM-SHA-256\$[1-9][0-9]*:[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}:[A-Za-z0-9+/]+={0,2}$`)
)

func checkName(what, v string) error {
	if !iniNameRe.MatchString(v) {
		return fmt.Errorf("render: pgbouncer %s %q must be 1 to 63 letters, digits, _ . or -", what, v)
	}
	return nil
}

// PgBouncerIni renders pgbouncer.ini: the environment's database in the
// operator's pool mode and size, and `postgres` always in session mode with
// its own small pool, since Odoo's bus and cron threads keep LISTEN there
// and transaction pooling cannot carry LISTEN. Clients log in with SCRAM
// against the auth_file's secrets, which PgBouncer then uses to log in to
// PostgreSQL (they must be pg_authid's own, so no user= is forced on an
// entry). Any other database name is refused: there is no `*` entry.
func PgBouncerIni(c PgBouncerConf) ([]byte, error) {
	if errs := ValidatePoolerSettings(c.Pool, c.MaxConnections); len(errs) > 0 {
		return nil, fmt.Errorf("render: pgbouncer %s", errs[0].Error())
	}
	if err := checkName("database", c.DBName); err != nil {
		return nil, err
	}
	if c.DBName == "postgres" || c.DBName == "pgbouncer" {
		return nil, fmt.Errorf("render: pgbouncer database %q is taken by pgdeck's own entries", c.DBName)
	}
	if err := checkName("admin user", c.AdminUser); err != nil {
		return nil, err
	}
	if c.ListenAddr != "*" && net.ParseIP(c.ListenAddr) == nil {
		return nil, fmt.Errorf("render: pgbouncer listen_addr %q must be an IP address or *", c.ListenAddr)
	}
	for what, p := range map[string]int{"listen_port": c.ListenPort, "server port": c.ServerPort} {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("render: pgbouncer %s %d out of range", what, p)
		}
	}
	if !hostRe.MatchString(c.ServerHost) && !iniPathRe.MatchString(c.ServerHost) {
		return nil, fmt.Errorf("render: pgbouncer server host %q must be a host name, an IP address or a socket directory", c.ServerHost)
	}
	for what, p := range map[string]string{"auth_file": c.AuthFile, "logfile": c.LogFile, "pidfile": c.PidFile, "unix_socket_dir": c.UnixSocketDir} {
		if p == "" && what == "unix_socket_dir" {
			continue
		}
		if !iniPathRe.MatchString(p) || strings.Contains(p, "/../") || strings.HasSuffix(p, "/..") {
			return nil, fmt.Errorf("render: pgbouncer %s %q must be an absolute path of letters, digits and _ . / @ + -", what, p)
		}
	}

	server := fmt.Sprintf("host=%s port=%d", c.ServerHost, c.ServerPort)
	var b strings.Builder
	b.WriteString("; Written by pgdeck on every deploy; changes here are overwritten.\n")
	b.WriteString("[databases]\n")
	fmt.Fprintf(&b, "; The environment's database: %s pooling, %d server connections (+%d in reserve).\n",
		c.Pool.PoolMode, c.Pool.PoolSize, ReservePoolSize)
	fmt.Fprintf(&b, "%s = %s dbname=%s pool_mode=%s pool_size=%d max_db_connections=%d\n",
		c.DBName, server, c.DBName, c.Pool.PoolMode, c.Pool.PoolSize, c.Pool.PoolSize+ReservePoolSize)
	b.WriteString("; Odoo's bus and cron threads keep LISTEN on postgres: session mode whatever the mode above.\n")
	fmt.Fprintf(&b, "postgres = %s dbname=postgres pool_mode=%s pool_size=%d max_db_connections=%d\n",
		server, PoolModeSession, PostgresPoolSize, PostgresPoolSize)
	b.WriteString("\n[pgbouncer]\n")
	kv := [][2]string{
		{"listen_addr", c.ListenAddr},
		{"listen_port", fmt.Sprint(c.ListenPort)},
		{"unix_socket_dir", c.UnixSocketDir},
		{"auth_type", "scram-sha-256"},
		{"auth_file", c.AuthFile},
		{"admin_users", c.AdminUser},
		{"stats_users", c.AdminUser},
		// Every entry sets its own; session is the safe mode for anything else.
		{"pool_mode", PoolModeSession},
		{"default_pool_size", fmt.Sprint(c.Pool.PoolSize)},
		{"max_client_conn", fmt.Sprint(c.Pool.MaxClientConn)},
		{"reserve_pool_size", fmt.Sprint(ReservePoolSize)},
		{"reserve_pool_timeout", fmt.Sprint(int(ReservePoolTimeout / time.Second))},
		// JDBC and lib/pq send extra_float_digits at startup and PgBouncer
		// 1.18 refuses startup parameters it does not track. psycopg2 (Odoo)
		// and pgx send only what their connection strings hold, and the
		// tracked ones (client_encoding, DateStyle, TimeZone,
		// standard_conforming_strings, application_name) pass.
		{"ignore_startup_parameters", "extra_float_digits"},
		{"logfile", c.LogFile},
		{"pidfile", c.PidFile},
	}
	for _, p := range kv {
		fmt.Fprintf(&b, "%s = %s\n", p[0], p[1])
	}
	return []byte(b.String()), nil
}

// AuthUser is one line of PgBouncer's auth_file: a role and its SCRAM
// verifier exactly as pg_authid.rolpassword holds it.
type AuthUser struct {
	Name   string
	Secret string
}

// PgBouncerUserlist renders the auth_file (userlist.txt). Only SCRAM-SHA-256
// verifiers are taken, never a plain password or an md5 hash; the file is
// to be written 0600.
func PgBouncerUserlist(users []AuthUser) ([]byte, error) {
	if len(users) == 0 {
		return nil, fmt.Errorf("render: pgbouncer auth_file needs at least one user")
	}
	seen := map[string]bool{}
	var b strings.Builder
	for _, u := range users {
		if err := checkName("user", u.Name); err != nil {
			return nil, err
		}
		if seen[u.Name] {
			return nil, fmt.Errorf("render: pgbouncer user %q listed twice", u.Name)
		}
		seen[u.Name] = true
		if !scramRe.MatchString(u.Secret) {
			return nil, fmt.Errorf("render: pgbouncer secret of %q is not a SCRAM-SHA-256 verifier (copy pg_authid.rolpassword; never a plain password)", u.Name)
		}
		// Names and verifiers hold no double quote, so nothing needs doubling.
		fmt.Fprintf(&b, "\"%s\" \"%s\"\n", u.Name, u.Secret)
	}
	return []byte(b.String()), nil
}

// OdooMaxConnForPool returns db_maxconn for an Odoo that reaches its database
// through PgBouncer. In transaction mode Odoo's pooled connections are
// PgBouncer clients sharing the pool's server connections, so the budget is
// max_client_conn less the postgres entry's clients and pgdeck's; in session
// mode each client holds a server connection, so the pool size bounds it too.
// Never more than Odoo's own default of 64, as OdooMaxConn.
func OdooMaxConnForPool(poolMode string, poolSize, maxClientConn, postgresPool, pgdeck int) MaxConn {
	budget := maxClientConn - postgresPool - pgdeck
	why := fmt.Sprintf("db_maxconn: PgBouncer max_client_conn %d - %d for the postgres entry - %d for pgdeck = %d client connections for Odoo",
		maxClientConn, postgresPool, pgdeck, budget)
	v := budget
	if poolMode == PoolModeSession {
		if poolSize < v {
			v = poolSize
			why += fmt.Sprintf("; session pooling gives each its own server connection, so at most the pool size %d", poolSize)
		}
	} else {
		why += fmt.Sprintf("; transaction pooling shares the pool's %d server connections among them", poolSize)
	}
	if v > 64 {
		v = 64
		why += "; capped at Odoo's default of 64 per process"
	}
	v = max(v, 1)
	why += " (with --workers N, each process keeps its own pool: keep N x db_maxconn within that)"
	return MaxConn{Value: v, Why: why}
}

// PoolerSizingInput is what the sizing hint compares: the pool's settings,
// Odoo's db_maxconn and process count (HTTP workers + cron workers + the
// gevent process; 0 if unknown, counted as 1), the server's max_connections
// and the live figures from SHOW POOLS.
type PoolerSizingInput struct {
	PoolSize       int
	PoolMode       string
	MaxClientConn  int
	DBMaxConn      int
	OdooProcesses  int
	MaxConnections int
	ClientsWaiting int
	MaxWait        time.Duration
}

// PoolerSizing says in words what to change: a pool larger than
// max_connections allows, an Odoo that may open more clients than
// max_client_conn admits, and, when clients wait, whether to raise the pool
// size or max_connections. It returns at least one sentence.
func PoolerSizing(in PoolerSizingInput) []string {
	var out []string
	top := MaxPoolSize(in.MaxConnections)
	if in.PoolSize > top {
		out = append(out, fmt.Sprintf("Pool size %d is more than PostgreSQL can give: %s. Lower the pool size to %d or raise max_connections (a restart).",
			in.PoolSize, maxPoolSizeWhy(in.MaxConnections), top))
	}
	procs := max(in.OdooProcesses, 1)
	if odoo := procs * in.DBMaxConn; odoo > in.MaxClientConn-PostgresPoolSize-PgdeckConnections {
		processes := "processes"
		if procs == 1 {
			processes = "process"
		}
		out = append(out, fmt.Sprintf("Odoo may open %d connections (%d %s x db_maxconn %d) but max_client_conn %d leaves %d after the postgres entry and pgdeck: PgBouncer refuses the rest. Raise max_client_conn to %d or lower db_maxconn.",
			odoo, procs, processes, in.DBMaxConn, in.MaxClientConn, in.MaxClientConn-PostgresPoolSize-PgdeckConnections, odoo+PostgresPoolSize+PgdeckConnections))
	}
	if in.ClientsWaiting > 0 {
		wait := fmt.Sprintf("%d clients wait for a server connection", in.ClientsWaiting)
		if in.ClientsWaiting == 1 {
			wait = "1 client waits for a server connection"
		}
		if in.MaxWait > 0 {
			wait += fmt.Sprintf(" (the longest for %s)", in.MaxWait.Round(time.Millisecond))
		}
		switch {
		case in.PoolSize < top:
			out = append(out, fmt.Sprintf("%s: raise the pool size from %d to about %d (at most %d: %s).",
				wait, in.PoolSize, min(in.PoolSize+in.ClientsWaiting, top), top, maxPoolSizeWhy(in.MaxConnections)))
		default:
			out = append(out, fmt.Sprintf("%s and the pool already takes all that max_connections %d leaves: raise max_connections (a restart; check the plan's memory) or look for slow transactions holding server connections.",
				wait, in.MaxConnections))
		}
		if in.PoolMode == PoolModeSession {
			out = append(out, "In session mode a client keeps its server connection until it disconnects, idle or not: transaction mode lets Odoo's idle pooled connections share the pool.")
		}
	}
	if len(out) == 0 {
		out = append(out, fmt.Sprintf("No client waits: pool size %d is enough for now.", in.PoolSize))
	}
	return out
}
