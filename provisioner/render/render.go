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

// HBA returns the pg_hba.conf lines that let only the environment's role
// reach its database over TCP, with SCRAM; every other TCP attempt is rejected.
// (The superuser reaches the server only through the local socket.)
func HBA(dbName, dbUser string) []string {
	return []string{
		fmt.Sprintf("host %s %s 127.0.0.1/32 scram-sha-256", dbName, dbUser),
		"host all all 0.0.0.0/0 reject",
		"host all all ::/0 reject",
	}
}

// PrimaryConf returns the postgresql.conf settings of an environment's primary.
func PrimaryConf() map[string]string {
	return map[string]string{
		"password_encryption": "scram-sha-256",
		"max_connections":     "100",
		"shared_buffers":      "128MB",
		"log_line_prefix":     "%m [%p] %q%u@%d ",
	}
}
