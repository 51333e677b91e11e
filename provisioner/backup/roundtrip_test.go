package backup

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// makeFilestore lays out a filestore as Odoo does (<xx>/<sha1>), with an
// already compressed file (PNG magic), a compressible one over 1 MiB, an
// empty one, and a pre-v12 three-character folder.
func makeFilestore(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "filestore")
	files := map[string][]byte{
		"ab/ab01":  []byte("attachment one\n"),
		"cd/cd02":  append([]byte{0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'}, bytes.Repeat([]byte{7, 1, 9}, 5000)...),
		"ef/ef03":  bytes.Repeat([]byte("compressible text line\n"), 100_000),
		"ef/ef04":  {},
		"abc/abc5": []byte("old layout"),
	}
	for rel, data := range files {
		p := filepath.Join(dir, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// treeHashes maps every file under dir to its SHA-256.
func treeHashes(t *testing.T, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		sum := sha256.Sum256(data)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func testManifest(db string) Manifest {
	return Manifest{
		DBName:       db,
		Version:      "18.0",
		VersionInfo:  []any{18, 0, 0, "final", 0, ""},
		MajorVersion: "18.0",
		PGVersion:    "15.0",
		Modules:      map[string]string{"base": "18.0.1.3"},
		Pgdeck: &Info{
			Environment:       "test",
			PostgreSQLVersion: "15",
			PostgreSQLMajor:   15,
			PgdeckVersion:     "test",
			CreatedAt:         time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC),
			Tables:            map[string]int64{"public.res_partner": 2003},
		},
	}
}

// writeArchive writes an archive of db and the filestore into a file.
func writeArchive(t *testing.T, pg *testPG, format Format, db, filestore string) (string, Manifest) {
	t.Helper()
	args := []string{}
	if format == FormatDump {
		args = append(args, "--format=custom")
	}
	path := filepath.Join(t.TempDir(), "backup."+string(format))
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	var calls int
	var last int64
	m, err := Write(t.Context(), f, Source{
		Format:       format,
		Dump:         pgDumpFunc(pg, db, args...),
		FilestoreDir: filestore,
		Config:       map[string][]byte{"odoo.conf": []byte("[options]\ndb_name = x\n")},
		Manifest:     testManifest(db),
	}, func(n int64) {
		if n < last {
			t.Errorf("progress went back from %d to %d", last, n)
		}
		calls++
		last = n
	})
	if err != nil {
		t.Fatalf("Write: %v", err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(path)
	if calls == 0 || last != fi.Size() {
		t.Errorf("progress: %d calls, last %d, archive %d bytes", calls, last, fi.Size())
	}
	return path, m
}

func TestRoundTrip(t *testing.T) {
	pg := startPG(t)
	src := makeSource(t, pg)
	want := pg.sql(t, src, checksumSQL)
	filestore := makeFilestore(t)

	for _, format := range []Format{FormatZip, FormatDump} {
		t.Run(string(format), func(t *testing.T) {
			ctx := t.Context()
			path, m := writeArchive(t, pg, format, src, filestore)
			if m.Pgdeck.Format != format || m.Pgdeck.FilestoreFiles != 5 || m.Pgdeck.DumpBytes == 0 || len(m.Pgdeck.Files) != 7 {
				t.Errorf("manifest: %+v", m.Pgdeck)
			}
			a, err := Open(path, Limits{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer a.Close()
			if a.Format() != format || a.Manifest().DBName != src || a.Manifest().Pgdeck.Files["filestore/ab/ab01"].Size != 15 {
				t.Errorf("opened: format %s, manifest %+v", a.Format(), a.Manifest())
			}
			if err := a.Verify(ctx, pg.bin("pg_restore"), t.TempDir()); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			cfg, err := a.Config()
			if err != nil || string(cfg["odoo.conf"]) != "[options]\ndb_name = x\n" {
				t.Errorf("Config = %q, %v", cfg, err)
			}

			dst, owner := makeTarget(t, pg)
			if err := restore(ctx, pg, a, dst, owner); err != nil {
				t.Fatalf("restore as %s: %v", owner, err)
			}
			if got := pg.sql(t, dst, checksumSQL); got != want {
				t.Errorf("restored database differs:\n got %s\nwant %s", got, want)
			}

			out := filepath.Join(t.TempDir(), "restored")
			files, n, err := a.ExtractFilestore(ctx, out)
			if err != nil {
				t.Fatalf("ExtractFilestore: %v", err)
			}
			if files != 5 || n != m.Pgdeck.FilestoreBytes {
				t.Errorf("extracted %d files, %d bytes; want 5, %d", files, n, m.Pgdeck.FilestoreBytes)
			}
			if got, want := treeHashes(t, out), treeHashes(t, filestore); !equalMaps(got, want) {
				t.Errorf("extracted filestore differs:\n got %v\nwant %v", got, want)
			}
			fi, _ := os.Stat(filepath.Join(out, "ab", "ab01"))
			di, _ := os.Stat(filepath.Join(out, "ab"))
			if fi.Mode().Perm() != 0o640 || di.Mode().Perm() != 0o750 {
				t.Errorf("modes: file %v, folder %v", fi.Mode(), di.Mode())
			}
			if _, _, err := a.ExtractFilestore(ctx, out); err == nil {
				t.Error("ExtractFilestore into an existing folder succeeded")
			}
		})
	}
}

// restore restores the archive's dump into db as owner, the way the
// restore job does: a plain dump through RestoreScript into psql; a custom
// dump first turned back into a plain script by pg_restore -f - (so that
// the same rewriting of harmless statements applies: pg_restore
// --exit-on-error would stop at COMMENT ON EXTENSION, and without it real
// errors pass unseen).
func restore(ctx context.Context, pg *testPG, a *Archive, db, owner string) error {
	rc, err := a.Dump()
	if err != nil {
		return err
	}
	defer rc.Close()
	var plain io.Reader = rc
	if a.Format() == FormatDump {
		pr, pw := io.Pipe()
		go func() {
			pw.CloseWithError(pg.stream(ctx, rc, pw, "pg_restore", "--no-owner", "-f", "-"))
		}()
		defer pr.Close()
		plain = pr
	}
	return pg.psqlAs(ctx, db, owner, RestoreScript(plain))
}

func equalMaps(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if b[k] != v {
			return false
		}
	}
	return true
}

// TestPlainTools: the archive is a zip that unzip reads, and its dump.sql
// restores with plain psql, as Odoo's restore does.
func TestPlainTools(t *testing.T) {
	unzip, err := exec.LookPath("unzip")
	if err != nil {
		t.Fatal("unzip is needed (install it with: apt-get install -y unzip)")
	}
	pg := startPG(t)
	src := makeSource(t, pg)
	filestore := makeFilestore(t)
	path, _ := writeArchive(t, pg, FormatZip, src, filestore)

	dir := t.TempDir()
	if out, err := exec.Command(unzip, "-q", path, "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("unzip: %v\n%s", err, out)
	}
	if out, err := exec.Command(unzip, "-Z1", path).Output(); err != nil {
		t.Fatal(err)
	} else if names := strings.Fields(string(out)); names[0] != "dump.sql" || names[len(names)-1] != "manifest.json" {
		t.Errorf("entry order: %v", names)
	}
	if got, want := treeHashes(t, filepath.Join(dir, "filestore")), treeHashes(t, filestore); !equalMaps(got, want) {
		t.Errorf("unzipped filestore differs")
	}
	dst := newName("plain")
	pg.sql(t, "postgres", "CREATE DATABASE "+dst)
	dump, err := os.Open(filepath.Join(dir, "dump.sql"))
	if err != nil {
		t.Fatal(err)
	}
	defer dump.Close()
	var out bytes.Buffer
	if err := pg.stream(t.Context(), dump, &out, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", dst); err != nil {
		t.Fatalf("psql -f dump.sql: %v\n%s", err, out.String())
	}
	if got, want := pg.sql(t, dst, checksumSQL), pg.sql(t, src, checksumSQL); got != want {
		t.Errorf("plain restore differs:\n got %s\nwant %s", got, want)
	}
}

func TestWriteFailures(t *testing.T) {
	boom := errors.New("pg_dump failed")
	_, err := Write(t.Context(), io.Discard, Source{Format: FormatZip, Dump: func(ctx context.Context, w io.Writer) error {
		w.Write([]byte("SELECT 1;\n"))
		return boom
	}}, nil)
	if !errors.Is(err, boom) {
		t.Errorf("failing dump: %v", err)
	}

	ctx, cancel := context.WithCancel(t.Context())
	_, err = Write(ctx, io.Discard, Source{Format: FormatZip, Dump: func(ctx context.Context, w io.Writer) error {
		cancel()
		for ctx.Err() == nil {
			w.Write([]byte("SELECT 1;\n"))
		}
		return ctx.Err()
	}}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled: %v", err)
	}

	fs := t.TempDir()
	os.WriteFile(filepath.Join(fs, "x"), []byte("x"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(fs, "link"))
	_, err = Write(t.Context(), io.Discard, Source{Format: FormatZip, FilestoreDir: fs, Dump: func(ctx context.Context, w io.Writer) error { return nil }}, nil)
	if err == nil {
		t.Error("a symbolic link in the filestore was archived")
	}

	real := t.TempDir()
	os.WriteFile(filepath.Join(real, "x"), []byte("x"), 0o644)
	linked := filepath.Join(t.TempDir(), "filestore")
	os.Symlink(real, linked)
	m, err := Write(t.Context(), io.Discard, Source{Format: FormatZip, FilestoreDir: linked, Dump: func(ctx context.Context, w io.Writer) error { return nil }}, nil)
	if err != nil || m.Pgdeck.FilestoreFiles != 1 {
		t.Errorf("filestore root behind a symbolic link: %v, %+v", err, m.Pgdeck)
	}

	m, err = Write(t.Context(), io.Discard, Source{Format: FormatZip, FilestoreDir: filepath.Join(fs, "missing"), Dump: func(ctx context.Context, w io.Writer) error { return nil }}, nil)
	if err != nil || m.Pgdeck.FilestoreFiles != 0 {
		t.Errorf("missing filestore: %v, %+v", err, m.Pgdeck)
	}
}

// TestHarmlessStatements: a dump from another cluster (its roles missing
// here), from a newer pg_dump (SET transaction_timeout) and with extensions
// the target already has fails as it is under ON_ERROR_STOP for a
// non-superuser owner, and restores whole through RestoreScript.
func TestHarmlessStatements(t *testing.T) {
	pg := startPG(t)
	src := makeSource(t, pg)
	var dump bytes.Buffer
	if err := pgDumpFunc(pg, src)(t.Context(), &dump); err != nil {
		t.Fatal(err)
	}
	sql := strings.ReplaceAll(dump.String(), "pgdeck_test_reader", "role_of_another_cluster")
	sql = strings.Replace(sql, "SET statement_timeout = 0;", "SET statement_timeout = 0;\nSET transaction_timeout = 0;", 1)
	for _, want := range []string{"COMMENT ON EXTENSION", "GRANT SELECT ON TABLE public.res_partner TO role_of_another_cluster", "ALTER DEFAULT PRIVILEGES FOR ROLE postgres"} {
		if !strings.Contains(sql, want) {
			t.Fatalf("the dump lacks %q", want)
		}
	}
	dst, owner := makeTarget(t, pg)
	if err := pg.psqlAs(t.Context(), dst, owner, strings.NewReader(sql)); err == nil {
		t.Fatal("the raw dump restored under ON_ERROR_STOP: nothing to rewrite?")
	}
	dst, owner = makeTarget(t, pg)
	if err := pg.psqlAs(t.Context(), dst, owner, RestoreScript(strings.NewReader(sql))); err != nil {
		t.Fatalf("RestoreScript: %v", err)
	}
	if got, want := pg.sql(t, dst, checksumSQL), pg.sql(t, src, checksumSQL); got != want {
		t.Errorf("restored database differs:\n got %s\nwant %s", got, want)
	}
}
