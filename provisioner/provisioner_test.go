package provisioner_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
	"pgdeck/store/secret"
	"pgdeck/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// harness is one provisioner with its own store, environment folder, secret
// key and window of ports, driven synchronously with Enqueue + RunOne.
type harness struct {
	t      testing.TB
	st     *store.Store
	rt     runtime.Runtime
	box    *secret.Box
	p      *provisioner.Provisioner
	root   string
	lo, hi int
	// backups is the provisioner's backup folder, pgRestore pg_restore.
	backups, pgRestore string
}

// newHarness builds a harness whose environments live in a fresh short
// temporary folder (unix socket paths are limited to 107 bytes).
func newHarness(t testing.TB) *harness {
	t.Helper()
	return newHarnessAt(t, filepath.Join(testkit.TempDir(t), "envs"))
}

// newHarnessAt builds a harness whose environments live in root.
func newHarnessAt(t testing.TB, root string) *harness {
	t.Helper()
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("the PostgreSQL server binaries are required (install them with: apt-get install -y postgresql): %v", err)
	}
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	rt, err := local.New(local.Config{Root: root, BinDir: bin, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	return newHarnessWith(t, root, rt, bin, log)
}

// newHarnessWith builds a harness on the runtime rt, whose environments'
// own files live in root; bin holds the host's PostgreSQL binaries.
func newHarnessWith(t testing.TB, root string, rt runtime.Runtime, bin string, log *slog.Logger) *harness {
	t.Helper()
	st := storetest.New(t)
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	// A random window of 200 ports, so that concurrent test binaries rarely
	// meet (the allocator skips ports that something listens on anyway).
	lo := 20000 + mrand.IntN(60)*200 // below the kernel's ephemeral ports (32768+)
	abs, err := filepath.Abs(root)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, st: st, rt: rt, box: box, root: abs, lo: lo, hi: lo + 199,
		backups: filepath.Join(filepath.Dir(abs), "backups"), pgRestore: filepath.Join(bin, "pg_restore")}
	h.p = provisioner.New(provisioner.Config{
		PortLow: h.lo, PortHigh: h.hi, Workers: 2, PollInterval: 50 * time.Millisecond,
		BackupDir: h.backups, PgRestore: h.pgRestore,
	}, st, rt, box, log)
	t.Cleanup(h.cleanup)
	return h
}

// cleanup removes every instance left in the root and makes sure that no
// PostgreSQL process of this harness outlives the test.
func (h *harness) cleanup() {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	entries, _ := os.ReadDir(h.root)
	for _, d := range entries {
		if !d.IsDir() {
			continue
		}
		if err := h.rt.RemoveEnv(ctx, d.Name()); err != nil {
			h.t.Errorf("cleanup: remove %s: %v", d.Name(), err)
		}
	}
	if pids := testkit.PostgresUnder(h.root); len(pids) > 0 {
		h.t.Errorf("cleanup: PostgreSQL processes still running under %s: %v (stopping them)", h.root, pids)
		if _, err := testkit.StopPostgres(h.root, time.Minute); err != nil {
			h.t.Errorf("cleanup: %v", err)
		}
	}
}

func primary(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
}

func (h *harness) envDir(name string) string { return filepath.Join(h.root, name) }
func (h *harness) dataDir(name string) string {
	return filepath.Join(h.root, name, "primary", "pgdata")
}

func (h *harness) createEnv(name string) store.Environment {
	h.t.Helper()
	e, err := h.st.CreateEnvironment(context.Background(), store.Environment{
		Name: name, OdooVersion: "18.0", Stage: "staging", Plan: "pro",
	})
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

func (h *harness) env(name string) store.Environment {
	h.t.Helper()
	e, err := h.st.EnvironmentByName(context.Background(), name)
	if err != nil {
		h.t.Fatal(err)
	}
	return e
}

// enqueue queues a job on the environment as it is in the store now.
func (h *harness) enqueue(name string, kind provisioner.Kind) store.Job {
	h.t.Helper()
	j, err := h.p.Enqueue(context.Background(), h.env(name), kind, "test")
	if err != nil {
		h.t.Fatalf("enqueue %s on %s: %v", kind, name, err)
	}
	if j.State != store.JobQueued || j.Kind != string(kind) || j.EnvName != name {
		h.t.Fatalf("queued job = %+v", j)
	}
	return j
}

// runOne runs the next queued job; it fails the test when none waits.
func (h *harness) runOne() {
	h.t.Helper()
	if !h.p.RunOne(context.Background()) {
		h.t.Fatal("RunOne found no queued job")
	}
}

func (h *harness) job(id int64) store.Job {
	h.t.Helper()
	j, err := h.st.JobByID(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	return j
}

func (h *harness) jobLog(id int64) []string {
	h.t.Helper()
	ls, err := h.st.JobLog(context.Background(), id)
	if err != nil {
		h.t.Fatal(err)
	}
	out := make([]string, len(ls))
	for i, l := range ls {
		out[i] = l.Line
	}
	return out
}

// run queues a job, runs it and returns its row.
func (h *harness) run(name string, kind provisioner.Kind) store.Job {
	h.t.Helper()
	j := h.enqueue(name, kind)
	h.runOne()
	return h.job(j.ID)
}

// succeed runs a job and checks that it succeeded.
func (h *harness) succeed(name string, kind provisioner.Kind) store.Job {
	h.t.Helper()
	j := h.run(name, kind)
	h.wantSucceeded(j)
	return j
}

func (h *harness) wantSucceeded(j store.Job) {
	h.t.Helper()
	log := h.jobLog(j.ID)
	if j.State != store.JobSucceeded || j.Error != "" {
		h.t.Fatalf("%s job on %s: state %q, error %q, want succeeded; log:\n%s", j.Kind, j.EnvName, j.State, j.Error, strings.Join(log, "\n"))
	}
	if j.Progress != 100 || j.FinishedAt == nil || j.StartedAt == nil {
		h.t.Errorf("succeeded job: progress %d, started %v, finished %v", j.Progress, j.StartedAt, j.FinishedAt)
	}
	if len(log) == 0 || !strings.HasPrefix(log[len(log)-1], "done in ") {
		h.t.Errorf("succeeded job's log does not end with \"done in …\": %q", log)
	}
}

// deploy creates and deploys an environment and returns it as stored.
func (h *harness) deploy(name string) store.Environment {
	h.t.Helper()
	h.createEnv(name)
	h.succeed(name, provisioner.KindDeploy)
	return h.env(name)
}

func (h *harness) status(name string) runtime.Status {
	h.t.Helper()
	st, err := h.rt.Status(context.Background(), primary(name))
	if err != nil {
		h.t.Fatal(err)
	}
	return st
}

func (h *harness) wantState(name string, want runtime.State) runtime.Status {
	h.t.Helper()
	st := h.status(name)
	if st.State != want {
		h.t.Fatalf("%s is %s (%s), want %s", name, st.State, st.Reason, want)
	}
	return st
}

func (h *harness) password(e store.Environment) string {
	h.t.Helper()
	pw, err := h.box.Open(e.DBPassword)
	if err != nil {
		h.t.Fatal(err)
	}
	return pw
}

// connect connects over TCP to 127.0.0.1:port, database db, as user.
func connect(ctx context.Context, port int, db, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cfg.Port = uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, user, password
	return pgx.ConnectConfig(ctx, cfg)
}

// connectAs connects as the environment's role to its own database.
func (h *harness) connectAs(e store.Environment) *pgx.Conn {
	h.t.Helper()
	if e.Port == nil {
		h.t.Fatalf("%s has no port", e.Name)
	}
	conn, err := connect(context.Background(), *e.Port, e.DBName, e.DBUser, h.password(e))
	if err != nil {
		h.t.Fatalf("the role %s cannot connect to %s on port %d: %v", e.DBUser, e.DBName, *e.Port, err)
	}
	h.t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

// freePort returns a port of the harness's window that no environment has
// and nothing listens on.
func (h *harness) freePort() int {
	h.t.Helper()
	used, err := h.st.UsedPorts(context.Background())
	if err != nil {
		h.t.Fatal(err)
	}
	for p := h.hi; p >= h.lo; p-- {
		if !used[p] && testkit.PortFree(p) {
			return p
		}
	}
	h.t.Fatalf("no free port in %d-%d", h.lo, h.hi)
	return 0
}

// readOdooConf parses odoo.conf's "key = value" lines.
func readOdooConf(t testing.TB, path string) map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), "=")
		if ok && !strings.HasPrefix(strings.TrimSpace(k), ";") {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// wantRejected checks that err is PostgreSQL refusing the connection in
// pg_hba.conf (SQLSTATE 28000).
func wantRejected(t testing.TB, what string, err error) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: connected, want the connection rejected", what)
		return
	}
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "28000" || !strings.Contains(pe.Message, "pg_hba.conf rejects connection") {
		t.Errorf("%s: error %v, want pg_hba.conf rejecting the connection (28000)", what, err)
	}
}

