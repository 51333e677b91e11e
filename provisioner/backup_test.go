package provisioner_test

import (
	"archive/zip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"pgdeck/provisioner"
	"pgdeck/provisioner/backup"
	"pgdeck/store"
)

// seedOdooish gives the environment's database tables shaped like Odoo's
// (the ones neutralization touches among them) with rows of every kind of
// value, as its own role, like Odoo.
func (h *harness) seedOdooish(e store.Environment, baseURL string) {
	h.t.Helper()
	_, err := h.connectAs(e).Exec(context.Background(), `
		CREATE TABLE ir_config_parameter (id serial PRIMARY KEY, key text UNIQUE NOT NULL, value text NOT NULL);
		CREATE TABLE ir_module_module (id serial PRIMARY KEY, name text UNIQUE, state text, latest_version text);
		CREATE TABLE ir_mail_server (id serial PRIMARY KEY, name text, smtp_port int, smtp_host text, smtp_encryption text, active bool, smtp_authentication text);
		CREATE TABLE ir_cron (id serial PRIMARY KEY, name text, active bool);
		CREATE TABLE ir_model_data (id serial PRIMARY KEY, res_id int, model text, name text, module text);
		CREATE TABLE ir_act_server (id serial PRIMARY KEY, state text, webhook_url text);
		CREATE TABLE res_partner (id serial PRIMARY KEY, name text, note text, image bytea, created timestamptz DEFAULT now());
		CREATE INDEX res_partner_name_trgm ON res_partner USING gin (name gin_trgm_ops);
		CREATE FUNCTION partner_label(p res_partner) RETURNS text LANGUAGE plpgsql AS $$
			BEGIN RETURN 'partner; ' || p.name || E' \\! not a command'; END; $$;
		INSERT INTO ir_config_parameter (key, value) VALUES ('web.base.url', '`+baseURL+`'),
			('database.uuid', 'uuid-of-`+e.Name+`'), ('database.secret', 'secret-of-`+e.Name+`');
		INSERT INTO ir_module_module (name, state, latest_version) VALUES ('base', 'installed', '18.0.1.3'),
			('sale', 'uninstalled', NULL);
		INSERT INTO ir_mail_server (name, smtp_port, smtp_host, smtp_encryption, active, smtp_authentication)
			VALUES ('customers', 587, 'smtp.example.com', 'starttls', true, 'login');
		INSERT INTO ir_cron (name, active) VALUES ('autovacuum', true), ('send invoices', true);
		INSERT INTO ir_model_data (res_id, model, name, module) VALUES (1, 'ir.cron', 'autovacuum_job', 'base');
		INSERT INTO ir_act_server (state, webhook_url) VALUES ('webhook', 'https://hooks.example.com/x');
		INSERT INTO res_partner (name, note, image)
			SELECT 'partner ' || i, E'tab\there, newline\nthere, backslash \\ and quote '' ' || i, decode(md5(i::text), 'hex')
			FROM generate_series(1, 5000) i;`)
	if err != nil {
		h.t.Fatalf("seed %s: %v", e.Name, err)
	}
}

// tableSums is a checksum of every seeded table's rows.
func (h *harness) tableSums(e store.Environment) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	conn := h.connectAs(e)
	for _, t := range []string{"ir_config_parameter", "ir_module_module", "ir_mail_server", "ir_cron", "res_partner"} {
		var sum string
		err := conn.QueryRow(context.Background(), fmt.Sprintf(
			"SELECT count(*) || ':' || coalesce(md5(string_agg(t::text, '|' ORDER BY t.id)), '') FROM %s t", t)).Scan(&sum)
		if err != nil {
			h.t.Fatalf("checksum of %s in %s: %v", t, e.Name, err)
		}
		out[t] = sum
	}
	return out
}

// filestore is the environment's filestore folder, as Odoo lays it out.
func (h *harness) filestore(e store.Environment) string {
	return filepath.Join(h.envDir(e.Name), "filestore", "filestore", e.DBName)
}

// writeFiles writes files (path → content) under the filestore.
func (h *harness) writeFiles(e store.Environment, files map[string]string) {
	h.t.Helper()
	for rel, content := range files {
		p := filepath.Join(h.filestore(e), rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			h.t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			h.t.Fatal(err)
		}
	}
}

// fileHashes hashes every file under the filestore.
func (h *harness) fileHashes(e store.Environment) map[string]string {
	h.t.Helper()
	out := map[string]string{}
	root := h.filestore(e)
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		rel, _ := filepath.Rel(root, p)
		out[rel] = hex.EncodeToString(sum[:])
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		h.t.Fatal(err)
	}
	return out
}

