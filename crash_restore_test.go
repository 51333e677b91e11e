package main

import (
	"context"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// TestCrashDuringRestore kills pgdeck (SIGKILL) while a restore loads the
// database: the environment still serves its data from before the restore,
// and the next start rolls the cut-short restore back and runs it again to
// its end.
func TestCrashDuringRestore(t *testing.T) {
	b := newCrashBox(t, buildPgdeck(t))
	b.start()
	b.cli("a long enough password\n", "user", "add", "--email", "ops@example.com", "--role", "owner")
	out := b.cli("", "token", "add", "--email", "ops@example.com")
	fields := strings.Fields(strings.TrimSpace(out)[strings.LastIndex(strings.TrimSpace(out), "\n")+1:])
	token := fields[len(fields)-1]

	waitJob := func(id int64, what string) crashJob {
		t.Helper()
		j := b.job(token, id)
		for i := 0; j.State == "queued" || j.State == "running"; i++ {
			if i > 3000 {
				t.Fatalf("%s did not end: %+v\n%s", what, j, b.logs)
			}
			time.Sleep(50 * time.Millisecond)
			j = b.job(token, id)
		}
		if j.State != "succeeded" {
			t.Fatalf("%s: %s, %q\n%s", what, j.State, j.Error, strings.Join(j.Log, "\n"))
		}
		return j
	}
	var created map[string]any
	if code := b.api(http.MethodPost, "/api/v1/environments", token, `{"name": "shop", "odoo_version": "18.0", "stage": "production", "plan": "pro"}`, &created); code != http.StatusCreated {
		t.Fatalf("create: %d %v", code, created)
	}
	waitJob(1, "the deploy")

	conf := crashReadConf(t, filepath.Join(b.data, "envs", "shop", "odoo.conf"))
	port, _ := strconv.Atoi(conf["db_port"])
	ctx := t.Context()
	connect := func() *pgx.Conn {
		t.Helper()
		cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=10")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Port = uint16(port)
		cfg.Database, cfg.User, cfg.Password = conf["db_name"], conf["db_user"], conf["db_password"]
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("connect to shop: %v", err)
		}
		t.Cleanup(func() { conn.Close(context.Background()) })
		return conn
	}
	// Enough rows that loading them takes a few seconds.
	if _, err := connect().Exec(ctx, `CREATE TABLE ir_module_module (id serial PRIMARY KEY, name text, state text, latest_version text);
		CREATE TABLE res_partner (id serial PRIMARY KEY, name text, note text);
		INSERT INTO res_partner (name, note) SELECT 'partner ' || i, repeat(md5(i::text), 8) FROM generate_series(1, 400000) i;
		CREATE INDEX ON res_partner (name);`); err != nil {
		t.Fatal(err)
	}
	var job crashJob
	if code := b.api(http.MethodPost, "/api/v1/environments/shop/backups", token, "", &job); code != http.StatusAccepted {
		t.Fatalf("backup: %d", code)
	}
	waitJob(job.ID, "the backup")
	var list struct {
		Backups []struct {
			ID   int64  `json:"id"`
			Kind string `json:"kind"`
		} `json:"backups"`
	}
	b.api(http.MethodGet, "/api/v1/environments/shop/backups", token, "", &list)
	backups := list.Backups
	if len(backups) != 1 {
		t.Fatalf("backups: %+v", backups)
	}
	// Written after the backup: there before the restore, gone after it.
	if _, err := connect().Exec(ctx, "INSERT INTO res_partner (name) VALUES ('after the backup')"); err != nil {
		t.Fatal(err)
	}
	count := func(conn *pgx.Conn) (rows, marker int) {
		t.Helper()
		if err := conn.QueryRow(ctx, "SELECT count(*), count(*) FILTER (WHERE name = 'after the backup') FROM res_partner").Scan(&rows, &marker); err != nil {
			t.Fatalf("count: %v", err)
		}
		return rows, marker
	}

	if code := b.api(http.MethodPost, "/api/v1/environments/shop/backups/"+strconv.FormatInt(backups[0].ID, 10)+"/restore", token, "", &job); code != http.StatusAccepted {
		t.Fatalf("restore: %d", code)
	}
	j := b.job(token, job.ID)
	for i := 0; !(j.State == "running" && strings.HasPrefix(j.Step, "Restoring the database")); i++ {
		if j.State == "succeeded" || j.State == "failed" || i > 6000 {
			t.Fatalf("never saw the restore load the database: %+v\n%s", j, b.logs)
		}
		time.Sleep(10 * time.Millisecond)
		j = b.job(token, job.ID)
	}
	time.Sleep(300 * time.Millisecond) // well into the load
	b.kill(syscall.SIGKILL)
	t.Logf("killed pgdeck during %q", j.Step)

	// pgdeck is gone; the environment serves what it had.
	if rows, marker := count(connect()); rows != 400001 || marker != 1 {
		t.Errorf("with the restore cut short the environment holds %d rows (marker %d), want its 400001 with the marker", rows, marker)
	}

	b.start()
	j = waitJob(job.ID, "the resumed restore")
	if !strings.Contains(strings.Join(j.Log, "\n"), `pgdeck restarted during step "Restoring the database`) {
		t.Errorf("the job's log does not say it resumed:\n%s", strings.Join(j.Log, "\n"))
	}
	if rows, marker := count(connect()); rows != 400000 || marker != 0 {
		t.Errorf("after the restore the environment holds %d rows (marker %d), want the backup's 400000", rows, marker)
	}
	var dbs []string
	rows, err := connect().Query(ctx, "SELECT datname FROM pg_database WHERE datname LIKE 'pgdeck_%'")
	if err == nil {
		dbs, err = pgx.CollectRows(rows, pgx.RowTo[string])
	}
	if err != nil || len(dbs) != 0 {
		t.Errorf("restore databases left: %v, %v", dbs, err)
	}
}