func TestDeploy(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.createEnv("shop")
	j := h.enqueue("shop", provisioner.KindDeploy)
	if j.RequestedBy != "test" {
		t.Errorf("requested_by = %q", j.RequestedBy)
	}
	h.runOne()
	j = h.job(j.ID)
	h.wantSucceeded(j)
	if j.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", j.Attempts)
	}
	log := strings.Join(h.jobLog(j.ID), "\n")
	for _, step := range []string{"Allocating a port", "Generating credentials", "Creating the PostgreSQL cluster",
		"Starting PostgreSQL", "Creating the database and its role", "Writing the filestore and odoo.conf",
		"Checking that Odoo's role can connect"} {
		if !strings.Contains(log, step) {
			t.Errorf("job log lacks step %q:\n%s", step, log)
		}
	}
	if h.p.RunOne(ctx) {
		t.Error("RunOne ran a job after the deploy; nothing else was queued")
	}

	e := h.env("shop")
	if !e.Deployed() || e.DesiredState != "running" {
		t.Errorf("deployed_at %v, desired_state %q; want deployed and running", e.DeployedAt, e.DesiredState)
	}
	if e.Port == nil || *e.Port < h.lo || *e.Port > h.hi {
		t.Fatalf("port %v, want one in %d-%d", e.Port, h.lo, h.hi)
	}
	if e.DBName != "shop" || e.DBUser != "odoo_shop" {
		t.Errorf("db_name %q, db_user %q", e.DBName, e.DBUser)
	}
	pw := h.password(e)
	admin, err := h.box.Open(e.AdminPassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 32 || len(admin) < 32 || pw == admin {
		t.Errorf("weak or shared generated passwords: db %d chars, admin %d chars", len(pw), len(admin))
	}
	if bytes.Contains(e.DBPassword, []byte(pw)) || bytes.Contains(e.AdminPassword, []byte(admin)) {
		t.Error("a password is stored in clear")
	}
	st := h.wantState("shop", runtime.StateRunning)
	if st.PID <= 0 {
		t.Errorf("running without a pid: %+v", st)
	}
	if got := testkit.Postmasters(h.dataDir("shop")); len(got) != 1 || got[0] != st.PID {
		t.Errorf("postmasters in %s: %v, want exactly [%d]", h.dataDir("shop"), got, st.PID)
	}
	if host, port := h.rt.Address(primary("shop")); host != "127.0.0.1" || port != *e.Port {
		t.Errorf("runtime address %s:%d, want 127.0.0.1:%d", host, port, *e.Port)
	}

	t.Run("the role connects over TCP and is not a superuser", func(t *testing.T) {
		conn := h.connectAs(e)
		var super, createRole, createDB bool
		var db, user string
		err := conn.QueryRow(ctx, `SELECT rolsuper, rolcreaterole, rolcreatedb, current_database(), current_user
			FROM pg_roles WHERE rolname = current_user`).Scan(&super, &createRole, &createDB, &db, &user)
		if err != nil {
			t.Fatal(err)
		}
		if super || createRole || createDB {
			t.Errorf("role %s: rolsuper %v, rolcreaterole %v, rolcreatedb %v; want all false", user, super, createRole, createDB)
		}
		if db != "shop" || user != "odoo_shop" {
			t.Errorf("connected to %s as %s", db, user)
		}
		// Odoo creates its tables in the database it owns.
		if _, err := conn.Exec(ctx, "CREATE TABLE res_partner (id serial PRIMARY KEY, name text)"); err != nil {
			t.Errorf("the role cannot create a table in its database: %v", err)
		}
		var owner string
		if err := conn.QueryRow(ctx, "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = current_database()").Scan(&owner); err != nil || owner != "odoo_shop" {
			t.Errorf("database owner = %q, %v; want odoo_shop", owner, err)
		}
	})

	t.Run("the extensions Odoo creates in a database of its own exist", func(t *testing.T) {
		var got []string
		rows, err := h.connectAs(e).Query(ctx, "SELECT extname FROM pg_extension WHERE extname IN ('pg_trgm', 'unaccent') ORDER BY 1")
		if err == nil {
			got, err = pgx.CollectRows(rows, pgx.RowTo[string])
		}
		if err != nil || !slices.Equal(got, []string{"pg_trgm", "unaccent"}) {
			t.Errorf("extensions %v, %v; want pg_trgm and unaccent", got, err)
		}
	})

	t.Run("the password is stored as SCRAM", func(t *testing.T) {
		out, err := h.rt.Exec(ctx, primary("shop"), nil, "psql", "-X", "-qAt", "-d", "postgres", "-c",
			"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'odoo_shop'")
		if err != nil || strings.TrimSpace(string(out)) != "t" {
			t.Errorf("rolpassword is not SCRAM: %q, %v", out, err)
		}
	})

	t.Run("odoo.conf", func(t *testing.T) {
		path := h.p.OdooConfPath("shop")
		if path != filepath.Join(h.envDir("shop"), "odoo.conf") {
			t.Errorf("OdooConfPath = %s", path)
		}
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("odoo.conf mode %04o, want 0600", fi.Mode().Perm())
		}
		conf := readOdooConf(t, path)
		filestore := filepath.Join(h.envDir("shop"), "filestore")
		want := map[string]string{
			"db_host": "127.0.0.1", "db_port": strconv.Itoa(*e.Port), "db_user": "odoo_shop", "db_password": pw,
			"db_name": "shop", "dbfilter": "^shop$", "list_db": "False", "data_dir": filestore, "admin_passwd": admin,
		}
		for k, v := range want {
			if conf[k] != v {
				t.Errorf("odoo.conf %s = %q, want %q", k, conf[k], v)
			}
		}
		if fi, err := os.Stat(filestore); err != nil || !fi.IsDir() {
			t.Errorf("filestore %s is not a folder: %v", filestore, err)
		}
		if conf["db_maxconn"] != "64" {
			t.Errorf("odoo.conf db_maxconn = %q, want 64 (max_connections 100 - 3 - 5, capped at Odoo's 64)", conf["db_maxconn"])
		}
		// What odoo.conf says really works.
		port, _ := strconv.Atoi(conf["db_port"])
		conn, err := connect(ctx, port, conf["db_name"], conf["db_user"], conf["db_password"])
		if err != nil {
			t.Fatalf("connect with odoo.conf's settings: %v", err)
		}
		conn.Close(ctx)
	})
}