// backup runs a backup job of the environment and returns the backup.
func (h *harness) backup(name, format string) store.Backup {
	h.t.Helper()
	j, err := h.p.EnqueueWith(context.Background(), h.env(name), provisioner.KindBackup, provisioner.BackupParams{Kind: "manual", Format: format}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	h.runOne()
	h.wantSucceeded(h.job(j.ID))
	bs, err := h.st.ListBackups(context.Background(), name, 1)
	if err != nil || len(bs) != 1 {
		h.t.Fatalf("backups of %s: %v, %v", name, bs, err)
	}
	return bs[0]
}

// restore runs a restore job of backup b into target and returns the job.
func (h *harness) restore(b store.Backup, target string, neutralize bool) store.Job {
	h.t.Helper()
	j, err := h.p.EnqueueWith(context.Background(), h.env(target), provisioner.KindRestore,
		provisioner.RestoreParams{BackupID: b.ID, Target: target, Neutralize: neutralize}, "test")
	if err != nil {
		h.t.Fatal(err)
	}
	h.runOne()
	return h.job(j.ID)
}

// databases lists the primary's databases.
func (h *harness) databases(name string) []string {
	h.t.Helper()
	out, err := h.rt.Exec(context.Background(), primary(name), nil, "psql", "-X", "-A", "-t", "-d", "postgres", "-c",
		"SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1")
	if err != nil {
		h.t.Fatal(err)
	}
	return strings.Fields(string(out))
}

// TestBackupAndRestore backs up an environment's rows and files, changes
// both, restores, and finds everything as it was at backup time: in both
// formats.
func TestBackupAndRestore(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("shop")
	h.seedOdooish(e, "https://shop.example.com")
	h.writeFiles(e, map[string]string{
		"ab/ab12cd": "an invoice", "ab/ab99ff": strings.Repeat("image bytes ", 10000), "0f/0f0f0f": "",
	})
	wantRows, wantFiles := h.tableSums(e), h.fileHashes(e)

	for _, format := range []string{"zip", "dump"} {
		t.Run(format, func(t *testing.T) {
			b := h.backup("shop", format)
			if b.Kind != store.BackupManual || b.Format != format || b.SizeBytes <= 0 || len(b.SHA256) != 64 {
				t.Fatalf("backup row: %+v", b)
			}
			path := filepath.Join(h.backups, filepath.FromSlash(b.File))
			if st, err := os.Stat(path); err != nil || st.Size() != b.SizeBytes {
				t.Fatalf("archive %s: %v (size %d recorded)", path, err, b.SizeBytes)
			}
			if temps, _ := filepath.Glob(filepath.Join(h.backups, "shop", ".tmp-*")); len(temps) > 0 {
				t.Errorf("temporary files left: %v", temps)
			}

			// Change rows and files after the backup.
			if _, err := h.connectAs(e).Exec(t.Context(), `DELETE FROM res_partner WHERE id % 3 = 0;
				UPDATE ir_config_parameter SET value = 'changed' WHERE key = 'web.base.url';
				INSERT INTO res_partner (name) VALUES ('written after the backup')`); err != nil {
				t.Fatal(err)
			}
			h.writeFiles(e, map[string]string{"ab/ab12cd": "changed", "cd/cdnew": "new file"})
			os.Remove(filepath.Join(h.filestore(e), "ab", "ab99ff"))
			if maps := h.tableSums(e); maps["res_partner"] == wantRows["res_partner"] {
				t.Fatal("the change did not change the checksum")
			}

			j := h.restore(b, "shop", false)
			h.wantSucceeded(j)
			if got := h.tableSums(e); !maps.Equal(got, wantRows) {
				t.Errorf("rows after the restore:\n%v\nwant\n%v", got, wantRows)
			}
			if got := h.fileHashes(e); !maps.Equal(got, wantFiles) {
				t.Errorf("files after the restore:\n%v\nwant\n%v", got, wantFiles)
			}
			if dbs := h.databases("shop"); !slices.Equal(dbs, []string{"postgres", "shop"}) {
				t.Errorf("databases after the restore: %v, want postgres and shop only", dbs)
			}
			if left, _ := filepath.Glob(h.filestore(e) + ".pgdeck-*"); len(left) > 0 {
				t.Errorf("restore folders left: %v", left)
			}
			var owner string
			if err := h.connectAs(e).QueryRow(t.Context(), "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").Scan(&owner); err != nil || owner != e.DBUser {
				t.Errorf("owner of the restored database: %q, %v", owner, err)
			}
			bs, _ := h.st.ListBackups(t.Context(), "shop", 0)
			if bs[0].Kind != store.BackupPreRestore || bs[0].State != store.BackupSucceeded {
				t.Errorf("newest backup after the restore: %s %s, want a succeeded pre-restore one", bs[0].Kind, bs[0].State)
			}
		})
	}

	t.Run("the archive restores with plain tools", func(t *testing.T) {
		b := h.backup("shop", "zip")
		dir := t.TempDir()
		if out, err := exec.Command("unzip", "-q", filepath.Join(h.backups, b.File), "-d", dir).CombinedOutput(); err != nil {
			t.Fatalf("unzip (apt-get install -y unzip): %v: %s", err, out)
		}
		if err := os.Chmod(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		dump, err := os.ReadFile(filepath.Join(dir, "dump.sql"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := h.rt.Exec(t.Context(), primary("shop"), nil, "createdb", "plain"); err != nil {
			t.Fatal(err)
		}
		if out, err := h.rt.Exec(t.Context(), primary("shop"), dump, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=0", "-d", "plain"); err != nil {
			t.Fatalf("psql dump.sql: %v: %s", err, out)
		}
		out, err := h.rt.Exec(t.Context(), primary("shop"), nil, "psql", "-X", "-A", "-t", "-d", "plain", "-c",
			"SELECT count(*) || ':' || md5(string_agg(t::text, '|' ORDER BY t.id)) FROM res_partner t")
		if err != nil || strings.TrimSpace(string(out)) != wantRows["res_partner"] {
			t.Errorf("res_partner restored with psql: %q, %v; want %q", out, err, wantRows["res_partner"])
		}
		if _, err := os.Stat(filepath.Join(dir, "filestore", "ab", "ab12cd")); err != nil {
			t.Errorf("the filestore is not where Odoo puts it: %v", err)
		}
		h.rt.Exec(t.Context(), primary("shop"), nil, "dropdb", "plain")
	})
}

// TestVerifyAndFailedBackup verifies a good backup, and takes one of a
// database that is gone: it fails with the reason and leaves no archive.
func TestVerifyAndFailedBackup(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("shop")
	h.seedOdooish(e, "https://shop.example.com")
	b := h.backup("shop", "dump")
	vj, err := h.p.EnqueueWith(t.Context(), h.env("shop"), provisioner.KindVerifyBackup, provisioner.VerifyParams{BackupID: b.ID}, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.runOne()
	h.wantSucceeded(h.job(vj.ID))
	if got, _ := h.st.BackupByID(t.Context(), b.ID); got.VerifiedAt == nil || got.VerifyError != "" {
		t.Errorf("verified backup: %+v", got)
	}

	if err := h.rt.Stop(t.Context(), primary("shop")); err != nil {
		t.Fatal(err)
	}
	j, err := h.p.EnqueueWith(t.Context(), h.env("shop"), provisioner.KindBackup, provisioner.BackupParams{}, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.runOne()
	if j = h.job(j.ID); j.State != store.JobFailed {
		t.Fatalf("backup of a stopped database: %s", j.State)
	}
	bs, _ := h.st.ListBackups(t.Context(), "shop", 0)
	failed := bs[0]
	if failed.State != store.BackupFailed || failed.Error == "" || failed.SizeBytes != 0 {
		t.Errorf("the failed backup: %+v", failed)
	}
	if _, err := os.Stat(filepath.Join(h.backups, failed.File)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a failed backup's archive exists: %v", err)
	}
	if temps, _ := filepath.Glob(filepath.Join(h.backups, "shop", ".tmp-*")); len(temps) > 0 {
		t.Errorf("temporary files left: %v", temps)
	}
}

// TestRestoreRefusesABadArchiveAndTouchesNothing corrupts a backup's
// archive: the restore fails before anything changes.
func TestRestoreRefusesABadArchiveAndTouchesNothing(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("shop")
	h.seedOdooish(e, "https://shop.example.com")
	h.writeFiles(e, map[string]string{"ab/ab12cd": "an invoice"})
	b := h.backup("shop", "zip")
	if _, err := h.connectAs(e).Exec(t.Context(), "INSERT INTO res_partner (name) VALUES ('after the backup')"); err != nil {
		t.Fatal(err)
	}
	wantRows, wantFiles := h.tableSums(e), h.fileHashes(e)

	// One byte of the dump's compressed data changed.
	path := filepath.Join(h.backups, b.File)
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := strings.Index(string(data), "dump.sql") + 200
	data[i] ^= 0xff
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	vj, err := h.p.EnqueueWith(t.Context(), h.env("shop"), provisioner.KindVerifyBackup, provisioner.VerifyParams{BackupID: b.ID}, "test")
	if err != nil {
		t.Fatal(err)
	}
	h.runOne()
	if vj = h.job(vj.ID); vj.State != store.JobFailed {
		t.Errorf("verify of a corrupted archive: %s", vj.State)
	}
	if got, _ := h.st.BackupByID(t.Context(), b.ID); got.VerifyError == "" || got.VerifiedAt == nil {
		t.Errorf("the corrupted backup's check was not recorded: %+v", got)
	}
	j := h.restore(b, "shop", false)
	if j.State != store.JobFailed || !strings.Contains(j.Error, "cannot be restored") {
		t.Fatalf("restore of a corrupted archive: %s, %q", j.State, j.Error)
	}
	if got := h.tableSums(e); !maps.Equal(got, wantRows) {
		t.Errorf("rows changed by a refused restore")
	}
	if got := h.fileHashes(e); !maps.Equal(got, wantFiles) {
		t.Errorf("files changed by a refused restore")
	}
	if dbs := h.databases("shop"); !slices.Equal(dbs, []string{"postgres", "shop"}) {
		t.Errorf("databases after a refused restore: %v", dbs)
	}
}

// TestCloneIntoAnotherEnvironment restores production's backup into
// staging, neutralized: staging gets production's rows and files with its
// own web.base.url, a new uuid and secret, mail servers and crons off;
// production is unchanged.
func TestCloneIntoAnotherEnvironment(t *testing.T) {
	h := newHarness(t)
	prod := h.deploy("prod")
	h.seedOdooish(prod, "https://erp.example.com")
	h.writeFiles(prod, map[string]string{"aa/aa11": "contract.pdf"})
	stg := h.deploy("stg")
	h.seedOdooish(stg, "https://staging.example.com")
	b := h.backup("prod", "zip")
	prodRows, prodFiles := h.tableSums(prod), h.fileHashes(prod)

	j := h.restore(b, "stg", true)
	h.wantSucceeded(j)
	if got := h.tableSums(prod); !maps.Equal(got, prodRows) {
		t.Error("the clone changed production's rows")
	}
	if got := h.fileHashes(prod); !maps.Equal(got, prodFiles) {
		t.Error("the clone changed production's files")
	}
	if got := h.fileHashes(stg); !maps.Equal(got, prodFiles) {
		t.Errorf("staging's files %v, want production's %v", got, prodFiles)
	}
	conn := h.connectAs(stg)
	param := func(key string) string {
		var v string
		if err := conn.QueryRow(t.Context(), "SELECT value FROM ir_config_parameter WHERE key = $1", key).Scan(&v); err != nil {
			t.Fatalf("%s: %v", key, err)
		}
		return v
	}
	if got := param("web.base.url"); got != "https://staging.example.com" {
		t.Errorf("staging's web.base.url = %q, want its own", got)
	}
	if got := param("database.uuid"); got == "uuid-of-prod" || got == "uuid-of-stg" {
		t.Errorf("database.uuid = %q: not a new one", got)
	}
	if got := param("database.secret"); got == "secret-of-prod" {
		t.Error("database.secret is production's")
	}
	if got := param("database.is_neutralized"); got != "true" {
		t.Errorf("database.is_neutralized = %q", got)
	}
	var active int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM ir_mail_server WHERE active AND smtp_host <> 'invalid'").Scan(&active); err != nil || active != 0 {
		t.Errorf("active real mail servers in the clone: %d, %v", active, err)
	}
	var crons []string
	rows, _ := conn.Query(t.Context(), "SELECT name FROM ir_cron WHERE active ORDER BY 1")
	for rows.Next() {
		var n string
		rows.Scan(&n)
		crons = append(crons, n)
	}
	if !slices.Equal(crons, []string{"autovacuum"}) {
		t.Errorf("active crons in the clone: %v, want autovacuum only", crons)
	}
	var partners int
	if err := conn.QueryRow(t.Context(), "SELECT count(*) FROM res_partner").Scan(&partners); err != nil || partners != 5000 {
		t.Errorf("partners in the clone: %d, %v", partners, err)
	}
}

// TestRestoreResumesAfterAStop leaves what a restore cut short before and
// after its swap would leave, and checks that the next attempt rolls back
// (before) or finishes (after), the environment serving whole data either way.
func TestRestoreResumesAfterAStop(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("shop")
	h.seedOdooish(e, "https://shop.example.com")
	b := h.backup("shop", "zip")
	want := h.tableSums(e)
	staging, previous := fmt.Sprintf("pgdeck_restore_%d", e.ID), fmt.Sprintf("pgdeck_previous_%d", e.ID)
	psql := func(sql string) {
		t.Helper()
		if out, err := h.rt.Exec(t.Context(), primary("shop"), nil, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql); err != nil {
			t.Fatalf("%s: %v: %s", sql, err, out)
		}
	}

	t.Run("cut short before the swap: rolled back, then restored", func(t *testing.T) {
		psql("CREATE DATABASE " + staging + " OWNER " + e.DBUser)
		h.writeFiles(e, map[string]string{"../" + e.DBName + ".pgdeck-restore/xx/half": "half"})
		if _, err := h.connectAs(e).Exec(t.Context(), "DELETE FROM res_partner WHERE id < 100"); err != nil {
			t.Fatal(err)
		}
		h.wantSucceeded(h.restore(b, "shop", false))
		if got := h.tableSums(e); !maps.Equal(got, want) {
			t.Errorf("rows: %v, want %v", got, want)
		}
		if dbs := h.databases("shop"); !slices.Equal(dbs, []string{"postgres", "shop"}) {
			t.Errorf("databases: %v", dbs)
		}
	})

	t.Run("cut short after the swap: finished without restoring again", func(t *testing.T) {
		// The swap of an attempt that restored the backup was done: the
		// previous data (here, an empty database) is aside.
		psql("CREATE DATABASE " + previous + " OWNER " + e.DBUser)
		h.writeFiles(e, map[string]string{"../" + e.DBName + ".pgdeck-previous/yy/old": "old"})
		j, err := h.p.EnqueueWith(t.Context(), h.env("shop"), provisioner.KindRestore, provisioner.RestoreParams{BackupID: b.ID, Target: "shop"}, "test")
		if err != nil {
			t.Fatal(err)
		}
		before, _ := h.st.ListBackups(t.Context(), "shop", 0)
		h.runOne()
		h.wantSucceeded(h.job(j.ID))
		after, _ := h.st.ListBackups(t.Context(), "shop", 0)
		if len(after) != len(before) {
			t.Errorf("the finished restore took another backup (%d → %d): it started over", len(before), len(after))
		}
		if dbs := h.databases("shop"); !slices.Equal(dbs, []string{"postgres", "shop"}) {
			t.Errorf("databases: %v, want the previous one dropped", dbs)
		}
		if left, _ := filepath.Glob(h.filestore(e) + ".pgdeck-*"); len(left) > 0 {
			t.Errorf("restore folders left: %v", left)
		}
		if got := h.tableSums(e); !maps.Equal(got, want) {
			t.Errorf("rows: %v, want %v", got, want)
		}
	})
}

// TestScheduledBackupsAndRetention queues the schedule's backups over
// simulated days: one a day after its time, none twice, and the retention
// keeps what the schedule says while manual backups stay.
func TestScheduledBackupsAndRetention(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("shop")
	if _, err := h.st.SaveBackupSchedule(t.Context(), store.BackupSchedule{EnvironmentID: e.ID, Enabled: true,
		TimeOfDay: "02:00", KeepDaily: 2, KeepWeekly: 0, KeepMonthly: 0}); err != nil {
		t.Fatal(err)
	}
	manual := h.backup("shop", "zip")
	day := time.Date(2030, 3, 1, 0, 0, 0, 0, time.UTC)
	for d := range 4 {
		now := day.AddDate(0, 0, d)
		// Before its time: nothing.
		if err := h.p.QueueDueBackups(t.Context(), now.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		if h.p.RunOne(t.Context()) {
			t.Fatalf("day %d, 01:00: a job ran before the schedule's time", d)
		}
		for range 2 { // twice at 03:00: one backup
			if err := h.p.QueueDueBackups(t.Context(), now.Add(3*time.Hour)); err != nil {
				t.Fatal(err)
			}
		}
		h.runOne()
		if h.p.RunOne(t.Context()) {
			t.Fatalf("day %d: a second job ran", d)
		}
	}
	bs, err := h.st.ListBackups(t.Context(), "shop", 0)
	if err != nil {
		t.Fatal(err)
	}
	var scheduled, manuals int
	for _, b := range bs {
		switch b.Kind {
		case store.BackupScheduled:
			scheduled++
			if b.State != store.BackupSucceeded {
				t.Errorf("scheduled backup %s: %s %s", b.File, b.State, b.Error)
			}
		case store.BackupManual:
			manuals++
		}
	}
	// Four days' backups were taken on the same real day, so the daily
	// rule keeps the newest of that day: the retention counts days.
	if scheduled != 1 || manuals != 1 {
		t.Errorf("after 4 scheduled backups (keep 2 daily, all on one real day): %d scheduled, %d manual; want 1 and 1", scheduled, manuals)
	}
	if _, err := os.Stat(filepath.Join(h.backups, manual.File)); err != nil {
		t.Errorf("the manual backup's archive: %v", err)
	}
	files, _ := filepath.Glob(filepath.Join(h.backups, "shop", "*.zip"))
	if len(files) != 2 {
		t.Errorf("archives on disk: %v, want 2", files)
	}
}

// TestDeleteKeepsAPreDeleteBackup deletes an environment: its data is kept
// in a pre-delete backup that outlives it.
func TestDeleteKeepsAPreDeleteBackup(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("gone")
	h.seedOdooish(e, "https://gone.example.com")
	h.succeed("gone", provisioner.KindDelete)
	bs, err := h.st.ListBackups(t.Context(), "gone", 0)
	if err != nil || len(bs) != 1 {
		t.Fatalf("backups of the deleted environment: %v, %v", bs, err)
	}
	b := bs[0]
	if b.Kind != store.BackupPreDelete || b.State != store.BackupSucceeded || b.EnvID != nil {
		t.Errorf("pre-delete backup: kind %s, state %s, env %v", b.Kind, b.State, b.EnvID)
	}
	zr, err := zip.OpenReader(filepath.Join(h.backups, b.File))
	if err != nil {
		t.Fatal(err)
	}
	defer zr.Close()
	var names []string
	for _, f := range zr.File {
		names = append(names, f.Name)
	}
	if !slices.Contains(names, "dump.sql") || !slices.Contains(names, "manifest.json") || !slices.Contains(names, "config/odoo.conf") {
		t.Errorf("pre-delete archive holds %v", names)
	}
}

// TestImportRefusesHostileArchives imports archives that must never be
// restored: each is refused with the reason, and nothing is recorded.
func TestImportRefusesHostileArchives(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("shop")
	dir := t.TempDir()
	write := func(name string, entries map[string]string) string {
		p := filepath.Join(dir, name)
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		zw := zip.NewWriter(f)
		for n, c := range entries {
			w, err := zw.Create(n)
			if err != nil {
				t.Fatal(err)
			}
			io.WriteString(w, c)
		}
		zw.Close()
		f.Close()
		return p
	}
	manifest := `{"odoo_dump": "1", "db_name": "x", "version": "18.0", "version_info": [18, 0, 0, "final", 0, ""], "major_version": "18.0", "pg_version": "15.0", "modules": {"base": "18.0.1.3"}}`
	for name, entries := range map[string]map[string]string{
		"traversal.zip": {"dump.sql": "SELECT 1;\n", "manifest.json": manifest, "filestore/../../../etc/x": "x"},
		"no-dump.zip":   {"manifest.json": manifest},
		"odoo-17.zip":   {"dump.sql": "SELECT 1;\n", "manifest.json": strings.ReplaceAll(manifest, `"major_version": "18.0"`, `"major_version": "17.0"`)},
		"newer-pg.zip":  {"dump.sql": "SELECT 1;\n", "manifest.json": strings.ReplaceAll(manifest, `"15.0"`, `"17.0"`)},
		"not-a-zip.zip": nil,
	} {
		p := write(name, entries)
		if entries == nil {
			os.WriteFile(p, []byte("this is not a zip"), 0o600)
		}
		_, err := h.p.ImportBackup(t.Context(), e, p, false, "test")
		var refusal *backup.Error
		if !errors.As(err, &refusal) {
			t.Errorf("%s: error %v, want a refusal", name, err)
		}
	}
	if bs, _ := h.st.ListBackups(t.Context(), "shop", 0); len(bs) != 0 {
		t.Errorf("refused imports were recorded: %v", bs)
	}
}
