package runtimetest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
)

func pooler(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePooler}
}

// poolerRole is the role (and database) a client reaches through the pooler.
const (
	poolerRole     = "suite_app"
	poolerPassword = "suite-pool-secret"
)

// testPooler: a PgBouncer instance in front of a primary, made the way the
// provisioner makes one (Create, an ini rendered with the runtime's paths,
// the auth file, Start), carries a client's SCRAM login and queries through
// to the primary, and stops, restarts after a kill -9 and goes away like a
// PostgreSQL instance.
func testPooler(t *testing.T, rt runtime.Runtime, dbPort, poolPort int) {
	ctx := t.Context()
	db, pool := primary("suite-pool"), pooler("suite-pool")
	cleanupRemove(t, rt, db)
	cleanupRemove(t, rt, pool)

	wantState(t, rt, pool, runtime.StateMissing)
	if err := rt.Start(ctx, pool); !errors.Is(err, runtime.ErrMissing) {
		t.Fatalf("start of a missing pooler: error = %v, want ErrMissing", err)
	}

	// The primary, with a role that logs in with a password.
	if err := rt.Create(ctx, runtime.Spec{ID: db, Port: dbPort,
		HBA: []string{"host all all " + rt.ClientNetwork(db.Env) + " scram-sha-256"}}); err != nil {
		t.Fatalf("create primary: %v", err)
	}
	if err := rt.Start(ctx, db); err != nil {
		t.Fatalf("start primary: %v", err)
	}
	psql(t, rt, db, fmt.Sprintf("set password_encryption = 'scram-sha-256'; create role %s login password '%s'", poolerRole, poolerPassword))
	psql(t, rt, db, fmt.Sprintf("create database %s owner %s", poolerRole, poolerRole))
	secret := psql(t, rt, db, fmt.Sprintf("select rolpassword from pg_authid where rolname = '%s'", poolerRole))
	maxConn, err := strconv.Atoi(psql(t, rt, db, "show max_connections"))
	if err != nil {
		t.Fatalf("max_connections: %v", err)
	}

	spec := runtime.Spec{ID: pool, Port: poolPort, Program: runtime.ProgramPgBouncer, Init: runtime.Init{Kind: runtime.InitNone}}
	// Create runs again on every redeploy.
	for i := range 2 {
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatalf("create pooler #%d: %v", i+1, err)
		}
	}
	wantState(t, rt, pool, runtime.StateStopped)
	host, port := rt.Address(pool)
	if host == "" || port != poolPort {
		t.Fatalf("pooler address = %s:%d, want the allocated port %d", host, port, poolPort)
	}
	if ids, err := rt.List(ctx); err != nil || !slices.Contains(ids, pool) {
		t.Fatalf("List = %v, %v; want it to hold %s", ids, err, pool)
	}

	// What the provisioner writes: the auth file and the ini naming the
	// runtime's paths.
	userlist, err := render.PgBouncerUserlist([]render.AuthUser{{Name: poolerRole, Secret: secret}})
	if err != nil {
		t.Fatalf("userlist: %v", err)
	}
	serverHost, serverPort := rt.PeerAddress(db)
	settings := render.DefaultPoolerSettings()
	settings.Enabled = true
	ini, err := render.PgBouncerIni(render.PgBouncerConf{
		ListenAddr: host, ListenPort: port,
		ServerHost: serverHost, ServerPort: serverPort,
		DBName: poolerRole, Pool: settings, MaxConnections: maxConn,
		AdminUser: "pgdeck",
		AuthFile:  rt.InstancePath(pool, runtime.PgBouncerAuthFile),
		PidFile:   rt.InstancePath(pool, runtime.PgBouncerPidFile),
		LogFile:   rt.InstancePath(pool, runtime.PgBouncerLogFile),
	})
	if err != nil {
		t.Fatalf("render ini: %v", err)
	}
	if err := rt.WriteFile(ctx, pool, runtime.PgBouncerAuthFile, userlist, 0o600); err != nil {
		t.Fatalf("write auth file: %v", err)
	}
	if err := rt.WriteFile(ctx, pool, runtime.PgBouncerIniFile, ini, 0o600); err != nil {
		t.Fatalf("write ini: %v", err)
	}

	if err := rt.Start(ctx, pool); err != nil {
		t.Fatalf("start pooler: %v", err)
	}
	st := wantState(t, rt, pool, runtime.StateRunning)
	if err := rt.Start(ctx, pool); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if again := wantState(t, rt, pool, runtime.StateRunning); again.PID != st.PID {
		t.Fatalf("second start changed the pid from %d to %d", st.PID, again.PID)
	}
	queryThrough(t, host, port)

	if err := rt.Stop(ctx, pool); err != nil {
		t.Fatalf("stop pooler: %v", err)
	}
	wantState(t, rt, pool, runtime.StateStopped)
	if dialable(poolPort) {
		t.Fatalf("stopped pooler still accepts TCP on %d", poolPort)
	}
	if err := rt.Stop(ctx, pool); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if err := rt.Start(ctx, pool); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
	st = wantState(t, rt, pool, runtime.StateRunning)
	queryThrough(t, host, port)

	// A crash: PgBouncer is killed behind the runtime's back and leaves its
	// pid file.
	crash(t, rt, pool, st.PID)
	deadline := time.Now().Add(stateTimeout)
	for st = status(t, rt, pool); st.State == runtime.StateRunning && time.Now().Before(deadline); st = status(t, rt, pool) {
		time.Sleep(100 * time.Millisecond)
	}
	switch {
	case st.State == runtime.StateBroken && st.Reason != "":
	case st.State == runtime.StateStopped:
	default:
		t.Fatalf("pooler status after kill -9 = %+v, want broken with a reason (or stopped)", st)
	}
	t.Logf("pooler status after kill -9: %s: %s", st.State, st.Reason)
	if err := rt.Start(ctx, pool); err != nil {
		t.Fatalf("start after a crash: %v", err)
	}
	if again := wantState(t, rt, pool, runtime.StateRunning); again.PID == st.PID && st.PID != 0 {
		t.Fatalf("pid %d did not change after the restart", again.PID)
	}
	queryThrough(t, host, port)

	if err := rt.Remove(ctx, pool); err != nil {
		t.Fatalf("remove pooler: %v", err)
	}
	wantState(t, rt, pool, runtime.StateMissing)
	if ids, err := rt.List(ctx); err != nil || slices.Contains(ids, pool) {
		t.Fatalf("List after remove = %v, %v; want it without %s", ids, err, pool)
	}
	if d, ok := rt.(InstanceDirer); ok {
		if _, err := os.Stat(d.InstanceDir(pool)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("pooler folder %s still exists after remove (stat: %v)", d.InstanceDir(pool), err)
		}
	}
	if !portFree(poolPort) {
		t.Fatalf("port %d is still taken after remove", poolPort)
	}
	// The primary behind it is untouched.
	wantState(t, rt, db, runtime.StateRunning)
}

// queryThrough logs in through the pooler with the role's password and runs
// SELECT 1 on the primary behind it.
func queryThrough(t *testing.T, host string, port int) {
	t.Helper()
	cfg, err := pgx.ParseConfig(fmt.Sprintf("host=%s port=%d user=%s password=%s dbname=%s sslmode=disable connect_timeout=10",
		host, port, poolerRole, poolerPassword, poolerRole))
	if err != nil {
		t.Fatal(err)
	}
	// PgBouncer in transaction mode cannot keep prepared statements.
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("connect through the pooler at %s:%d: %v", host, port, err)
	}
	defer conn.Close(ctx)
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Fatalf("SELECT 1 through the pooler = %d, %v", one, err)
	}
}