func TestIsolation(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	a, b := h.deploy("alpha"), h.deploy("beta")
	if *a.Port == *b.Port {
		t.Fatalf("both environments on port %d", *a.Port)
	}
	if h.status("alpha").PID == h.status("beta").PID {
		t.Fatal("both environments share a postmaster")
	}
	for _, pair := range [][2]store.Environment{{a, b}, {b, a}} {
		me, other := pair[0], pair[1]
		pw := h.password(me)
		t.Run(me.Name, func(t *testing.T) {
			conn, err := connect(ctx, *me.Port, me.DBName, me.DBUser, pw)
			if err != nil {
				t.Fatalf("own database: %v", err)
			}
			conn.Close(ctx)

			_, err = connect(ctx, *other.Port, other.DBName, me.DBUser, pw)
			wantRejected(t, me.DBUser+" to "+other.Name+"'s database on its port", err)
			_, err = connect(ctx, *me.Port, other.DBName, me.DBUser, pw)
			wantRejected(t, me.DBUser+" to "+other.Name+"'s database name on its own port", err)
			// Odoo needs its own cluster's postgres database (its start-up
			// check, its bus); nothing else of the cluster.
			conn, err = connect(ctx, *me.Port, "postgres", me.DBUser, pw)
			if err != nil {
				t.Errorf("%s to its own cluster's postgres database: %v", me.DBUser, err)
			} else {
				conn.Close(ctx)
			}
			_, err = connect(ctx, *other.Port, "postgres", me.DBUser, pw)
			wantRejected(t, me.DBUser+" to "+other.Name+"'s postgres database", err)
			for _, db := range []string{"template1", "template0"} {
				_, err = connect(ctx, *me.Port, db, me.DBUser, pw)
				wantRejected(t, me.DBUser+" to "+db, err)
			}
			// The superuser is reachable only through the local socket.
			for _, port := range []int{*me.Port, *other.Port} {
				_, err = connect(ctx, port, "postgres", "postgres", "")
				wantRejected(t, fmt.Sprintf("superuser postgres over TCP on port %d", port), err)
				_, err = connect(ctx, port, "postgres", "postgres", pw)
				wantRejected(t, fmt.Sprintf("superuser postgres with a password over TCP on port %d", port), err)
			}
			// The other environment's password does not open this one.
			_, err = connect(ctx, *me.Port, me.DBName, me.DBUser, h.password(other))
			var pe *pgconn.PgError
			if !errors.As(err, &pe) || pe.Code != "28P01" {
				t.Errorf("wrong password: %v, want 28P01", err)
			}
		})
	}
}

