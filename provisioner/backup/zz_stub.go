// TEMPORARY STUB (never committed): the real package comes from branch backup-archive.
package backup

import (
	"context"
	"errors"
	"io"
	"time"
)

type Format string

const (
	FormatZip  Format = "zip"
	FormatDump Format = "dump"
)

type Manifest struct {
	OdooDump     string            `json:"odoo_dump"`
	DBName       string            `json:"db_name"`
	Version      string            `json:"version"`
	VersionInfo  []any             `json:"version_info"`
	MajorVersion string            `json:"major_version"`
	PGVersion    string            `json:"pg_version"`
	Modules      map[string]string `json:"modules"`
	Pgdeck       *Info             `json:"pgdeck,omitempty"`
}
type Info struct {
	Format            Format           `json:"format"`
	Environment       string           `json:"environment"`
	PostgreSQLVersion string           `json:"postgresql_version"`
	PostgreSQLMajor   int              `json:"postgresql_major"`
	PgdeckVersion     string           `json:"pgdeck_version"`
	CreatedAt         time.Time        `json:"created_at"`
	Files             map[string]Part  `json:"files"`
	Tables            map[string]int64 `json:"tables"`
	FilestoreFiles    int              `json:"filestore_files"`
	FilestoreBytes    int64            `json:"filestore_bytes"`
	DumpBytes         int64            `json:"dump_bytes"`
}
type Part struct {
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}
type Source struct {
	Format       Format
	Dump         func(ctx context.Context, w io.Writer) error
	FilestoreDir string
	Config       map[string][]byte
	Manifest     Manifest
}

func Write(ctx context.Context, w io.Writer, src Source, progress func(written int64)) (Manifest, error) {
	return Manifest{}, errors.New("stub")
}

type Limits struct {
	MaxEntries int
	MaxTotal   int64
	MaxRatio   int64
}
type Error struct{ Reason string }

func (e *Error) Error() string { return e.Reason }

type Archive struct{}

func Open(path string, lim Limits) (*Archive, error)                                 { return nil, errors.New("stub") }
func (a *Archive) Close() error                                                      { return nil }
func (a *Archive) Manifest() Manifest                                                { return Manifest{} }
func (a *Archive) Format() Format                                                    { return "" }
func (a *Archive) Size() int64                                                       { return 0 }
func (a *Archive) Verify(ctx context.Context, pgRestore string, tmpDir string) error { return nil }
func (a *Archive) Dump() (io.ReadCloser, error)                                      { return nil, nil }
func (a *Archive) ExtractFilestore(ctx context.Context, dir string) (int, int64, error) {
	return 0, 0, nil
}
func (a *Archive) Config() (map[string][]byte, error)                             { return nil, nil }
func CheckCompatible(m Manifest, targetPGMajor int, targetOdooMajor string) error { return nil }
func ScanPlain(r io.Reader) error                                                 { return nil }
func RestoreScript(r io.Reader) io.Reader                                         { return r }
