package runtimetest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pgdeck/provisioner/backup"
	"pgdeck/provisioner/runtime"
)

// testBackup: what backups do on every runtime. A database is dumped
// through Stream (pg_dump in the instance) into an archive with a
// filestore kept under EnvPath, and restored from it through Stream as a
// non-superuser owner (psql in the instance, the dump filtered by
// RestoreScript, stopping at the first error): the rows and files come back
// as they were.
func testBackup(t *testing.T, rt runtime.Runtime, port int) {
	ctx := t.Context()
	id := primary("suite-backup")
	cleanupRemove(t, rt, id)
	t.Cleanup(func() { rt.RemoveEnv(ctx, id.Env) })
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: port, HBA: []string{"local all suite_owner trust"}}); err != nil {
		t.Fatalf("create: %v", err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	psql(t, rt, id, "create role suite_owner login")
	psql(t, rt, id, "create database src owner suite_owner")
	psql(t, rt, id, "create database dst owner suite_owner")
	asOwner := func(db, sql string) string {
		t.Helper()
		out, err := rt.Exec(ctx, id, nil, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-U", "suite_owner", "-d", db, "-c", sql)
		if err != nil {
			t.Fatalf("psql as suite_owner on %s: %v", db, err)
		}
		return strings.TrimSpace(string(out))
	}
	asOwner("src", `create table partner (id int primary key, name text, image bytea);
		insert into partner select i, E'name\t' || i || E' \\ ''q''', decode(md5(i::text), 'hex') from generate_series(1, 20000) i`)
	sum := "select count(*) || ':' || md5(string_agg(p::text, '|' order by id)) from partner p"
	want := asOwner("src", sum)

	if err := rt.MakeEnvDir(ctx, id.Env, "filestore/src", runtime.Owner{}); err != nil {
		t.Fatalf("filestore: %v", err)
	}
	fsDir := rt.EnvPath(id.Env, "filestore/src")
	files := map[string]string{"ab/ab01": "an invoice", "cd/cd02": strings.Repeat("pixels", 5000)}
	for rel, content := range files {
		p := filepath.Join(fsDir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}

	path := filepath.Join(t.TempDir(), "backup.zip")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	_, err = backup.Write(ctx, f, backup.Source{
		Format: backup.FormatZip,
		Dump: func(ctx context.Context, w io.Writer) error {
			return rt.Stream(ctx, id, nil, w, "pg_dump", "--no-owner", "-d", "src")
		},
		FilestoreDir: fsDir,
		Manifest: backup.Manifest{OdooDump: "1", DBName: "src", Version: "18.0", VersionInfo: []any{18, 0, 0, "final", 0, ""},
			MajorVersion: "18.0", PGVersion: "15.0", Modules: map[string]string{"base": "18.0.1.3"},
			Pgdeck: &backup.Info{Environment: id.Env, PostgreSQLMajor: 15}},
	}, nil)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("write the archive: %v", err)
	}
	a, err := backup.Open(path, backup.Limits{})
	if err != nil {
		t.Fatalf("open the archive: %v", err)
	}
	defer a.Close()
	if err := a.Verify(ctx, "", ""); err != nil {
		t.Fatalf("verify: %v", err)
	}
	dump, err := a.Dump()
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Close()
	if err := rt.Stream(ctx, id, backup.RestoreScript(dump), io.Discard,
		"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", "suite_owner", "-d", "dst"); err != nil {
		t.Fatalf("restore as the owner: %v", err)
	}
	if got := asOwner("dst", sum); got != want {
		t.Errorf("restored rows %s, want %s", got, want)
	}
	out := filepath.Join(t.TempDir(), "filestore")
	if n, _, err := a.ExtractFilestore(ctx, out); err != nil || n != len(files) {
		t.Fatalf("extract the filestore: %d files, %v", n, err)
	}
	for rel, content := range files {
		data, err := os.ReadFile(filepath.Join(out, rel))
		h1, h2 := sha256.Sum256(data), sha256.Sum256([]byte(content))
		if err != nil || hex.EncodeToString(h1[:]) != hex.EncodeToString(h2[:]) {
			t.Errorf("filestore file %s: %v", rel, err)
		}
	}
}