func TestBusyAndInvalidActions(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.createEnv("busy")
	enq := func(kind provisioner.Kind) error {
		_, err := h.p.Enqueue(ctx, h.env("busy"), kind, "test")
		return err
	}
	wantInvalid := func(kind provisioner.Kind, msg string) {
		t.Helper()
		err := enq(kind)
		if !errors.Is(err, provisioner.ErrInvalidAction) || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: error %v, want ErrInvalidAction saying %q", kind, err, msg)
		}
	}

	// Not deployed yet: only Deploy (and Delete) make sense.
	for _, kind := range []provisioner.Kind{provisioner.KindRedeploy, provisioner.KindStart, provisioner.KindRestart} {
		wantInvalid(kind, "busy is not deployed yet; use Deploy.")
	}
	wantInvalid(provisioner.KindStop, "busy is not deployed yet.")
	wantInvalid("vacuum", "unknown action vacuum.")
	if h.p.RunOne(ctx) {
		t.Fatal("a refused action queued a job")
	}

	j := h.enqueue("busy", provisioner.KindDeploy)
	for _, kind := range []provisioner.Kind{provisioner.KindDeploy, provisioner.KindDelete} {
		err := enq(kind)
		if !errors.Is(err, provisioner.ErrBusy) {
			t.Errorf("%s while a deploy is queued: %v, want ErrBusy", kind, err)
		}
	}
	h.runOne()
	h.wantSucceeded(h.job(j.ID))
	if h.p.RunOne(ctx) {
		t.Fatal("a refused (busy) request queued a job")
	}

	wantInvalid(provisioner.KindStart, "busy is already running; use Restart if its health shows Error.")
	wantInvalid(provisioner.KindDeploy, "busy is already deployed; use Redeploy to apply changes.")
	h.succeed("busy", provisioner.KindStop)
	wantInvalid(provisioner.KindStop, "busy is already stopped.")
	wantInvalid(provisioner.KindRestart, "busy is stopped; use Start.")
	if h.p.RunOne(ctx) {
		t.Fatal("a refused action queued a job")
	}
	// A refused Start while stopped must not have started anything.
	h.wantState("busy", runtime.StateStopped)
}

func TestStopStartRestart(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("cycle")
	pid := h.wantState("cycle", runtime.StateRunning).PID

	h.succeed("cycle", provisioner.KindStop)
	h.wantState("cycle", runtime.StateStopped)
	if got := h.env("cycle").DesiredState; got != "stopped" {
		t.Errorf("desired_state after Stop = %q", got)
	}
	if pids := testkit.PostgresUnder(h.dataDir("cycle")); len(pids) != 0 {
		t.Errorf("PostgreSQL processes after Stop: %v", pids)
	}
	if _, err := connect(ctx, *e.Port, e.DBName, e.DBUser, h.password(e)); err == nil {
		t.Error("connected to a stopped environment")
	}
	// Reconcile leaves an environment the operator stopped alone.
	if err := h.p.Reconcile(ctx); err != nil {
		t.Fatal(err)
	}
	if h.p.RunOne(ctx) {
		t.Error("Reconcile queued a job for a stopped environment")
	}
	h.wantState("cycle", runtime.StateStopped)

	h.succeed("cycle", provisioner.KindStart)
	started := h.wantState("cycle", runtime.StateRunning)
	if got := h.env("cycle").DesiredState; got != "running" {
		t.Errorf("desired_state after Start = %q", got)
	}
	if started.PID == pid {
		t.Errorf("postmaster pid %d unchanged across Stop and Start", pid)
	}
	h.connectAs(e)

	h.succeed("cycle", provisioner.KindRestart)
	restarted := h.wantState("cycle", runtime.StateRunning)
	if restarted.PID == started.PID {
		t.Errorf("Restart kept postmaster pid %d", started.PID)
	}
	if got := testkit.Postmasters(h.dataDir("cycle")); len(got) != 1 || got[0] != restarted.PID {
		t.Errorf("postmasters after Restart: %v, want [%d]", got, restarted.PID)
	}
	if got := h.env("cycle").DesiredState; got != "running" {
		t.Errorf("desired_state after Restart = %q", got)
	}
	h.connectAs(e)
}

