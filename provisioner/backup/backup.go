// Package backup reads and writes pgdeck's database archives: a zip that
// Odoo's database manager can restore too (dump.sql or dump.dump first,
// then filestore/<xx>/<sha1>, then pgdeck's config/ files, then
// manifest.json with Odoo's keys and pgdeck's checksums), and checks
// archives that come from elsewhere before anything of them is restored.
package backup

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Format is how the database is dumped inside the archive.
type Format string

// The archive formats.
const (
	// FormatZip holds dump.sql, plain pg_dump output (Odoo's "zip").
	FormatZip Format = "zip"
	// FormatDump holds dump.dump, pg_dump's custom format.
	FormatDump Format = "dump"
)

// The names of the archive's entries.
const (
	ManifestName    = "manifest.json"
	PlainDumpName   = "dump.sql"
	CustomDumpName  = "dump.dump"
	FilestorePrefix = "filestore/"
	ConfigPrefix    = "config/"
)

// DumpName returns the dump entry's name for the format.
func (f Format) DumpName() string {
	if f == FormatDump {
		return CustomDumpName
	}
	return PlainDumpName
}

// Manifest is manifest.json: every key Odoo writes, plus pgdeck's own under
// "pgdeck".
type Manifest struct {
	OdooDump     string            `json:"odoo_dump"` // "1"
	DBName       string            `json:"db_name"`
	Version      string            `json:"version"`       // Odoo's release version, e.g. "18.0"
	VersionInfo  []any             `json:"version_info"`  // e.g. [18, 0, 0, "final", 0, ""]
	MajorVersion string            `json:"major_version"` // "18.0"
	PGVersion    string            `json:"pg_version"`    // Odoo's "%d.%d" form, e.g. "15.0"
	Modules      map[string]string `json:"modules"`       // installed module → latest_version
	Pgdeck       *Info             `json:"pgdeck,omitempty"`
}

// Info is pgdeck's part of the manifest.
type Info struct {
	Format            Format           `json:"format"`
	Environment       string           `json:"environment"`
	PostgreSQLVersion string           `json:"postgresql_version"` // server_version, full
	PostgreSQLMajor   int              `json:"postgresql_major"`
	PgdeckVersion     string           `json:"pgdeck_version"`
	CreatedAt         time.Time        `json:"created_at"`
	Files             map[string]Part  `json:"files"`  // every entry before manifest.json
	Tables            map[string]int64 `json:"tables"` // schema-qualified table → row count at dump time
	FilestoreFiles    int              `json:"filestore_files"`
	FilestoreBytes    int64            `json:"filestore_bytes"`
	DumpBytes         int64            `json:"dump_bytes"`
}

// Part is an entry's size and SHA-256 (hex).
type Part struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Error is a refusal with a message fit for an operator.
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

func refusef(format string, args ...any) *Error {
	return &Error{Reason: fmt.Sprintf(format, args...)}
}

// pgMajor returns the PostgreSQL major version the manifest was dumped
// from: pgdeck's postgresql_major, else the major of Odoo's pg_version
// ("15.0" → 15, "9.6" → 9).
func pgMajor(m Manifest) (int, bool) {
	if m.Pgdeck != nil && m.Pgdeck.PostgreSQLMajor > 0 {
		return m.Pgdeck.PostgreSQLMajor, true
	}
	head, _, _ := strings.Cut(m.PGVersion, ".")
	n, err := strconv.Atoi(head)
	return n, err == nil && n > 0
}

// CheckCompatible refuses an archive for a target whose PostgreSQL major is
// older than the dump's, or whose Odoo major differs from the manifest's
// major_version; messages name both versions.
func CheckCompatible(m Manifest, targetPGMajor int, targetOdooMajor string) error {
	src, ok := pgMajor(m)
	if !ok {
		return refusef("the archive does not say which PostgreSQL it was dumped from (pg_version %q)", m.PGVersion)
	}
	if src > targetPGMajor {
		return refusef("the archive was dumped from PostgreSQL %d, newer than the target's PostgreSQL %d", src, targetPGMajor)
	}
	if strings.TrimSpace(m.MajorVersion) != strings.TrimSpace(targetOdooMajor) {
		return refusef("the archive is of Odoo %s, the target runs Odoo %s", m.MajorVersion, targetOdooMajor)
	}
	return nil
}
