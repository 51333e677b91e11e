//go:build odoo

package main

import (
	"context"
	"crypto/sha1"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/internal/testkit"
)

// odooEnv is an environment as the API shows it, with what the Odoo tests read.
type odooEnv struct {
	Name         string `json:"name"`
	DesiredState string `json:"desired_state"`
	Port         *int   `json:"port"`
	Database     string `json:"database"`
	User         string `json:"user"`
	OdooConf     string `json:"odoo_conf"`
	Health       struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	} `json:"health"`
	LastJob *crashJob `json:"last_job"`
}

// odooBox is a real pgdeck serving with PGDECK_ODOO_USER, and a token.
type odooBox struct {
	*crashBox
	token string
	acct  odooAccount
	src   string
}

// startOdooBox starts the real pgdeck binary with Odoo's OS user configured,
// an owner and an API token; env adds PGDECK_* variables (another runtime,
// for one).
func startOdooBox(t *testing.T, env ...string) *odooBox {
	t.Helper()
	src := odooSource(t)
	acct := ensureOdooAccount(t)
	b := newCrashBox(t, buildPgdeck(t))
	b.env = append(b.env, "PGDECK_ODOO_USER="+acct.Name, "PGDECK_MONITOR_INTERVAL=1s")
	b.env = append(b.env, env...)
	b.start()
	b.cli("a long enough password\n", "user", "add", "--email", "ops@example.com", "--role", "owner")
	return &odooBox{crashBox: b, token: lastWord(b.cli("", "token", "add", "--email", "ops@example.com")), acct: acct, src: src}
}

// getEnv reads an environment through the API.
func (b *odooBox) getEnv(name string) odooEnv {
	b.t.Helper()
	var e odooEnv
	if code := b.api(http.MethodGet, "/api/v1/environments/"+name, b.token, "", &e); code != http.StatusOK {
		b.t.Fatalf("GET environment %s: %d", name, code)
	}
	return e
}

