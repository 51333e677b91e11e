package local_test

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// testVerifier is a well-formed SCRAM verifier; no server checks it here.
const testVerifier = "SCRAM-SHA-256$4096:JYsv/Bh07J1Hx4IqX0fLdA==$kYl9yXzI8n1GJfDcaWmq2R3kP0y8CwGxQ0m5b2V6u0o=:aW3xq8d1p0s9Q2VYk5m7n3b1c0z6x4w2e8r5t7y9u1i="

// requirePgBouncer fails the test with the install command when pgbouncer
// is missing.
func requirePgBouncer(t *testing.T) {
	t.Helper()
	if _, err := pgexec.FindPgBouncer(""); err != nil {
		t.Fatalf("PgBouncer is required (apt-get install -y pgbouncer): %v", err)
	}
}

func poolerSpec(id runtime.InstanceID, port int) runtime.Spec {
	return runtime.Spec{ID: id, Port: port, Program: runtime.ProgramPgBouncer, Init: runtime.Init{Kind: runtime.InitNone}}
}

// createPooler creates a pooler and writes the auth file and an ini
// rendered for it; the server behind it (port 1) is never reached, as no
// client logs in.
func createPooler(t *testing.T, rt *local.Runtime, id runtime.InstanceID, port int) {
	t.Helper()
	t.Cleanup(func() {
		if err := rt.Remove(context.Background(), id); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	})
	ctx := t.Context()
	if err := rt.Create(ctx, poolerSpec(id, port)); err != nil {
		t.Fatal(err)
	}
	host, p := rt.Address(id)
	ini, err := render.PgBouncerIni(render.PgBouncerConf{
		ListenAddr: host, ListenPort: p, ServerHost: "127.0.0.1", ServerPort: 1,
		DBName: "app", Pool: render.DefaultPoolerSettings(), MaxConnections: 100, AdminUser: "pgdeck",
		AuthFile: rt.InstancePath(id, runtime.PgBouncerAuthFile),
		PidFile:  rt.InstancePath(id, runtime.PgBouncerPidFile),
		LogFile:  rt.InstancePath(id, runtime.PgBouncerLogFile),
	})
	if err != nil {
		t.Fatal(err)
	}
	userlist, err := render.PgBouncerUserlist([]render.AuthUser{{Name: "app", Secret: testVerifier}})
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.WriteFile(ctx, id, runtime.PgBouncerAuthFile, userlist, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := rt.WriteFile(ctx, id, runtime.PgBouncerIniFile, ini, 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestPoolerFilesAndOwner(t *testing.T) {
	requirePgBouncer(t)
	rt := newRuntime(t)
	ctx := t.Context()
	id := runtime.InstanceID{Env: "files", Role: runtime.RolePooler}
	createPooler(t, rt, id, testkit.FreePort(t))
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	user, err := pgexec.DefaultRunAs()
	if err != nil {
		t.Fatal(err)
	}
	uid := os.Geteuid()
	if user.Set {
		uid = user.UID
	}
	dir := rt.InstanceDir(id)
	if got := rt.InstancePath(id, runtime.PgBouncerIniFile); got != filepath.Join(dir, "pgbouncer.ini") {
		t.Errorf("InstancePath = %q, want it in %s", got, dir)
	}
	for _, bad := range []string{"../other/pgbouncer.ini", "/etc/passwd", ""} {
		if p := rt.InstancePath(id, bad); p != "" {
			t.Errorf("InstancePath(%q) = %q, want \"\"", bad, p)
		}
	}
	for rel, mode := range map[string]os.FileMode{
		".":                       0o700 | os.ModeDir,
		runtime.PgBouncerIniFile:  0o600,
		runtime.PgBouncerAuthFile: 0o600,
		"pgdeck.conf":             0o600,
		runtime.PgBouncerPidFile:  0, // PgBouncer's own files, any mode
		runtime.PgBouncerLogFile:  0,
	} {
		p := filepath.Join(dir, rel)
		fi, err := os.Lstat(p)
		if err != nil {
			t.Errorf("%s: %v", rel, err)
			continue
		}
		if mode != 0 && fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != uid {
			t.Errorf("%s: owned by uid %d, want %d (the run-as user)", rel, st.Uid, uid)
		}
	}

	if _, err := rt.Exec(ctx, id, nil, "psql", "-c", "select 1"); err == nil || !strings.Contains(err.Error(), "not supported for pgbouncer") {
		t.Errorf("exec in a pooler: error = %v, want not supported", err)
	}

	// A redeploy on another port stops the pgbouncer that listens on the
	// old one; the next Start (after the new ini) starts it on the new one.
	newPort := testkit.FreePort(t)
	if err := rt.Create(ctx, poolerSpec(id, newPort)); err != nil {
		t.Fatal(err)
	}
	if _, p := rt.Address(id); p != newPort {
		t.Errorf("address port after create = %d, want %d", p, newPort)
	}
	if st, err := rt.Status(ctx, id); err != nil || st.State != runtime.StateStopped {
		t.Errorf("status after the port changed = %+v, %v; want stopped", st, err)
	}
}

func TestPoolerStartFailures(t *testing.T) {
	requirePgBouncer(t)
	rt := newRuntime(t)
	ctx := t.Context()

	t.Run("port taken", func(t *testing.T) {
		id := runtime.InstanceID{Env: "taken", Role: runtime.RolePooler}
		port := testkit.FreePort(t)
		createPooler(t, rt, id, port)
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			t.Fatal(err)
		}
		defer l.Close()
		err = rt.Start(ctx, id)
		if err == nil || !strings.Contains(err.Error(), "Address already in use") {
			t.Fatalf("start on a taken port: error = %v, want PgBouncer's log line", err)
		}
		t.Logf("start on a taken port: %v", err)
		if st, err := rt.Status(ctx, id); err != nil || st.State == runtime.StateRunning {
			t.Fatalf("status after a failed start = %+v, %v", st, err)
		}
		l.Close()
		if err := rt.Start(ctx, id); err != nil {
			t.Fatalf("start once the port is free: %v", err)
		}
	})

	// PgBouncer reads its ini in order and logs to its logfile only once
	// it has read that setting: an error above it and one below it.
	for name, tc := range map[string]struct{ ini, want string }{
		"bad value before logfile": {"[pgbouncer]\nlisten_port = abc\nlogfile = LOG\npidfile = PID\n", `invalid value "abc" for parameter listen_port`},
		"bad value after logfile":  {"[pgbouncer]\nlogfile = LOG\npidfile = PID\npool_mode = bogus\n", `invalid value "bogus" for parameter pool_mode`},
	} {
		t.Run(name, func(t *testing.T) {
			id := runtime.InstanceID{Env: strings.ReplaceAll(name, " ", "-"), Role: runtime.RolePooler}
			createPooler(t, rt, id, testkit.FreePort(t))
			ini := strings.NewReplacer("LOG", rt.InstancePath(id, runtime.PgBouncerLogFile), "PID", rt.InstancePath(id, runtime.PgBouncerPidFile)).Replace(tc.ini)
			if err := rt.WriteFile(ctx, id, runtime.PgBouncerIniFile, []byte(ini), 0o600); err != nil {
				t.Fatal(err)
			}
			err := rt.Start(ctx, id)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("start with a bad ini: error = %v, want %q", err, tc.want)
			}
			t.Logf("start with a bad ini: %v", err)
			if st, err := rt.Status(ctx, id); err != nil || st.State != runtime.StateStopped {
				t.Fatalf("status after a failed start = %+v, %v; want stopped", st, err)
			}
		})
	}

	t.Run("no ini", func(t *testing.T) {
		id := runtime.InstanceID{Env: "no-ini", Role: runtime.RolePooler}
		t.Cleanup(func() { rt.Remove(context.Background(), id) })
		if err := rt.Create(ctx, poolerSpec(id, testkit.FreePort(t))); err != nil {
			t.Fatal(err)
		}
		if err := rt.Start(ctx, id); err == nil || !strings.Contains(err.Error(), "pgbouncer.ini") {
			t.Fatalf("start without an ini: error = %v", err)
		}
	})
}

func TestPoolerCreateValidation(t *testing.T) {
	rt := newRuntime(t)
	pool := runtime.InstanceID{Env: "valid", Role: runtime.RolePooler}
	prim := runtime.InstanceID{Env: "valid", Role: runtime.RolePrimary}
	port := testkit.FreePort(t)
	t.Cleanup(func() { rt.RemoveEnv(context.Background(), "valid") })
	for name, spec := range map[string]runtime.Spec{
		"pooler running postgres": {ID: pool, Port: port, Init: runtime.Init{Kind: runtime.InitNone}},
		"pooler with initdb":      {ID: pool, Port: port, Program: runtime.ProgramPgBouncer},
		"pooler with hba":         {ID: pool, Port: port, Program: runtime.ProgramPgBouncer, Init: runtime.Init{Kind: runtime.InitNone}, HBA: []string{"host all all 0.0.0.0/0 trust"}},
		"pooler without port":     {ID: pool, Program: runtime.ProgramPgBouncer, Init: runtime.Init{Kind: runtime.InitNone}},
		"primary running bouncer": {ID: prim, Port: port, Program: runtime.ProgramPgBouncer, Init: runtime.Init{Kind: runtime.InitNone}},
	} {
		if err := rt.Create(t.Context(), spec); err == nil {
			t.Errorf("%s: create succeeded", name)
		}
	}
	if st, err := rt.Status(t.Context(), pool); err != nil || st.State != runtime.StateMissing {
		t.Errorf("pooler after refused creates = %+v, %v; want missing", st, err)
	}
}

func TestPoolerMissingBinary(t *testing.T) {
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	rt, err := local.New(local.Config{Root: filepath.Join(t.TempDir(), "envs"), BinDir: bin, PgBouncerBin: filepath.Join(t.TempDir(), "pgbouncer")})
	if err != nil {
		t.Fatal(err)
	}
	id := runtime.InstanceID{Env: "nobin", Role: runtime.RolePooler}
	err = rt.Create(t.Context(), poolerSpec(id, testkit.FreePort(t)))
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y pgbouncer") {
		t.Fatalf("create without pgbouncer: error = %v, want the install command", err)
	}
}