func TestRedeployKeepsPortCredentialsAndData(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	before := h.deploy("keep")
	conn := h.connectAs(before)
	if _, err := conn.Exec(ctx, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('written before the redeploy')"); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)
	confBefore, err := os.ReadFile(h.p.OdooConfPath("keep"))
	if err != nil {
		t.Fatal(err)
	}
	// A file dropped into the filestore by Odoo survives too.
	attachment := filepath.Join(h.envDir("keep"), "filestore", "keep", "ab", "attachment")
	if err := os.MkdirAll(filepath.Dir(attachment), 0o750); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(attachment, []byte("pdf"), 0o640); err != nil {
		t.Fatal(err)
	}

	j := h.succeed("keep", provisioner.KindRedeploy)
	if !strings.Contains(strings.Join(h.jobLog(j.ID), "\n"), "Creating the PostgreSQL cluster") {
		t.Errorf("redeploy log: %q", h.jobLog(j.ID))
	}
	after := h.env("keep")
	if *after.Port != *before.Port {
		t.Errorf("port %d → %d", *before.Port, *after.Port)
	}
	if after.DBName != before.DBName || after.DBUser != before.DBUser || h.password(after) != h.password(before) {
		t.Error("the database, role or password changed on redeploy")
	}
	a1, _ := h.box.Open(before.AdminPassword)
	a2, _ := h.box.Open(after.AdminPassword)
	if a1 != a2 {
		t.Error("admin_passwd changed on redeploy")
	}
	if !after.DeployedAt.Equal(*before.DeployedAt) || after.DesiredState != "running" {
		t.Errorf("deployed_at %v → %v, desired_state %q", before.DeployedAt, after.DeployedAt, after.DesiredState)
	}
	h.wantState("keep", runtime.StateRunning)
	var note string
	if err := h.connectAs(after).QueryRow(ctx, "SELECT note FROM kept").Scan(&note); err != nil || note != "written before the redeploy" {
		t.Errorf("data after redeploy: %q, %v", note, err)
	}
	confAfter, err := os.ReadFile(h.p.OdooConfPath("keep"))
	if err != nil || !bytes.Equal(confAfter, confBefore) {
		t.Errorf("odoo.conf changed on redeploy:\n%s\n→\n%s", confBefore, confAfter)
	}
	if b, err := os.ReadFile(attachment); err != nil || string(b) != "pdf" {
		t.Errorf("filestore file after redeploy: %q, %v", b, err)
	}
}

func TestDeleteLeavesNothing(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("gone")
	port := *e.Port
	pid := h.wantState("gone", runtime.StateRunning).PID

	j := h.succeed("gone", provisioner.KindDelete)
	if _, err := h.st.EnvironmentByName(ctx, "gone"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("environment row after Delete: %v, want ErrNotFound", err)
	}
	if _, err := os.Lstat(h.envDir("gone")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("folder %s after Delete: %v", h.envDir("gone"), err)
	}
	if pids := testkit.PostgresUnder(h.envDir("gone")); len(pids) != 0 {
		t.Errorf("PostgreSQL processes of the deleted environment: %v", pids)
	}
	if p, ok := testkit.Stat(pid); ok {
		if p.State != 'Z' {
			t.Errorf("old postmaster %d still alive", pid)
		}
	}
	if !testkit.PortFree(port) {
		t.Errorf("port %d still taken after Delete", port)
	}
	if st := h.status("gone"); st.State != runtime.StateMissing {
		t.Errorf("runtime status after Delete: %+v", st)
	}
	// The job outlives the environment (history), detached from its row.
	j = h.job(j.ID)
	if j.EnvName != "gone" || j.EnvironmentID != nil {
		t.Errorf("delete job after Delete: env %q, environment_id %v", j.EnvName, j.EnvironmentID)
	}
	if used, _ := h.st.UsedPorts(ctx); used[port] {
		t.Errorf("port %d still recorded", port)
	}
	// The name can be used again.
	h.deploy("gone")
}

// checkFailedDeploy checks what a failed first deploy leaves: a failed job
// with the tool's message, nothing running, nothing on disk, not deployed.
func (h *harness) checkFailedDeploy(j store.Job, name string, msgs ...string) {
	h.t.Helper()
	log := h.jobLog(j.ID)
	if j.State != store.JobFailed {
		h.t.Fatalf("deploy: state %q, want failed; log:\n%s", j.State, strings.Join(log, "\n"))
	}
	h.t.Logf("the failed deploy's error: %s", j.Error)
	for _, m := range append([]string{"initdb"}, msgs...) {
		if !strings.Contains(j.Error, m) {
			h.t.Errorf("job error lacks %q: %s", m, j.Error)
		}
	}
	if j.Step != "Creating the PostgreSQL cluster" || j.FinishedAt == nil {
		h.t.Errorf("failed job: step %q, finished %v", j.Step, j.FinishedAt)
	}
	joined := strings.Join(log, "\n")
	if !strings.Contains(joined, "failed: "+j.Error) || !strings.Contains(joined, "removing what this failed deploy made") {
		h.t.Errorf("failed job's log:\n%s", joined)
	}
	e := h.env(name)
	if e.Deployed() {
		h.t.Error("a failed deploy marked the environment deployed")
	}
	if pids := testkit.PostgresUnder(h.envDir(name)); len(pids) != 0 {
		h.t.Errorf("PostgreSQL processes left by the failed deploy: %v", pids)
	}
	if _, err := os.Lstat(h.envDir(name)); !errors.Is(err, os.ErrNotExist) {
		h.t.Errorf("the failed deploy left %s: %v", h.envDir(name), err)
	}
	if st := h.status(name); st.State != runtime.StateMissing {
		h.t.Errorf("runtime status after the failed deploy: %+v", st)
	}
	if _, err := h.st.ActiveJob(context.Background(), name); !errors.Is(err, store.ErrNotFound) {
		h.t.Errorf("an active job is left: %v", err)
	}
}

func TestDeployWhenInitdbFails(t *testing.T) {
	h := newHarness(t)
	h.createEnv("broken")
	j := h.enqueue("broken", provisioner.KindDeploy)

	// A real failure of initdb: a file size limit (as a quota would impose)
	// that the 16 MB WAL segment of the bootstrap exceeds. Children inherit
	// the limit; it is lifted as soon as the job ends.
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limited := syscall.Rlimit{Cur: 1 << 20, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		t.Fatal(err)
	}
	ran := h.p.RunOne(context.Background())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if !ran {
		t.Fatal("RunOne found no queued job")
	}
	j = h.job(j.ID)
	h.checkFailedDeploy(j, "broken", "could not write to file", "File too large")
	e := h.env("broken")
	if e.Port == nil {
		t.Fatal("the failed deploy forgot its port")
	}

	// With the limit lifted the same environment deploys, on the same port.
	// A file where the data directory goes is what a crash could leave: it is
	// replaced, not a reason to fail.
	if err := os.MkdirAll(filepath.Dir(h.dataDir("broken")), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(h.dataDir("broken"), []byte("not a data directory"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.succeed("broken", provisioner.KindDeploy)
	e2 := h.env("broken")
	if !e2.Deployed() || *e2.Port != *e.Port {
		t.Errorf("after the retry: deployed %v, port %v (was %d)", e2.DeployedAt, e2.Port, *e.Port)
	}
	h.wantState("broken", runtime.StateRunning)
	h.connectAs(e2)
}

// A deploy that never succeeded keeps its port for the retry, unless
// something else took the port meanwhile: then the retry chooses another.
func TestRetryAfterFailedDeployChoosesAFreePort(t *testing.T) {
	h := newHarness(t)
	h.createEnv("moved")
	j := h.enqueue("moved", provisioner.KindDeploy)
	var old syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	limited := syscall.Rlimit{Cur: 1 << 20, Max: old.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &limited); err != nil {
		t.Fatal(err)
	}
	h.p.RunOne(context.Background())
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &old); err != nil {
		t.Fatal(err)
	}
	if got := h.job(j.ID); got.State != "failed" {
		t.Fatalf("first deploy: state %s, want failed", got.State)
	}
	first := h.env("moved")
	if first.Port == nil {
		t.Fatal("the failed deploy recorded no port")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(*first.Port))
	if err != nil {
		t.Fatalf("take the recorded port: %v", err)
	}
	defer ln.Close()

	h.succeed("moved", provisioner.KindDeploy)
	e := h.env("moved")
	if e.Port == nil || *e.Port == *first.Port {
		t.Fatalf("retry kept the taken port %d", *first.Port)
	}
	h.wantState("moved", runtime.StateRunning)
	h.connectAs(e)
}

func TestDeployOnFullDisk(t *testing.T) {
	tmp, err := os.MkdirTemp("", "pgd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(tmp) })
	root := filepath.Join(tmp, "envs")
	if err := os.Mkdir(root, 0o755); err != nil {
		t.Fatal(err)
	}
	// An 8 MB file system: initdb's first WAL segment alone is 16 MB.
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=8m,mode=0755", "pgdeck-test", root).CombinedOutput(); err != nil {
		t.Fatalf("mount a small tmpfs for the disk-full case (needs root / CAP_SYS_ADMIN): %v: %s", err, out)
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", root).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", root, err, out)
		}
	})
	h := newHarnessAt(t, root)
	h.createEnv("full")
	j := h.run("full", provisioner.KindDeploy)
	h.checkFailedDeploy(j, "full", "No space left on device")

	// Room is made: the same deploy now succeeds.
	if out, err := exec.Command("mount", "-o", "remount,size=256m", root).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v: %s", err, out)
	}
	h.succeed("full", provisioner.KindDeploy)
	h.wantState("full", runtime.StateRunning)
	h.connectAs(h.env("full"))
}

