package provisioner_test

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkBackupRestore backs up and restores an environment holding about
// 200 MB of rows and 100 MB of filestore (incompressible files, like
// images), through pgdeck and through the raw tools on the same data in
// the same iteration:
//   - backup: pgdeck's backup job, against pg_dump --no-owner to a file
//     plus `zip -r` of that dump and the filestore folder (what an operator
//     scripts by hand);
//   - restore: pgdeck's restore job, against unzip + createdb + psql of the
//     dump + copying the filestore into place. pgdeck's restore first takes
//     a pre-restore backup and loads beside the running data; x-raw-load
//     leaves that backup out (the same work as the raw restore), x-raw
//     counts it.
//
// It reports ms/op and MB/s (archive bytes) of each, and the ratios (goal
// ≤ 1.15). Run with: make bench, or
// go test -run '^$' -bench BackupRestore -benchtime 2x ./provisioner/
func BenchmarkBackupRestore(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })
	for _, tool := range []string{"zip", "unzip"} {
		if _, err := exec.LookPath(tool); err != nil {
			b.Fatalf("%s is required: apt-get install -y zip unzip", tool)
		}
	}
	h := newHarness(b)
	e := h.deploy("bench")
	ctx := context.Background()
	if _, err := h.connectAs(e).Exec(ctx, `CREATE TABLE ir_module_module (id serial PRIMARY KEY, name text, state text, latest_version text);
		CREATE TABLE res_partner (id serial PRIMARY KEY, name text, email text, note text, created timestamptz DEFAULT now());
		INSERT INTO res_partner (name, email, note)
			SELECT 'partner ' || i, 'p' || i || '@example.com', md5(i::text) || md5((i * 7)::text) || md5((i * 13)::text)
			FROM generate_series(1, 1400000) i;
		CREATE INDEX ON res_partner (email);`); err != nil {
		b.Fatal(err)
	}
	fsDir := h.filestore(e)
	buf := make([]byte, 512<<10)
	for i := range 200 {
		rand.Read(buf)
		p := filepath.Join(fsDir, fmt.Sprintf("%02x", i%256), fmt.Sprintf("%02x%038d", i%256, i))
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, buf, 0o644); err != nil {
			b.Fatal(err)
		}
	}
	var dbBytes int64
	h.connectAs(e).QueryRow(ctx, "SELECT pg_total_relation_size('res_partner')").Scan(&dbBytes)
	b.Logf("data: %d MB of table, %d MB of filestore", dbBytes>>20, dirBytes(fsDir)>>20)

	work := filepath.Join(filepath.Dir(h.root), "raw")
	var rawBackup, pgBackup, rawRestore, pgRestore, pgLoad time.Duration
	var rawBytes, pgBytes int64
	b.ResetTimer()
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		os.RemoveAll(work)
		os.MkdirAll(work, 0o755)

		// Raw backup: pg_dump to a file, then zip it with the filestore.
		start := time.Now()
		dump, err := os.Create(filepath.Join(work, "dump.sql"))
		if err != nil {
			b.Fatal(err)
		}
		if err := h.rt.Stream(ctx, primary("bench"), nil, dump, "pg_dump", "--no-owner", "-d", e.DBName); err != nil {
			b.Fatal(err)
		}
		dump.Close()
		if err := os.Symlink(fsDir, filepath.Join(work, "filestore")); err != nil {
			b.Fatal(err)
		}
		zipCmd := exec.Command("zip", "-q", "-r", "raw.zip", "dump.sql", "filestore")
		zipCmd.Dir = work
		if out, err := zipCmd.CombinedOutput(); err != nil {
			b.Fatalf("zip: %v: %s", err, out)
		}
		rawBackup += time.Since(start)
		st, _ := os.Stat(filepath.Join(work, "raw.zip"))
		rawBytes += st.Size()

		// pgdeck's backup.
		start = time.Now()
		bk := h.backup("bench", "zip")
		pgBackup += time.Since(start)
		pgBytes += bk.SizeBytes

		// Raw restore: unzip, createdb, psql, filestore into place.
		start = time.Now()
		out := filepath.Join(work, "out")
		if o, err := exec.Command("unzip", "-q", filepath.Join(work, "raw.zip"), "-d", out).CombinedOutput(); err != nil {
			b.Fatalf("unzip: %v: %s", err, o)
		}
		os.Chmod(out, 0o755)
		os.Chmod(filepath.Join(out, "dump.sql"), 0o644)
		if _, err := h.rt.Exec(ctx, primary("bench"), nil, "createdb", "-O", e.DBUser, "rawrestore"); err != nil {
			b.Fatal(err)
		}
		f, err := os.Open(filepath.Join(out, "dump.sql"))
		if err != nil {
			b.Fatal(err)
		}
		if err := h.rt.Stream(ctx, primary("bench"), f, io.Discard, "psql", "-X", "-q", "-d", "rawrestore"); err != nil {
			b.Fatal(err)
		}
		f.Close()
		if o, err := exec.Command("cp", "-a", filepath.Join(out, "filestore"), filepath.Join(work, "filestore-restored")).CombinedOutput(); err != nil {
			b.Fatalf("cp: %v: %s", err, o)
		}
		rawRestore += time.Since(start)
		h.rt.Exec(ctx, primary("bench"), nil, "dropdb", "rawrestore")

		// pgdeck's restore of its backup.
		start = time.Now()
		j := h.restore(bk, "bench", false)
		pgRestore += time.Since(start)
		h.wantSucceeded(j)
		pgLoad += restoreLoad(b, h, j.ID)
		if i == b.N-1 {
			b.Logf("steps of the last restore: %s", stepDurations(b, h, j.ID))
		}
		// Keep the folder from filling up: only the last backups stay.
		bs, _ := h.st.ListBackups(ctx, "bench", 0)
		for _, old := range bs {
			h.p.DeleteBackup(ctx, old)
		}
	}
	os.RemoveAll(work)
	n := float64(b.N)
	mbps := func(bytes int64, d time.Duration) float64 { return float64(bytes) / 1e6 / d.Seconds() }
	b.ReportMetric(float64(rawBackup.Milliseconds())/n, "raw-backup-ms/op")
	b.ReportMetric(float64(pgBackup.Milliseconds())/n, "pgdeck-backup-ms/op")
	b.ReportMetric(float64(pgBackup)/float64(rawBackup), "x-raw-backup")
	b.ReportMetric(mbps(rawBytes, rawBackup), "raw-backup-MB/s")
	b.ReportMetric(mbps(pgBytes, pgBackup), "pgdeck-backup-MB/s")
	b.ReportMetric(float64(rawRestore.Milliseconds())/n, "raw-restore-ms/op")
	b.ReportMetric(float64(pgRestore.Milliseconds())/n, "pgdeck-restore-ms/op")
	b.ReportMetric(float64(pgLoad)/float64(rawRestore), "x-raw-load")
	b.ReportMetric(float64(pgRestore)/float64(rawRestore), "x-raw-restore")
	b.Logf("backup: pgdeck %v (%.0f MB/s, %d MB) vs raw pg_dump+zip %v (%.0f MB/s, %d MB): x%.2f; restore: pgdeck %v (load %v, the rest its pre-restore backup) vs raw %v: x%.2f load, x%.2f whole (goal ≤ 1.15)",
		(pgBackup / time.Duration(b.N)).Round(time.Millisecond), mbps(pgBytes, pgBackup), pgBytes/int64(b.N)>>20,
		(rawBackup / time.Duration(b.N)).Round(time.Millisecond), mbps(rawBytes, rawBackup), rawBytes/int64(b.N)>>20,
		float64(pgBackup)/float64(rawBackup),
		(pgRestore / time.Duration(b.N)).Round(time.Millisecond), (pgLoad / time.Duration(b.N)).Round(time.Millisecond),
		(rawRestore / time.Duration(b.N)).Round(time.Millisecond), float64(pgLoad)/float64(rawRestore), float64(pgRestore)/float64(rawRestore))
}

// restoreLoad is how long a restore job spent after its pre-restore backup:
// from the step that creates the staging database to its end.
func restoreLoad(b *testing.B, h *harness, id int64) time.Duration {
	ls, err := h.st.JobLog(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	var from time.Time
	for _, l := range ls {
		if from.IsZero() && strings.HasPrefix(l.Line, "Creating the database") {
			from = l.At
		}
	}
	if from.IsZero() {
		b.Fatalf("restore %d: no staging step in its log", id)
	}
	return ls[len(ls)-1].At.Sub(from)
}

func dirBytes(dir string) int64 {
	var n int64
	filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			n += fi.Size()
		}
		return nil
	})
	return n
}
