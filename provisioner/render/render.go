// Package render turns an environment's desired state into configuration
// text: odoo.conf, pg_hba lines and postgresql.conf settings. Pure functions;
// applying them is the runtime's job.
package render

import (
	"fmt"
	"strconv"
	"strings"
)

// OdooConf is what odoo.conf says about the environment's database.
type OdooConf struct {
	DBHost        string
	DBPort        int
	DBUser        string
	DBPassword    string
	DBName        string
	DataDir       string
	AdminPassword string
	// MaxConn is Odoo's db_maxconn (see OdooMaxConn); Why says how it was
	// chosen, written as a comment above it.
	MaxConn MaxConn
	// ReplicaHost and ReplicaPort, when set, are the read replica Odoo
	// (18.0+) sends its read-only queries to (db_replica_host/port).
	ReplicaHost string
	ReplicaPort int
}

// MaxConn is a db_maxconn value and the reason for it.
type MaxConn struct {
	Value int
	Why   string
}

// OdooConfFile renders odoo.conf. Values are written verbatim on one line
// each; callers pass generated names and passwords (no newlines).
func OdooConfFile(c OdooConf) ([]byte, error) {
	for name, v := range map[string]string{"db_host": c.DBHost, "db_user": c.DBUser, "db_password": c.DBPassword,
		"db_name": c.DBName, "data_dir": c.DataDir, "admin_passwd": c.AdminPassword} {
		if v == "" || strings.ContainsAny(v, "\r\n") {
			return nil, fmt.Errorf("render: odoo.conf %s must be one non-empty line", name)
		}
	}
	if c.DBPort <= 0 || c.DBPort > 65535 {
		return nil, fmt.Errorf("render: odoo.conf db_port %d out of range", c.DBPort)
	}
	if c.MaxConn.Value < 1 || strings.ContainsAny(c.MaxConn.Why, "\r\n") {
		return nil, fmt.Errorf("render: odoo.conf db_maxconn %d must be positive, its reason one line", c.MaxConn.Value)
	}
	var b strings.Builder
	b.WriteString("; Written by pgdeck on every deploy; changes here are overwritten.\n")
	b.WriteString("[options]\n")
	kv := [][2]string{
		{"db_host", c.DBHost},
		{"db_port", strconv.Itoa(c.DBPort)},
		{"db_user", c.DBUser},
		{"db_password", c.DBPassword},
		{"db_name", c.DBName},
		{"dbfilter", "^" + regexpQuote(c.DBName) + "$"},
		{"list_db", "False"},
		{"data_dir", c.DataDir},
		{"admin_passwd", c.AdminPassword},
	}
	for _, p := range kv {
		fmt.Fprintf(&b, "%s = %s\n", p[0], p[1])
	}
	fmt.Fprintf(&b, "; %s\n", c.MaxConn.Why)
	fmt.Fprintf(&b, "db_maxconn = %d\n", c.MaxConn.Value)
	if c.ReplicaHost != "" {
		if strings.ContainsAny(c.ReplicaHost, "\r\n") || c.ReplicaPort <= 0 || c.ReplicaPort > 65535 {
			return nil, fmt.Errorf("render: odoo.conf db_replica_host %q / db_replica_port %d invalid", c.ReplicaHost, c.ReplicaPort)
		}
		b.WriteString("; Odoo 18+ sends read-only queries (routes marked readonly) to the streaming replica.\n")
		fmt.Fprintf(&b, "db_replica_host = %s\n", c.ReplicaHost)
		fmt.Fprintf(&b, "db_replica_port = %d\n", c.ReplicaPort)
	}
	return []byte(b.String()), nil
}

func regexpQuote(s string) string {
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune(`\.+*?()|[]{}^$`, r) {
			b.WriteRune('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// MonitorRole is the login role, member of pg_monitor, that pgdeck's health
// probes use in every cluster: it reads the statistics and replication
// views and nothing of Odoo's data.
const MonitorRole = "pgdeck_monitor"

// HBA returns the pg_hba.conf lines that let only the environment's role
// reach its database and the cluster's `postgres` database over TCP, and
// the monitoring role only `postgres`, with SCRAM; every other TCP attempt
// is rejected. Odoo needs `postgres`: at start it checks there that its
// database exists, and its bus keeps LISTEN imbus there. The cluster is the
// environment's own, so this opens nothing of another environment. (The
// superuser reaches the server only through the local socket.) network is
// where the environment's clients come from, as the runtime says.
func HBA(dbName, dbUser, network string) []string {
	return []string{
		fmt.Sprintf("host %s,postgres %s %s scram-sha-256", dbName, dbUser, network),
		fmt.Sprintf("host postgres %s %s scram-sha-256", MonitorRole, network),
		"host all all 0.0.0.0/0 reject",
		"host all all ::/0 reject",
	}
}

// RestoreHBA are the pg_hba.conf lines that let the environment's role into
// the database a restore loads into (staging), beside its own: over the
// instance's socket (only the server's OS user reaches it), where pgdeck's
// psql loads the dump as that role, and over TCP, where pgdeck checks the
// result. They go before HBA's reject lines.
func RestoreHBA(staging, dbUser, network string) []string {
	return []string{
		fmt.Sprintf("local %s %s trust", staging, dbUser),
		fmt.Sprintf("host %s %s %s scram-sha-256", staging, dbUser, network),
	}
}

// ReplicationHBA is the pg_hba.conf line that lets the replica's role stream
// from the primary (it goes before HBA's reject lines).
func ReplicationHBA(user, network string) string {
	return fmt.Sprintf("host replication %s %s scram-sha-256", user, network)
}

// Connections of the primary that Odoo may not count on.
const (
	// MaxConnections is the primary's max_connections (until tuning makes it
	// a setting).
	MaxConnections = 100
	// SuperuserReservedConnections is PostgreSQL's default
	// superuser_reserved_connections: slots only the superuser may take.
	SuperuserReservedConnections = 3
	// PgdeckConnections is what pgdeck keeps for itself over TCP or the
	// socket: the monitor's probe, a job's psql and its connect check, a
	// backup's pg_dump, with room for one more.
	PgdeckConnections = 5
)

// OdooMaxConn returns the db_maxconn that makes one Odoo process's pool fit
// what the database takes: max_connections minus the superuser's reserved
// slots and pgdeck's own, and never more than Odoo's own default of 64.
func OdooMaxConn(maxConnections, superuserReserved, pgdeck int) MaxConn {
	budget := maxConnections - superuserReserved - pgdeck
	v := min(budget, 64)
	if v < 1 {
		v = 1
	}
	why := fmt.Sprintf("db_maxconn: max_connections %d - %d reserved for the superuser - %d for pgdeck = %d connections for Odoo",
		maxConnections, superuserReserved, pgdeck, budget)
	if budget > 64 {
		why += "; capped at Odoo's default of 64 per process"
	}
	why += " (with --workers N, each process keeps its own pool: keep N x db_maxconn within that)"
	return MaxConn{Value: v, Why: why}
}

// PrimaryConf returns the postgresql.conf settings of an environment's primary.
func PrimaryConf() map[string]string {
	return map[string]string{
		"password_encryption": "scram-sha-256",
		"max_connections":     strconv.Itoa(MaxConnections),
		"shared_buffers":      "128MB",
		"log_line_prefix":     "%m [%p] %q%u@%d ",
	}
}