func TestReconcile(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("crashy")

	t.Run("a killed postmaster gets a start job", func(t *testing.T) {
		pid := h.wantState("crashy", runtime.StateRunning).PID
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		testkit.Eventually(t, fmt.Sprintf("postmaster %d is gone after SIGKILL", pid), 30*time.Second, func() (bool, string) {
			p, ok := testkit.Stat(pid)
			return !testkit.Alive(pid), fmt.Sprintf("%+v (exists: %v)", p, ok)
		})
		if st := h.status("crashy"); st.State == runtime.StateRunning {
			t.Fatalf("status after kill -9: %+v", st)
		}
		if err := h.p.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		j, err := h.st.ActiveJob(ctx, "crashy")
		if err != nil {
			t.Fatalf("no job queued by Reconcile: %v", err)
		}
		if j.Kind != string(provisioner.KindStart) || j.State != store.JobQueued || j.RequestedBy != "pgdeck (reconcile)" {
			t.Errorf("reconcile job = %+v", j)
		}
		// Reconciling again does not queue a second job.
		if err := h.p.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		h.runOne()
		h.wantSucceeded(h.job(j.ID))
		if h.p.RunOne(ctx) {
			t.Error("a second job was queued by the second Reconcile")
		}
		st := h.wantState("crashy", runtime.StateRunning)
		if st.PID == pid {
			t.Errorf("pid %d unchanged", pid)
		}
		if got := testkit.Postmasters(h.dataDir("crashy")); len(got) != 1 {
			t.Errorf("postmasters: %v, want exactly one", got)
		}
		h.connectAs(e)
	})

	t.Run("an orphan folder is removed and its server stopped", func(t *testing.T) {
		port := h.freePort()
		id := primary("ghost")
		if err := h.rt.Create(ctx, runtime.Spec{ID: id, Port: port, Conf: render.PrimaryConf()}); err != nil {
			t.Fatal(err)
		}
		if err := h.rt.Start(ctx, id); err != nil {
			t.Fatal(err)
		}
		h.wantState("ghost", runtime.StateRunning)
		if len(testkit.PostgresUnder(h.envDir("ghost"))) == 0 {
			t.Fatal("ghost's server is not running")
		}
		if err := h.p.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
		if _, err := os.Lstat(h.envDir("ghost")); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("orphan folder after Reconcile: %v", err)
		}
		if pids := testkit.PostgresUnder(h.envDir("ghost")); len(pids) != 0 {
			t.Errorf("orphan's processes after Reconcile: %v", pids)
		}
		if !testkit.PortFree(port) {
			t.Errorf("orphan's port %d still taken", port)
		}
		// The known environment is left alone.
		h.wantState("crashy", runtime.StateRunning)
		if h.p.RunOne(ctx) {
			t.Error("Reconcile queued a job for a running environment")
		}
	})
}

