package backup

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"hash/crc32"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// entry is one entry of a hand-made zip.
type entry struct {
	name string
	data []byte
	mode fs.FileMode // 0: a regular file
	// lie, when set, is the uncompressed size the header declares.
	lie uint64
}

func odooManifest() []byte {
	data, _ := json.MarshalIndent(Manifest{
		OdooDump: "1", DBName: "odoo", Version: "18.0", VersionInfo: []any{18, 0, 0, "final", 0, ""},
		MajorVersion: "18.0", PGVersion: "15.0", Modules: map[string]string{"base": "18.0.1.3"},
	}, "", "    ")
	return data
}

const tinyDump = "--\n-- PostgreSQL database dump\n--\n\nCREATE TABLE public.t (a text);\nCOPY public.t (a) FROM stdin;\nx\\\\y\n\\.\n"

// makeZip writes entries into a zip file, as they are, and returns its path.
func makeZip(t *testing.T, entries ...entry) string {
	t.Helper()
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, e := range entries {
		h := &zip.FileHeader{Name: e.name, Method: zip.Deflate}
		if e.mode != 0 {
			h.SetMode(e.mode)
		}
		if e.lie == 0 {
			w, err := zw.CreateHeader(h)
			if err != nil {
				t.Fatal(err)
			}
			w.Write(e.data)
			continue
		}
		var comp bytes.Buffer
		fw, _ := flate.NewWriter(&comp, flate.BestCompression)
		fw.Write(e.data)
		fw.Close()
		h.CRC32 = crc32.ChecksumIEEE(e.data)
		h.CompressedSize64 = uint64(comp.Len())
		h.UncompressedSize64 = e.lie
		w, err := zw.CreateRaw(h)
		if err != nil {
			t.Fatal(err)
		}
		w.Write(comp.Bytes())
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(t.TempDir(), "hostile.zip")
	if err := os.WriteFile(p, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func wantRefusal(t *testing.T, err error, contains string) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error = %v (%T), want *Error", err, err)
	}
	if !strings.Contains(e.Reason, contains) {
		t.Errorf("reason %q does not say %q", e.Reason, contains)
	}
}

func TestOpenRefuses(t *testing.T) {
	manifest := entry{name: "manifest.json", data: odooManifest()}
	dump := entry{name: "dump.sql", data: []byte(tinyDump)}
	notZip := filepath.Join(t.TempDir(), "x.zip")
	os.WriteFile(notZip, []byte("PK but not really a zip"), 0o644)
	bomb := bytes.Repeat([]byte{0}, 64<<20)

	cases := []struct {
		name, path, reason string
	}{
		{"not a zip", notZip, "not a zip"},
		{"missing dump", makeZip(t, manifest), "no dump"},
		{"both dumps", makeZip(t, dump, entry{name: "dump.dump", data: []byte("PGDMP")}, manifest), "both"},
		{"missing manifest", makeZip(t, dump), "no manifest"},
		{"parent path", makeZip(t, dump, entry{name: "filestore/../../etc/passwd", data: []byte("x")}, manifest), "leaves its folder"},
		{"parent path at top", makeZip(t, dump, entry{name: "../x", data: []byte("x")}, manifest), "leaves its folder"},
		{"absolute path", makeZip(t, dump, entry{name: "/etc/passwd", data: []byte("x")}, manifest), "absolute"},
		{"backslash path", makeZip(t, dump, entry{name: `filestore\..\..\x`, data: []byte("x")}, manifest), "backslash"},
		{"unclean path", makeZip(t, dump, entry{name: "filestore/ab//x", data: []byte("x")}, manifest), "not clean"},
		{"symlink", makeZip(t, dump, entry{name: "filestore/ab/link", data: []byte("/etc/passwd"), mode: fs.ModeSymlink | 0o777}, manifest), "symbolic link"},
		{"device", makeZip(t, dump, entry{name: "filestore/ab/dev", mode: fs.ModeDevice | 0o644}, manifest), "not a regular file"},
		{"duplicate", makeZip(t, dump, entry{name: "filestore/ab/x", data: []byte("1")}, entry{name: "filestore/ab/x", data: []byte("2")}, manifest), "twice"},
		{"unexpected entry", makeZip(t, dump, entry{name: "run.sh", data: []byte("x")}, manifest), "unexpected"},
		{"bomb", makeZip(t, dump, entry{name: "filestore/ab/zeros", data: bomb}, manifest), "zip bomb"},
		{"manifest without keys", makeZip(t, dump, entry{name: "manifest.json", data: []byte(`{"db_name": "x"}`)}), "odoo_dump"},
		{"manifest not json", makeZip(t, dump, entry{name: "manifest.json", data: []byte(`{`)}), "not valid"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			a, err := Open(c.path, Limits{})
			if err == nil {
				a.Close()
			}
			wantRefusal(t, err, c.reason)
		})
	}

	t.Run("too many entries", func(t *testing.T) {
		_, err := Open(makeZip(t, dump, manifest, entry{name: "filestore/a", data: []byte("a")}), Limits{MaxEntries: 2})
		wantRefusal(t, err, "entries")
	})
	t.Run("too large", func(t *testing.T) {
		_, err := Open(makeZip(t, dump, manifest), Limits{MaxTotal: 100})
		wantRefusal(t, err, "expands")
	})
}