// waitJob waits for a job to end and fails the test unless it succeeded.
func (b *odooBox) waitJob(id int64) crashJob {
	b.t.Helper()
	deadline := time.Now().Add(3 * time.Minute)
	for {
		j := b.job(b.token, id)
		switch j.State {
		case "succeeded":
			return j
		case "failed":
			b.t.Fatalf("%s job %d failed: %s\n%s", j.Kind, id, j.Error, strings.Join(j.Log, "\n"))
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s job %d did not end: %+v", j.Kind, id, j)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitHealth waits until the environment's health shows status.
func (b *odooBox) waitHealth(name, status string) odooEnv {
	b.t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		e := b.getEnv(name)
		if e.Health.Status == status {
			return e
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("%s never showed %s: %+v", name, status, e.Health)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// action runs an environment action through the API and waits for its job.
func (b *odooBox) action(name, action string) {
	b.t.Helper()
	var j crashJob
	if code := b.api(http.MethodPost, "/api/v1/environments/"+name+"/actions/"+action, b.token, "", &j); code != http.StatusAccepted {
		b.t.Fatalf("%s %s: %d %+v", action, name, code, j)
	}
	b.waitJob(j.ID)
}

// createEnv creates an environment through the API, waits for its deploy
// and for Running, and returns it.
func (b *odooBox) createEnv(name string) odooEnv {
	b.t.Helper()
	var e odooEnv
	body := fmt.Sprintf(`{"name": %q, "odoo_version": "18.0", "stage": "staging", "plan": "pro"}`, name)
	if code := b.api(http.MethodPost, "/api/v1/environments", b.token, body, &e); code != http.StatusCreated || e.LastJob == nil {
		b.t.Fatalf("POST /api/v1/environments: %d %+v\n%s", code, e, b.logs)
	}
	b.waitJob(e.LastJob.ID)
	return b.waitHealth(name, "running")
}

// deleteEnv deletes an environment through the API and waits until it is gone.
func (b *odooBox) deleteEnv(name string) {
	b.t.Helper()
	var j crashJob
	if code := b.api(http.MethodDelete, "/api/v1/environments/"+name, b.token, "", &j); code != http.StatusAccepted {
		b.t.Fatalf("DELETE %s: %d", name, code)
	}
	b.waitJob(j.ID)
	if code := b.api(http.MethodGet, "/api/v1/environments/"+name, b.token, "", nil); code != http.StatusNotFound {
		b.t.Errorf("GET %s after its delete: %d, want 404", name, code)
	}
}

// odooConfValues reads odoo.conf as the tests (root) can.
func odooConfValues(t *testing.T, path string) map[string]string {
	t.Helper()
	return crashReadConf(t, path)
}

// connectWithConf opens a connection with odoo.conf's credentials.
func connectWithConf(t *testing.T, conf map[string]string, db string) *pgx.Conn {
	t.Helper()
	cfg, err := pgx.ParseConfig("sslmode=disable connect_timeout=10")
	if err != nil {
		t.Fatal(err)
	}
	port, _ := strconv.Atoi(conf["db_port"])
	cfg.Host, cfg.Port = conf["db_host"], uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, conf["db_user"], conf["db_password"]
	// odoo.conf may name PgBouncer in transaction mode, which carries no
	// prepared statement from one transaction to the next.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	conn, err := pgx.ConnectConfig(t.Context(), cfg)
	if err != nil {
		t.Fatalf("connect to %s with odoo.conf's credentials: %v", db, err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// installBase runs `odoo-bin -i base --stop-after-init` on the environment
// and checks that base is installed.
func (b *odooBox) installBase(e odooEnv) {
	b.t.Helper()
	code, log := runOdoo(b.t, b.src, b.acct, "install-base", 5*time.Minute,
		"-c", e.OdooConf, "-i", "base", "--without-demo=all", "--stop-after-init")
	if code != 0 {
		b.t.Fatalf("odoo-bin -i base exited %d:\n%s", code, tail(log, 4000))
	}
	if errs := odooErrors(log); len(errs) > 0 {
		b.t.Errorf("installing base logged errors:\n%s", strings.Join(errs, "\n"))
	}
	var state string
	conn := connectWithConf(b.t, odooConfValues(b.t, e.OdooConf), e.Database)
	if err := conn.QueryRow(b.t.Context(), "SELECT state FROM ir_module_module WHERE name = 'base'").Scan(&state); err != nil || state != "installed" {
		b.t.Fatalf("ir_module_module base: %q, %v; want installed", state, err)
	}
}

// TestOdooServesOnAnEnvironment is the real-Odoo end-to-end test of issue
// #6: Odoo 18 installs, serves, signs in, writes records and attachments on
// an environment made through pgdeck's API, with pgdeck's odoo.conf as
// written, and keeps serving across Stop / Start / Restart and a Redeploy.
func TestOdooServesOnAnEnvironment(t *testing.T) {
	b := startOdooBox(t)
	e := b.createEnv("shop")
	if e.OdooConf == "" {
		t.Fatalf("the API names no odoo.conf: %+v", e)
	}
	conf := odooConfValues(t, e.OdooConf)

	t.Run("an environment deployed before the postgres rule is fixed by a redeploy", func(t *testing.T) {
		// pg_hba.conf as pgdeck wrote it before: the role reaches only its
		// own database. Odoo then stops at once.
		hbaPath := filepath.Join(b.envData("shop"), "pg_hba.conf")
		hba := readFile(hbaPath)
		old := strings.Replace(hba, "host shop,postgres odoo_shop", "host shop odoo_shop", 1)
		if old == hba {
			t.Fatalf("pg_hba.conf has no line for the role and postgres:\n%s", hba)
		}
		if err := os.WriteFile(hbaPath, []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		reloadUntil(t, b.envData("shop"), func() bool {
			cfg, _ := pgx.ParseConfig("sslmode=disable connect_timeout=5")
			port, _ := strconv.Atoi(conf["db_port"])
			cfg.Host, cfg.Port, cfg.Database, cfg.User, cfg.Password = conf["db_host"], uint16(port), "postgres", conf["db_user"], conf["db_password"]
			c, err := pgx.ConnectConfig(t.Context(), cfg)
			if err == nil {
				c.Close(t.Context())
			}
			return err != nil && strings.Contains(err.Error(), "pg_hba.conf rejects")
		})
		code, log := runOdoo(t, b.src, b.acct, "old-hba", time.Minute, "-c", e.OdooConf, "--stop-after-init")
		if code == 0 || !strings.Contains(log, `pg_hba.conf rejects connection for host "127.0.0.1", user "odoo_shop", database "postgres"`) {
			t.Fatalf("with the old pg_hba.conf Odoo exited %d, want it refused on postgres:\n%s", code, tail(log, 2000))
		}
		b.action("shop", "redeploy")
		b.waitHealth("shop", "running")
		code, log = runOdoo(t, b.src, b.acct, "after-redeploy", time.Minute, "-c", e.OdooConf, "--stop-after-init")
		if code != 0 {
			t.Fatalf("after the redeploy Odoo exited %d:\n%s", code, tail(log, 2000))
		}
	})

	b.installBase(e)
	odoo := startOdoo(t, b.src, b.acct, e.OdooConf)
	rpc := odoo.Client()
	if _, err := rpc.Authenticate(e.Database, "admin", "admin"); err != nil {
		t.Fatalf("sign in as admin: %v", err)
	}

	t.Run("Odoo listens on its cluster's postgres database", func(t *testing.T) {
		// Its cron threads keep a connection on `postgres` that LISTENs for
		// cron_trigger (its bus does the same for imbus once a browser
		// subscribes), which pg_hba.conf now lets the role reach.
		conn := connectWithConf(t, conf, "postgres")
		deadline := time.Now().Add(30 * time.Second)
		for {
			var n int
			err := conn.QueryRow(t.Context(), `SELECT count(*) FROM pg_stat_activity
				WHERE datname = 'postgres' AND usename = current_user AND pid <> pg_backend_pid()`).Scan(&n)
			if err != nil {
				t.Fatal(err)
			}
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("Odoo's role holds no session on the postgres database")
			}
			time.Sleep(250 * time.Millisecond)
		}
	})

	var partnerID int
	if err := rpc.CallKW("res.partner", "create", []any{map[string]any{"name": "Written through pgdeck"}}, nil, &partnerID); err != nil {
		t.Fatalf("create a res.partner: %v", err)
	}
	readPartner := func(c *odooClient) (string, error) {
		var rows []struct {
			Name string `json:"name"`
		}
		if err := c.CallKW("res.partner", "read", []any{[]int{partnerID}, []string{"name"}}, nil, &rows); err != nil {
			return "", err
		}
		if len(rows) != 1 {
			return "", fmt.Errorf("read partner %d: %d rows", partnerID, len(rows))
		}
		return rows[0].Name, nil
	}
	if name, err := readPartner(rpc); err != nil || name != "Written through pgdeck" {
		t.Fatalf("read the partner back: %q, %v", name, err)
	}

	t.Run("an attachment lands in the filestore", func(t *testing.T) {
		content := []byte("attachment bytes written through Odoo " + time.Now().String())
		var attID int
		err := rpc.CallKW("ir.attachment", "create", []any{map[string]any{
			"name": "hello.txt", "datas": base64.StdEncoding.EncodeToString(content),
			"res_model": "res.partner", "res_id": partnerID,
		}}, nil, &attID)
		if err != nil {
			t.Fatalf("upload an attachment: %v", err)
		}
		var rows []struct {
			StoreFname string `json:"store_fname"`
		}
		if err := rpc.CallKW("ir.attachment", "read", []any{[]int{attID}, []string{"store_fname"}}, nil, &rows); err != nil || len(rows) != 1 {
			t.Fatalf("read the attachment: %v %v", rows, err)
		}
		sum := sha1.Sum(content)
		if want := hex.EncodeToString(sum[:]); !strings.HasSuffix(rows[0].StoreFname, want) {
			t.Errorf("store_fname %q is not the content's sha1 %s", rows[0].StoreFname, want)
		}
		path := filepath.Join(conf["data_dir"], "filestore", e.Database, rows[0].StoreFname)
		got, err := os.ReadFile(path)
		if err != nil || string(got) != string(content) {
			t.Fatalf("the attachment is not in pgdeck's filestore at %s: %v", path, err)
		}
		st, _ := os.Stat(path)
		if uid := st.Sys().(*syscall.Stat_t).Uid; int(uid) != b.acct.UID {
			t.Errorf("the attachment file belongs to uid %d, want Odoo's user %d", uid, b.acct.UID)
		}
	})

	if errs := odooErrors(odoo.Log()); len(errs) > 0 {
		t.Errorf("Odoo logged errors while serving:\n%s", strings.Join(errs, "\n"))
	}

	// Stop / Start / Restart while Odoo serves: its next request after
	// Running again succeeds, on connections Odoo opens by itself.
	t.Run("Odoo serves again after Stop, Start and Restart", func(t *testing.T) {
		b.action("shop", "stop")
		b.waitHealth("shop", "stopped")
		if _, err := readPartner(rpc); err == nil {
			t.Error("Odoo read a record while its database was stopped")
		}
		b.action("shop", "start")
		b.waitHealth("shop", "running")
		if name, err := readPartner(rpc); err != nil || name != "Written through pgdeck" {
			t.Fatalf("first request after Start: %q, %v", name, err)
		}
		b.action("shop", "restart")
		b.waitHealth("shop", "running")
		if name, err := readPartner(rpc); err != nil || name != "Written through pgdeck" {
			t.Fatalf("first request after Restart: %q, %v", name, err)
		}
	})

	t.Run("a redeploy while Odoo is connected loses no committed record", func(t *testing.T) {
		var id int
		if err := rpc.CallKW("res.partner", "create", []any{map[string]any{"name": "Committed before the redeploy"}}, nil, &id); err != nil {
			t.Fatal(err)
		}
		b.action("shop", "redeploy")
		b.waitHealth("shop", "running")
		var n int
		if err := rpc.CallKW("res.partner", "search_count", []any{[]any{[]any{"name", "=", "Committed before the redeploy"}}}, nil, &n); err != nil || n != 1 {
			t.Fatalf("after the redeploy: %d records, %v; want 1", n, err)
		}
		fresh := odoo.Client()
		if _, err := fresh.Authenticate(e.Database, "admin", "admin"); err != nil {
			t.Fatalf("sign in after the redeploy: %v", err)
		}
	})

	odoo.Stop()
	b.deleteEnv("shop")
	if pids := testkit.PostgresUnder(filepath.Join(b.data, "envs")); len(pids) > 0 {
		t.Errorf("the environment's PostgreSQL processes outlived its delete: %v", pids)
	}
}

// reloadUntil makes the cluster in dataDir reload its configuration
// (SIGHUP to its postmaster) and waits until settled reports the new rules.
func reloadUntil(t *testing.T, dataDir string, settled func() bool) {
	t.Helper()
	pid, err := strconv.Atoi(strings.SplitN(readFile(filepath.Join(dataDir, "postmaster.pid")), "\n", 2)[0])
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	for i := 0; !settled(); i++ {
		if i > 100 {
			t.Fatal("the cluster did not take the new configuration after SIGHUP")
		}
		time.Sleep(100 * time.Millisecond)
	}
}