func TestResumeJobAfterCrash(t *testing.T) {
	for _, started := range []bool{false, true} {
		name := "halfmade"
		if started {
			name = "halfrunning"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			ctx := t.Context()
			e := h.createEnv(name)
			j := h.enqueue(name, provisioner.KindDeploy)

			// What a worker had done when pgdeck was killed: the job claimed,
			// port and credentials recorded, the cluster created (and maybe
			// started).
			if _, err := h.st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = 1, started_at = now(),
				step = 'Creating the PostgreSQL cluster', progress = 20 WHERE id = $1`, j.ID); err != nil {
				t.Fatal(err)
			}
			port := h.freePort()
			if _, err := h.st.SetPort(ctx, e.ID, port); err != nil {
				t.Fatal(err)
			}
			const pw = "the-password-chosen-before-the-crash"
			e, err := h.st.SetCredentials(ctx, e.ID, name, "odoo_"+name, h.box.Seal(pw), h.box.Seal("admin-before-the-crash"))
			if err != nil {
				t.Fatal(err)
			}
			spec := runtime.Spec{ID: primary(name), Port: port, Conf: render.PrimaryConf(), HBA: render.HBA(e.DBName, e.DBUser, h.rt.ClientNetwork(name))}
			if err := h.rt.Create(ctx, spec); err != nil {
				t.Fatal(err)
			}
			if started {
				if err := h.rt.Start(ctx, primary(name)); err != nil {
					t.Fatal(err)
				}
			}
			if h.p.RunOne(ctx) {
				t.Fatal("RunOne claimed a job that is still marked running")
			}

			if err := h.p.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			if got := h.job(j.ID); got.State != store.JobQueued {
				t.Fatalf("after Reconcile the job is %q, want queued", got.State)
			}
			h.runOne()
			j = h.job(j.ID)
			h.wantSucceeded(j)
			if j.Attempts != 2 {
				t.Errorf("attempts = %d, want 2", j.Attempts)
			}
			log := strings.Join(h.jobLog(j.ID), "\n")
			if !strings.Contains(log, `pgdeck restarted during step "Creating the PostgreSQL cluster"; resuming the job`) {
				t.Errorf("job log does not say it was resumed:\n%s", log)
			}

			e = h.env(name)
			if !e.Deployed() || e.DesiredState != "running" || e.Port == nil || *e.Port != port {
				t.Errorf("after the resumed deploy: deployed %v, desired %q, port %v (want %d)", e.DeployedAt, e.DesiredState, e.Port, port)
			}
			if h.password(e) != pw {
				t.Error("the resumed deploy changed the password chosen before the crash")
			}
			st := h.wantState(name, runtime.StateRunning)
			if got := testkit.Postmasters(h.dataDir(name)); len(got) != 1 || got[0] != st.PID {
				t.Errorf("postmasters: %v, want exactly [%d]", got, st.PID)
			}
			h.connectAs(e)
			if conf := readOdooConf(t, h.p.OdooConfPath(name)); conf["db_password"] != pw || conf["db_port"] != strconv.Itoa(port) {
				t.Errorf("odoo.conf after the resumed deploy: %v", conf)
			}
		})
	}
}

func TestWorkers(t *testing.T) {
	h := newHarness(t)
	names := []string{"one", "two", "three"}
	var ids []int64
	for _, n := range names {
		h.createEnv(n)
		ids = append(ids, h.enqueue(n, provisioner.KindDeploy).ID)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- h.p.Run(ctx) }()

	// Bounded wait, so that a stuck worker fails the test instead of hanging it.
	deadline := time.After(5 * time.Minute)
	for {
		active := 0
		for _, id := range ids {
			if h.job(id).Active() {
				active++
			}
		}
		if active == 0 {
			break
		}
		select {
		case err := <-done:
			t.Fatalf("Run returned while jobs were waiting: %v", err)
		case <-deadline:
			t.Fatalf("%d jobs still active", active)
		case <-time.After(100 * time.Millisecond):
		}
	}
	cancel()
	cancel() // stopping twice is harmless
	select {
	case err := <-done:
		if err != nil {
			t.Errorf("Run after cancel: %v", err)
		}
	case <-time.After(2 * time.Minute):
		t.Fatal("Run did not return after its context was cancelled")
	}

	var jobs []store.Job
	for _, id := range ids {
		j := h.job(id)
		h.wantSucceeded(j)
		jobs = append(jobs, j)
	}
	for _, n := range names {
		h.wantState(n, runtime.StateRunning)
		h.connectAs(h.env(n))
	}
	// Two workers: the three jobs never all ran at once.
	latestStart, earliestEnd := *jobs[0].StartedAt, *jobs[0].FinishedAt
	for _, j := range jobs[1:] {
		if j.StartedAt.After(latestStart) {
			latestStart = *j.StartedAt
		}
		if j.FinishedAt.Before(earliestEnd) {
			earliestEnd = *j.FinishedAt
		}
	}
	if latestStart.Before(earliestEnd) {
		t.Errorf("three jobs ran at once with two workers: %v", jobs)
	}
	// A second stop of a stopped provisioner is harmless too.
	cancel()
}

func TestResumeDeleteAfterCrash(t *testing.T) {
	for _, rowGone := range []bool{false, true} {
		name := "delhalf"
		if rowGone {
			name = "delrowgone"
		}
		t.Run(name, func(t *testing.T) {
			h := newHarness(t)
			ctx := t.Context()
			e := h.deploy(name)
			j := h.enqueue(name, provisioner.KindDelete)
			// What a worker had done when pgdeck was killed: the server
			// stopped and removed, and maybe the row deleted too (the last
			// step; the job was not marked finished yet).
			if _, err := h.st.Pool.Exec(ctx, `UPDATE jobs SET state = 'running', attempts = 1, started_at = now(),
				step = 'Stopping and removing PostgreSQL', progress = 20 WHERE id = $1`, j.ID); err != nil {
				t.Fatal(err)
			}
			if err := h.rt.Remove(ctx, primary(name)); err != nil {
				t.Fatal(err)
			}
			if rowGone {
				if err := h.st.DeleteEnvironment(ctx, e.ID); err != nil {
					t.Fatal(err)
				}
			}
			if err := h.p.Reconcile(ctx); err != nil {
				t.Fatal(err)
			}
			h.runOne()
			h.wantSucceeded(h.job(j.ID))
			if _, err := h.st.EnvironmentByName(ctx, name); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("environment after the resumed delete: %v", err)
			}
			if _, err := os.Lstat(h.envDir(name)); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("folder after the resumed delete: %v", err)
			}
			if pids := testkit.PostgresUnder(h.envDir(name)); len(pids) != 0 {
				t.Errorf("processes after the resumed delete: %v", pids)
			}
			if !testkit.PortFree(*e.Port) {
				t.Errorf("port %d still taken", *e.Port)
			}
		})
	}
}

// gatedRuntime holds every Create until release is closed; entered is
// closed when the first Create arrives.
type gatedRuntime struct {
	runtime.Runtime
	once    sync.Once
	entered chan struct{}
	release chan struct{}
}

func (g *gatedRuntime) Create(ctx context.Context, spec runtime.Spec) error {
	g.once.Do(func() { close(g.entered) })
	select {
	case <-g.release:
	case <-ctx.Done():
		return ctx.Err()
	}
	return g.Runtime.Create(ctx, spec)
}

// newInstance builds another pgdeck instance on the harness's store
// database (its own pool, as another process would have), environment root
// and ports.
func (h *harness) newInstance(t *testing.T, rt runtime.Runtime, cfg provisioner.Config) (*provisioner.Provisioner, *store.Store) {
	t.Helper()
	st, err := store.Open(t.Context(), h.st.Pool.Config().ConnString())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	cfg.PortLow, cfg.PortHigh = h.lo, h.hi
	cfg.BackupDir, cfg.PgRestore = h.backups, h.pgRestore
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	return provisioner.New(cfg, st, rt, h.box, log), st
}

// TestReconcileLeavesOtherInstancesJobs runs two pgdeck instances on one
// store: while instance A runs a deploy, instance B starting (Reconcile)
// must not queue it again, which would run it twice.
func TestReconcileLeavesOtherInstancesJobs(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.createEnv("busy")
	j := h.enqueue("busy", provisioner.KindDeploy)

	gate := &gatedRuntime{Runtime: h.rt, entered: make(chan struct{}), release: make(chan struct{})}
	a, _ := h.newInstance(t, gate, provisioner.Config{Workers: 1, PollInterval: 50 * time.Millisecond})
	b, _ := h.newInstance(t, h.rt, provisioner.Config{Workers: 1, PollInterval: 50 * time.Millisecond})
	ran := make(chan bool, 1)
	go func() { ran <- a.RunOne(context.Background()) }()
	released := false
	defer func() {
		// A failed check must not leave instance A's job hanging.
		if !released {
			close(gate.release)
			<-ran
		}
	}()
	select {
	case <-gate.entered:
	case <-time.After(time.Minute):
		t.Fatal("instance A never reached the cluster creation")
	}

	for range 2 {
		if err := b.Reconcile(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := h.job(j.ID); got.State != store.JobRunning || got.Attempts != 1 {
		t.Errorf("after B's Reconcile the job A runs is %q (attempt %d), want running (attempt 1)", got.State, got.Attempts)
	}
	if b.RunOne(ctx) {
		t.Error("instance B ran a job while A was running it")
	}

	close(gate.release)
	released = true
	if !<-ran {
		t.Fatal("instance A's RunOne found no job")
	}
	got := h.job(j.ID)
	h.wantSucceeded(got)
	if got.Attempts != 1 {
		t.Errorf("attempts = %d, want 1", got.Attempts)
	}
	if log := strings.Join(h.jobLog(j.ID), "\n"); strings.Contains(log, "resuming the job") {
		t.Errorf("the job was resumed while A ran it:\n%s", log)
	}
	h.wantState("busy", runtime.StateRunning)
	h.connectAs(h.env("busy"))
}

// TestOrphanedJobResumedWhileRunning leaves a running job whose instance
// went away (no session holds its lock) in the store of a pgdeck that is
// already running: Run resumes it without a restart, once.
func TestOrphanedJobResumedWhileRunning(t *testing.T) {
	h := newHarness(t)
	p, st := h.newInstance(t, h.rt, provisioner.Config{
		Workers: 2, PollInterval: 50 * time.Millisecond, RequeueInterval: 100 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()

	// A job that finishes at once proves that Run's start-up Reconcile is
	// over, so what follows is found by the periodic requeue.
	warm := h.createEnv("warmup")
	wj, err := st.CreateJob(ctx, warm.ID, warm.Name, string(provisioner.KindDelete), "test")
	if err != nil {
		t.Fatal(err)
	}
	waitJob := func(id int64, within time.Duration, cond func(store.Job) bool) store.Job {
		t.Helper()
		var j store.Job
		testkit.Eventually(t, fmt.Sprintf("job %d gets where the test waits for", id), within, func() (bool, string) {
			j = h.job(id)
			return cond(j), fmt.Sprintf("job %d %q", id, j.State)
		})
		return j
	}
	h.wantSucceeded(waitJob(wj.ID, time.Minute, func(j store.Job) bool { return !j.Active() }))

	e := h.createEnv("orphan")
	var id int64
	if err := h.st.Pool.QueryRow(ctx, `INSERT INTO jobs (environment_id, env_name, kind, requested_by, state, attempts, started_at, step, progress)
		VALUES ($1, $2, 'deploy', 'test', 'running', 1, now(), 'Creating the PostgreSQL cluster', 20) RETURNING id`, e.ID, e.Name).Scan(&id); err != nil {
		t.Fatal(err)
	}
	waitJob(id, 10*time.Second, func(j store.Job) bool { return j.Attempts > 1 || j.State != store.JobRunning })
	j := waitJob(id, 5*time.Minute, func(j store.Job) bool { return !j.Active() })
	h.wantSucceeded(j)
	if j.Attempts != 2 {
		t.Errorf("attempts = %d, want 2 (resumed once)", j.Attempts)
	}
	log := strings.Join(h.jobLog(id), "\n")
	const line = `the pgdeck instance running this job went away during step "Creating the PostgreSQL cluster"; resuming the job`
	if strings.Count(log, line) != 1 || strings.Count(log, "resuming the job") != 1 {
		t.Errorf("job log should say once that it was resumed:\n%s", log)
	}
	h.wantState("orphan", runtime.StateRunning)
	h.connectAs(h.env("orphan"))
}

// TestLostLockSessionDoesNotRunJobTwice ends the session holding a running
// job's lock (as a restart of the control-plane database would) while its
// worker goes on: the instance's own periodic requeue must not hand the job
// to a second worker.
func TestLostLockSessionDoesNotRunJobTwice(t *testing.T) {
	h := newHarness(t)
	h.createEnv("steady")
	j := h.enqueue("steady", provisioner.KindDeploy)
	gate := &gatedRuntime{Runtime: h.rt, entered: make(chan struct{}), release: make(chan struct{})}
	p, st := h.newInstance(t, gate, provisioner.Config{
		Workers: 2, PollInterval: 20 * time.Millisecond, RequeueInterval: 20 * time.Millisecond,
	})
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	released := false
	defer func() {
		if !released {
			close(gate.release)
		}
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	select {
	case <-gate.entered:
	case <-time.After(time.Minute):
		t.Fatal("the deploy never reached the cluster creation")
	}
	rows, _ := st.Pool.Query(ctx, `SELECT pid FROM pg_locks WHERE locktype = 'advisory' AND granted
		AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil || len(pids) != 1 {
		t.Fatalf("advisory lock holders = %v, %v; want the job's", pids, err)
	}
	var terminated bool
	if err := st.Pool.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", pids[0]).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("terminate the job's lock session: %v, %v", terminated, err)
	}
	// Many requeue and poll intervals.
	time.Sleep(time.Second)
	if got := h.job(j.ID); got.State != store.JobRunning || got.Attempts != 1 {
		t.Fatalf("after its lock session was lost the job is %q (attempt %d), want running (attempt 1)", got.State, got.Attempts)
	}
	close(gate.release)
	released = true
	testkit.Eventually(t, "the deploy ends", 5*time.Minute, func() (bool, string) {
		got := h.job(j.ID)
		return !got.Active(), fmt.Sprintf("job %q", got.State)
	})
	got := h.job(j.ID)
	h.wantSucceeded(got)
	if got.Attempts != 1 || strings.Contains(strings.Join(h.jobLog(j.ID), "\n"), "resuming the job") {
		t.Errorf("the job was run again: attempts %d, log:\n%s", got.Attempts, strings.Join(h.jobLog(j.ID), "\n"))
	}
	h.connectAs(h.env("steady"))
}