// TestLyingHeader: an entry whose header declares less than it holds is
// refused while it is read, and extracting it writes nothing outside the
// folder.
func TestLyingHeader(t *testing.T) {
	p := makeZip(t,
		entry{name: "dump.sql", data: []byte(tinyDump)},
		entry{name: "filestore/ab/lie", data: bytes.Repeat([]byte("A"), 8<<20), lie: 1000},
		entry{name: "manifest.json", data: odooManifest()},
	)
	a, err := Open(p, Limits{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer a.Close()
	wantRefusal(t, a.Verify(t.Context(), "", ""), "header")
	parent := t.TempDir()
	_, _, err = a.ExtractFilestore(t.Context(), filepath.Join(parent, "fs"))
	wantRefusal(t, err, "header")
	if fi, err := os.Stat(filepath.Join(parent, "fs", "ab", "lie")); err == nil && fi.Size() > 1000 {
		t.Errorf("extracted %d bytes of a 1000-byte entry", fi.Size())
	}
	assertOnly(t, parent, "fs")
}

// assertOnly fails unless dir holds exactly the named entries.
func assertOnly(t *testing.T, dir string, names ...string) {
	t.Helper()
	ents, _ := os.ReadDir(dir)
	var got []string
	for _, e := range ents {
		got = append(got, e.Name())
	}
	if strings.Join(got, ",") != strings.Join(names, ",") {
		t.Errorf("%s holds %v, want %v", dir, got, names)
	}
}

// TestChecksumMismatch: one byte changed in a filestore file of a pgdeck
// archive, manifest intact, is refused by Verify and ExtractFilestore.
func TestChecksumMismatch(t *testing.T) {
	fsDir := t.TempDir()
	os.MkdirAll(filepath.Join(fsDir, "ab"), 0o755)
	os.WriteFile(filepath.Join(fsDir, "ab", "ab01"), []byte("attachment one\n"), 0o644)
	var buf bytes.Buffer
	if _, err := Write(t.Context(), &buf, Source{Format: FormatZip, FilestoreDir: fsDir, Manifest: testManifest("x"),
		Dump: func(_ context.Context, w io.Writer) error { _, err := io.WriteString(w, tinyDump); return err }}, nil); err != nil {
		t.Fatal(err)
	}
	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		t.Fatal(err)
	}
	var entries []entry
	for _, f := range zr.File {
		rc, _ := f.Open()
		data, _ := io.ReadAll(rc)
		rc.Close()
		if f.Name == "filestore/ab/ab01" {
			data[0] ^= 1
		}
		entries = append(entries, entry{name: f.Name, data: data})
	}
	a, err := Open(makeZip(t, entries...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	wantRefusal(t, a.Verify(t.Context(), "", ""), "checksum")
	_, _, err = a.ExtractFilestore(t.Context(), filepath.Join(t.TempDir(), "fs"))
	wantRefusal(t, err, "checksum")

	// An entry the manifest does not list, and one it lists but is missing.
	for i := range entries {
		if entries[i].name == "filestore/ab/ab01" {
			entries[i].data[0] ^= 1
		}
	}
	extra := append(append([]entry{}, entries[:len(entries)-1]...), entry{name: "filestore/zz/new", data: []byte("n")}, entries[len(entries)-1])
	a2, err := Open(makeZip(t, extra...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a2.Close()
	wantRefusal(t, a2.Verify(t.Context(), "", ""), "does not list")
	missing := []entry{entries[0], entries[len(entries)-1]}
	a3, err := Open(makeZip(t, missing...), Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a3.Close()
	wantRefusal(t, a3.Verify(t.Context(), "", ""), "does not hold")
}

// TestHostileDumps: dumps with psql meta-commands are refused by Verify
// and by the restore pipeline, and the shell escape never runs.
func TestHostileDumps(t *testing.T) {
	pg := startPG(t)
	rnd := make([]byte, 8)
	rand.Read(rnd)
	pwned := "/tmp/pwned-" + hex.EncodeToString(rnd)
	t.Cleanup(func() { os.Remove(pwned) })
	dumps := map[string]string{
		"shell escape":        tinyDump + "\\! touch " + pwned + "\n",
		"unrestrict then !":   "\\restrict k1\n" + tinyDump + "\\unrestrict k1\n\\! touch " + pwned + "\n",
		"copy from program":   tinyDump + "\\copy public.t from program 'touch " + pwned + "'\n",
		"include":             tinyDump + "\\i /etc/passwd\n",
		"output":              "\\o " + pwned + "\n" + tinyDump,
		"hidden after copy":   "CREATE TABLE public.t (a text);\nCOPY public.t (a) FROM stdin;\na\n\\.\nSELECT 1; \\! touch " + pwned + "\n",
		"ambiguous backslash": "SET standard_conforming_strings = off;\nSELECT 'a\\' \\! touch " + pwned + " ';\n",
	}
	for name, sql := range dumps {
		t.Run(name, func(t *testing.T) {
			p := makeZip(t, entry{name: "dump.sql", data: []byte(sql)}, entry{name: "manifest.json", data: odooManifest()})
			a, err := Open(p, Limits{})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			defer a.Close()
			wantRefusal(t, a.Verify(t.Context(), pg.bin("pg_restore"), t.TempDir()), "line")
			dst, owner := makeTarget(t, pg)
			if err := restore(t.Context(), pg, a, dst, owner); err == nil {
				t.Error("the restore succeeded")
			}
			if _, err := os.Stat(pwned); err == nil {
				t.Fatalf("%s exists: the dump ran a shell command", pwned)
			}
		})
	}

	// What looks like a meta-command but is data is not refused.
	ok := "CREATE TABLE public.t (a text);\nCOPY public.t (a) FROM stdin;\n\\\\! touch " + pwned + "\n\\.\n" +
		"SELECT 'a\\! b', E'\\\\! c', $$ \\! d $$; -- \\! e\n/* \\! f */\n"
	p := makeZip(t, entry{name: "manifest.json", data: odooManifest()}, entry{name: "dump.sql", data: []byte(ok)})
	a, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := a.Verify(t.Context(), pg.bin("pg_restore"), t.TempDir()); err != nil {
		t.Fatalf("Verify refused harmless backslashes: %v", err)
	}
	dst, owner := makeTarget(t, pg)
	if err := restore(t.Context(), pg, a, dst, owner); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got := pg.sql(t, dst, "SELECT a FROM t"); got != "\\! touch "+pwned {
		t.Errorf("restored %q", got)
	}
	if _, err := os.Stat(pwned); err == nil {
		t.Fatalf("%s exists", pwned)
	}
}

// TestOdooArchive: a zip as Odoo makes it (manifest first, no pgdeck key,
// folder entries) opens, verifies and restores.
func TestOdooArchive(t *testing.T) {
	pg := startPG(t)
	src := makeSource(t, pg)
	var dump bytes.Buffer
	if err := pgDumpFunc(pg, src)(t.Context(), &dump); err != nil {
		t.Fatal(err)
	}
	p := makeZip(t,
		entry{name: "manifest.json", data: odooManifest()},
		entry{name: "filestore/", mode: fs.ModeDir | 0o755},
		entry{name: "filestore/ab/", mode: fs.ModeDir | 0o755},
		entry{name: "filestore/ab/ab01", data: []byte("one")},
		entry{name: "dump.sql", data: dump.Bytes()},
	)
	a, err := Open(p, Limits{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer a.Close()
	if a.Manifest().Pgdeck != nil || a.Format() != FormatZip {
		t.Errorf("manifest %+v, format %s", a.Manifest(), a.Format())
	}
	if err := a.Verify(t.Context(), pg.bin("pg_restore"), t.TempDir()); err != nil {
		t.Fatalf("Verify: %v", err)
	}
	dst, owner := makeTarget(t, pg)
	if err := restore(t.Context(), pg, a, dst, owner); err != nil {
		t.Fatalf("restore: %v", err)
	}
	if got, want := pg.sql(t, dst, checksumSQL), pg.sql(t, src, checksumSQL); got != want {
		t.Errorf("restored database differs")
	}
	files, n, err := a.ExtractFilestore(t.Context(), filepath.Join(t.TempDir(), "fs"))
	if err != nil || files != 1 || n != 3 {
		t.Errorf("ExtractFilestore = %d, %d, %v", files, n, err)
	}
}

// TestExtractSymlinkRace: a symbolic link already in the target folder is
// not followed.
func TestExtractNoFollow(t *testing.T) {
	p := makeZip(t, entry{name: "dump.sql", data: []byte(tinyDump)}, entry{name: "manifest.json", data: odooManifest()},
		entry{name: "filestore/ab/x", data: []byte("x")})
	a, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	parent := t.TempDir()
	outside := t.TempDir()
	// The folder must not exist: a link in its place is refused.
	os.Symlink(outside, filepath.Join(parent, "fs"))
	if _, _, err := a.ExtractFilestore(t.Context(), filepath.Join(parent, "fs")); err == nil {
		t.Error("extracted through a symbolic link")
	}
	assertOnly(t, outside)
}

func TestCheckCompatible(t *testing.T) {
	m := testManifest("x")
	if err := CheckCompatible(m, 15, "18.0"); err != nil {
		t.Errorf("same versions: %v", err)
	}
	if err := CheckCompatible(m, 16, "18.0"); err != nil {
		t.Errorf("newer target PostgreSQL: %v", err)
	}
	err := CheckCompatible(m, 14, "18.0")
	wantRefusal(t, err, "PostgreSQL 15")
	wantRefusal(t, err, "PostgreSQL 14")
	err = CheckCompatible(m, 15, "17.0")
	wantRefusal(t, err, "Odoo 18.0")
	wantRefusal(t, err, "Odoo 17.0")
	m.Pgdeck = nil
	m.PGVersion = "16.0"
	wantRefusal(t, CheckCompatible(m, 15, "18.0"), "PostgreSQL 16")
}

// TestBadCustomDump: a dump.dump that pg_restore cannot read is refused.
func TestBadCustomDump(t *testing.T) {
	pg := startPG(t)
	p := makeZip(t, entry{name: "dump.dump", data: []byte("PGDMP this is not a custom dump")}, entry{name: "manifest.json", data: odooManifest()})
	a, err := Open(p, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if a.Format() != FormatDump {
		t.Errorf("format %s", a.Format())
	}
	wantRefusal(t, a.Verify(t.Context(), pg.bin("pg_restore"), t.TempDir()), "pg_restore")
}
