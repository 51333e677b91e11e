package provisioner_test

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

func poolerID(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePooler}
}

// savePooler stores PgBouncer settings as the operator's.
func (h *harness) savePooler(e store.Environment, s store.PoolerSettings) {
	h.t.Helper()
	if _, err := h.st.UpdateDatabaseSettings(context.Background(), e.ID, func(d *store.DatabaseSettings) error {
		d.PgBouncer = s
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// poolerPort returns the port recorded for the environment's PgBouncer, 0
// when none is.
func (h *harness) poolerPort(e store.Environment) int {
	h.t.Helper()
	is, err := h.st.Instances(context.Background(), e.ID)
	if err != nil {
		h.t.Fatal(err)
	}
	for _, in := range is {
		if in.Role == store.InstancePooler && in.Port != nil {
			return *in.Port
		}
	}
	return 0
}

// simple connects with the simple query protocol (what PgBouncer's console
// takes, and what transaction pooling carries).
func simple(ctx context.Context, port int, db, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cfg.Port = uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, user, password
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return pgx.ConnectConfig(ctx, cfg)
}

// console runs a SHOW command on the environment's PgBouncer console as
// pgdeck's monitoring role and returns the row whose first column is key.
func (h *harness) console(e store.Environment, command, key string) map[string]string {
	h.t.Helper()
	ctx := context.Background()
	pw, err := h.box.Open(e.MonitorPassword)
	if err != nil {
		h.t.Fatal(err)
	}
	conn, err := simple(ctx, h.poolerPort(e), "pgbouncer", e.MonitorUser, pw)
	if err != nil {
		h.t.Fatalf("PgBouncer's console as %s: %v", e.MonitorUser, err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, command)
	if err != nil {
		h.t.Fatalf("%s: %v", command, err)
	}
	defer rows.Close()
	// The simple protocol answers in text: the raw values are the figures.
	for rows.Next() {
		raw := rows.RawValues()
		if len(raw) == 0 || string(raw[0]) != key {
			continue
		}
		row := map[string]string{}
		for i, f := range rows.FieldDescriptions() {
			row[f.Name] = string(raw[i])
		}
		return row
	}
	h.t.Fatalf("%s has no row for %q", command, key)
	return nil
}

// TestPgBouncer: a redeploy with PgBouncer on starts a real PgBouncer that
// Odoo's credentials pass through, in transaction mode for the environment's
// database (more clients than the pool, no error) and session mode for
// `postgres` (LISTEN/NOTIFY works); a pool change reloads it without a
// restart; off, it is gone, its port free and odoo.conf points at
// PostgreSQL again.
func TestPgBouncer(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("pool")
	primaryPort := *e.Port

	h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 7, PoolMode: "transaction", MaxClientConn: 120})
	if h.poolerPort(e) != 0 {
		t.Fatal("saving the settings made a PgBouncer")
	}
	h.succeed("pool", provisioner.KindRedeploy)
	port := h.poolerPort(e)
	if port == 0 {
		t.Fatal("no pooler instance recorded after the redeploy")
	}
	st, err := h.rt.Status(ctx, poolerID("pool"))
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("pooler status %+v, %v; want running", st, err)
	}
	conf := readOdooConf(t, h.p.OdooConfPath("pool"))
	if conf["db_port"] != strconv.Itoa(port) || conf["db_host"] != "127.0.0.1" {
		t.Errorf("odoo.conf points at %s:%s, want PgBouncer's 127.0.0.1:%d", conf["db_host"], conf["db_port"], port)
	}
	if conf["db_maxconn"] == "" {
		t.Error("odoo.conf has no db_maxconn")
	}

	// The files: 0600, SCRAM verifiers only, never the password.
	dir := filepath.Dir(h.rt.InstancePath(poolerID("pool"), runtime.PgBouncerIniFile))
	for _, f := range []string{runtime.PgBouncerIniFile, runtime.PgBouncerAuthFile} {
		fi, err := os.Stat(filepath.Join(dir, f))
		if err != nil || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: %v, mode %v; want 0600", f, err, fi.Mode().Perm())
		}
		b, _ := os.ReadFile(filepath.Join(dir, f))
		if strings.Contains(string(b), h.password(e)) {
			t.Errorf("%s holds the role's password in clear", f)
		}
	}
	if b, _ := os.ReadFile(filepath.Join(dir, runtime.PgBouncerAuthFile)); !strings.Contains(string(b), `"`+e.DBUser+`" "SCRAM-SHA-256$`) {
		t.Errorf("auth_file has no SCRAM verifier for %s:\n%s", e.DBUser, b)
	}

	// Odoo's credentials, through PgBouncer.
	c, err := simple(ctx, port, conf["db_name"], conf["db_user"], conf["db_password"])
	if err != nil {
		t.Fatalf("connect through PgBouncer with odoo.conf's credentials: %v", err)
	}
	var db string
	if err := c.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil || db != e.DBName {
		t.Fatalf("through PgBouncer: %q, %v", db, err)
	}
	c.Close(ctx)
	if got := h.console(e, "SHOW DATABASES", e.DBName); got["pool_size"] != "7" || got["pool_mode"] != "transaction" {
		t.Errorf("SHOW DATABASES %s: pool_size %s, mode %s; want 7, transaction", e.DBName, got["pool_size"], got["pool_mode"])
	}
	if got := h.console(e, "SHOW DATABASES", "postgres"); got["pool_mode"] != "session" {
		t.Errorf("SHOW DATABASES postgres: mode %s, want session", got["pool_mode"])
	}

	t.Run("transaction mode holds more clients than the pool", func(t *testing.T) {
		const clients = 25
		var wg sync.WaitGroup
		errs := make(chan error, clients)
		for range clients {
			wg.Go(func() {
				c, err := simple(ctx, port, e.DBName, e.DBUser, h.password(e))
				if err != nil {
					errs <- err
					return
				}
				defer c.Close(ctx)
				for range 3 {
					if _, err := c.Exec(ctx, "SELECT pg_sleep(0.05)"); err != nil {
						errs <- err
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Errorf("a client through PgBouncer: %v", err)
		}
		var servers int
		if err := h.connectAs(e).QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND pid <> pg_backend_pid()`,
			e.DBName, e.DBUser).Scan(&servers); err != nil || servers > 7+5 {
			t.Errorf("PgBouncer opened %d server connections (%v); want at most the pool 7 + reserve 5", servers, err)
		}
	})

	t.Run("LISTEN/NOTIFY through the postgres entry", func(t *testing.T) {
		l, err := simple(ctx, port, "postgres", e.DBUser, h.password(e))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close(ctx)
		if _, err := l.Exec(ctx, "LISTEN imbus"); err != nil {
			t.Fatal(err)
		}
		n, err := simple(ctx, port, "postgres", e.DBUser, h.password(e))
		if err != nil {
			t.Fatal(err)
		}
		defer n.Close(ctx)
		if _, err := n.Exec(ctx, `NOTIFY imbus, '["pool", "hello"]'`); err != nil {
			t.Fatal(err)
		}
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		got, err := l.WaitForNotification(wctx)
		if err != nil || got.Channel != "imbus" || got.Payload != `["pool", "hello"]` {
			t.Fatalf("notification through PgBouncer: %+v, %v", got, err)
		}
	})

	t.Run("a pool change reloads PgBouncer", func(t *testing.T) {
		before, _ := h.rt.Status(ctx, poolerID("pool"))
		h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 9, PoolMode: "transaction", MaxClientConn: 120})
		j := h.succeed("pool", provisioner.KindRedeploy)
		after, _ := h.rt.Status(ctx, poolerID("pool"))
		if after.PID == 0 || after.PID != before.PID {
			t.Errorf("PgBouncer pid %d → %d; want the same process, reloaded", before.PID, after.PID)
		}
		if got := h.console(e, "SHOW DATABASES", e.DBName); got["pool_size"] != "9" {
			t.Errorf("pool_size after the reload = %s, want 9", got["pool_size"])
		}
		if log := strings.Join(h.jobLog(j.ID), "\n"); !strings.Contains(log, "reloaded PgBouncer") {
			t.Errorf("job log does not say PgBouncer was reloaded:\n%s", log)
		}
	})

	t.Run("Stop, Start and Restart take PgBouncer along", func(t *testing.T) {
		h.succeed("pool", provisioner.KindStop)
		if st, _ := h.rt.Status(ctx, poolerID("pool")); st.State == runtime.StateRunning {
			t.Error("PgBouncer runs after Stop")
		}
		h.succeed("pool", provisioner.KindStart)
		if st, _ := h.rt.Status(ctx, poolerID("pool")); st.State != runtime.StateRunning {
			t.Errorf("PgBouncer after Start: %+v", st)
		}
	})

	t.Run("a killed PgBouncer comes back with Restart", func(t *testing.T) {
		st, _ := h.rt.Status(ctx, poolerID("pool"))
		if st.PID == 0 {
			t.Fatalf("pooler status %+v has no pid", st)
		}
		if err := syscall.Kill(st.PID, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, "PgBouncer no longer running after kill -9", 10*time.Second, func() (bool, string) {
			st, _ := h.rt.Status(ctx, poolerID("pool"))
			return st.State != runtime.StateRunning, string(st.State)
		})
		h.succeed("pool", provisioner.KindRestart)
		c, err := simple(ctx, port, e.DBName, e.DBUser, h.password(e))
		if err != nil {
			t.Fatalf("through PgBouncer after Restart: %v", err)
		}
		c.Close(ctx)
	})

	t.Run("off: gone, port free, odoo.conf points at PostgreSQL", func(t *testing.T) {
		h.savePooler(e, store.PoolerSettings{Enabled: false, PoolSize: 9, PoolMode: "transaction", MaxClientConn: 120})
		h.succeed("pool", provisioner.KindRedeploy)
		if h.poolerPort(e) != 0 {
			t.Error("the pooler's port is still recorded")
		}
		if !testkit.PortFree(port) {
			t.Errorf("port %d is still taken", port)
		}
		if st, _ := h.rt.Status(ctx, poolerID("pool")); st.State != runtime.StateMissing {
			t.Errorf("pooler after off: %+v, want missing", st)
		}
		conf := readOdooConf(t, h.p.OdooConfPath("pool"))
		if conf["db_port"] != strconv.Itoa(primaryPort) {
			t.Errorf("odoo.conf db_port %s, want the primary's %d", conf["db_port"], primaryPort)
		}
	})
}

// TestPgBouncerNeedsPro: a starter environment's saved "enabled" (which the
// page and API refuse) never starts a PgBouncer.
func TestPgBouncerNeedsPro(t *testing.T) {
	h := newHarness(t)
	e, err := h.st.CreateEnvironment(t.Context(), store.Environment{Name: "small", OdooVersion: "18.0", Stage: "staging", Plan: "starter"})
	if err != nil {
		t.Fatal(err)
	}
	h.savePooler(e, store.PoolerSettings{Enabled: true})
	h.succeed("small", provisioner.KindDeploy)
	if h.poolerPort(e) != 0 {
		t.Error("a starter environment got a PgBouncer")
	}
}
