// Package runtimetest is the conformance suite that every runtime.Runtime
// implementation must pass against real PostgreSQL and PgBouncer.
package runtimetest

import (
	"context"
	"errors"
	"net"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
)

// InstanceDirer is implemented by runtimes that keep an instance in a host
// folder; the suite then checks that Remove deletes it.
type InstanceDirer interface {
	InstanceDir(id runtime.InstanceID) string
}

// Killer is implemented by runtimes whose supervisor restarts a server
// killed behind their back (containers with a restart policy): the suite
// then crashes an instance through Kill, which the supervisor leaves dead,
// instead of a kill -9 of its pid.
type Killer interface {
	Kill(ctx context.Context, id runtime.InstanceID) error
}

// crash kills the instance's server as a crash would: through the
// runtime's Killer, else kill -9 of its pid.
func crash(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, pid int) {
	t.Helper()
	if k, ok := rt.(Killer); ok {
		if err := k.Kill(t.Context(), id); err != nil {
			t.Fatalf("kill %s: %v", id, err)
		}
		return
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
}

// stateTimeout bounds how long the suite waits for a state to settle.
const stateTimeout = 30 * time.Second

// Run runs the suite. newRuntime returns a fresh runtime for a subtest (its
// own root folder or namespace); freePort returns a TCP port on 127.0.0.1
// that is free.
func Run(t *testing.T, newRuntime func(t *testing.T) runtime.Runtime, freePort func(t *testing.T) int) {
	t.Run("Lifecycle", func(t *testing.T) { testLifecycle(t, newRuntime(t), freePort(t)) })
	t.Run("Idempotence", func(t *testing.T) { testIdempotence(t, newRuntime(t), freePort(t)) })
	t.Run("Validation", func(t *testing.T) { testValidation(t, newRuntime(t), freePort(t)) })
	t.Run("Inventory", func(t *testing.T) { testInventory(t, newRuntime(t), freePort(t)) })
	t.Run("Stream", func(t *testing.T) { testStream(t, newRuntime(t), freePort(t)) })
	t.Run("Backup", func(t *testing.T) { testBackup(t, newRuntime(t), freePort(t)) })
	t.Run("Pooler", func(t *testing.T) {
		dbPort, poolPort := freePort(t), freePort(t)
		for poolPort == dbPort {
			poolPort = freePort(t)
		}
		testPooler(t, newRuntime(t), dbPort, poolPort)
	})
	t.Run("Replica", func(t *testing.T) {
		dbPort, replPort := freePort(t), freePort(t)
		for replPort == dbPort {
			replPort = freePort(t)
		}
		testReplica(t, newRuntime(t), dbPort, replPort)
	})
}

func primary(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
}

// cleanupRemove removes the instance when the test ends, whatever happened.
func cleanupRemove(t *testing.T, rt runtime.Runtime, id runtime.InstanceID) {
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		if err := rt.Remove(ctx, id); err != nil {
			t.Errorf("cleanup: remove %s: %v", id, err)
		}
	})
}

func status(t *testing.T, rt runtime.Runtime, id runtime.InstanceID) runtime.Status {
	t.Helper()
	st, err := rt.Status(t.Context(), id)
	if err != nil {
		t.Fatalf("status %s: %v", id, err)
	}
	return st
}

func wantState(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, want runtime.State) runtime.Status {
	t.Helper()
	st := status(t, rt, id)
	if st.State != want {
		t.Fatalf("status %s = %+v, want %s", id, st, want)
	}
	if want == runtime.StateRunning && st.PID <= 0 {
		t.Fatalf("status %s = %+v: running without a pid", id, st)
	}
	return st
}

func psql(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, sql string) string {
	t.Helper()
	out, err := rt.Exec(t.Context(), id, nil, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
	if err != nil {
		t.Fatalf("psql %q in %s: %v", sql, id, err)
	}
	return strings.TrimSpace(string(out))
}

func dialable(port int) bool {
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 2*time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// portFree reports whether the port can be bound again, waiting a little for
// the kernel to release it.
func portFree(port int) bool {
	for deadline := time.Now().Add(10 * time.Second); !testkit.PortFree(port); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			return false
		}
	}
	return true
}

func testLifecycle(t *testing.T, rt runtime.Runtime, port int) {
	ctx := t.Context()
	id := primary("suite-life")
	cleanupRemove(t, rt, id)

	wantState(t, rt, id, runtime.StateMissing)
	if err := rt.Start(ctx, id); !errors.Is(err, runtime.ErrMissing) {
		t.Fatalf("start of a missing instance: error = %v, want ErrMissing", err)
	}
	if _, err := rt.Exec(ctx, id, nil, "psql", "-c", "select 1"); !errors.Is(err, runtime.ErrMissing) {
		t.Fatalf("exec in a missing instance: error = %v, want ErrMissing", err)
	}

	spec := runtime.Spec{
		ID:   id,
		Port: port,
		Conf: map[string]string{"work_mem": "4MB"},
		HBA:  []string{"host all all 127.0.0.1/32 scram-sha-256"},
	}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("create: %v", err)
	}
	wantState(t, rt, id, runtime.StateStopped)
	if host, p := rt.Address(id); host != "127.0.0.1" || p != port {
		t.Fatalf("address = %s:%d, want 127.0.0.1:%d", host, p, port)
	}

	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	st := wantState(t, rt, id, runtime.StateRunning)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if again := wantState(t, rt, id, runtime.StateRunning); again.PID != st.PID {
		t.Fatalf("second start changed the pid from %d to %d", st.PID, again.PID)
	}
	if got := psql(t, rt, id, "select 1"); got != "1" {
		t.Fatalf("select 1 = %q", got)
	}
	if got := psql(t, rt, id, "show work_mem"); got != "4MB" {
		t.Fatalf("work_mem = %q, want 4MB from the spec", got)
	}
	out, err := rt.Exec(ctx, id, []byte("select 20 + 22;\n"), "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1")
	if err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Fatalf("psql with stdin = %q, %v", out, err)
	}
	if _, err := rt.Exec(ctx, id, nil, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "select no_such_column"); err == nil ||
		!strings.Contains(err.Error(), "no_such_column") {
		t.Fatalf("failing psql: error = %v, want the server's message", err)
	}
	if !dialable(port) {
		t.Fatalf("running instance does not accept TCP on 127.0.0.1:%d", port)
	}

	// Create again on a running instance rewrites the settings; the server
	// reads them when reloaded.
	spec.Conf = map[string]string{"work_mem": "6MB"}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("create on a running instance: %v", err)
	}
	if got := psql(t, rt, id, "show work_mem"); got == "6MB" {
		t.Fatalf("work_mem is 6MB before a reload: Create applied the settings to a running server")
	}
	if got := psql(t, rt, id, "select setting from pg_file_settings where name = 'work_mem' order by seqno desc limit 1"); got != "6MB" {
		t.Fatalf("pg_file_settings work_mem after second create = %q, want 6MB", got)
	}
	psql(t, rt, id, "select pg_reload_conf()")
	if got := psql(t, rt, id, "show work_mem"); got != "6MB" {
		t.Fatalf("work_mem after second create = %q, want 6MB", got)
	}
	wantState(t, rt, id, runtime.StateRunning)

	if err := rt.WriteFile(ctx, id, "notes/hello.txt", []byte("hello\n"), 0o640); err != nil {
		t.Fatalf("write file: %v", err)
	}
	for _, bad := range []string{"../escape.txt", "/etc/escape.txt", "notes/../../escape.txt", ""} {
		if err := rt.WriteFile(ctx, id, bad, []byte("x"), 0o600); err == nil {
			t.Errorf("WriteFile(%q) succeeded", bad)
		}
	}

	if err := rt.Stop(ctx, id); err != nil {
		t.Fatalf("stop: %v", err)
	}
	wantState(t, rt, id, runtime.StateStopped)
	if err := rt.Stop(ctx, id); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if dialable(port) {
		t.Fatalf("stopped instance still accepts TCP on %d", port)
	}

	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
	st = wantState(t, rt, id, runtime.StateRunning)

	// A crash: the server is killed behind the runtime's back.
	crash(t, rt, id, st.PID)
	deadline := time.Now().Add(stateTimeout)
	for st = status(t, rt, id); st.State == runtime.StateRunning && time.Now().Before(deadline); st = status(t, rt, id) {
		time.Sleep(100 * time.Millisecond)
	}
	switch {
	case st.State == runtime.StateBroken && st.Reason != "":
	case st.State == runtime.StateStopped && st.Reason != "":
	default:
		t.Fatalf("status after kill -9 = %+v, want broken (or stopped) with a reason", st)
	}
	t.Logf("status after kill -9: %s: %s", st.State, st.Reason)

	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start after a crash: %v", err)
	}
	if again := wantState(t, rt, id, runtime.StateRunning); again.PID == st.PID && st.PID != 0 {
		t.Fatalf("pid %d did not change after the restart", again.PID)
	}
	if got := psql(t, rt, id, "select 1"); got != "1" {
		t.Fatalf("select 1 after restart = %q", got)
	}

	if err := rt.Remove(ctx, id); err != nil {
		t.Fatalf("remove: %v", err)
	}
	wantState(t, rt, id, runtime.StateMissing)
	if d, ok := rt.(InstanceDirer); ok {
		if _, err := os.Stat(d.InstanceDir(id)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("instance folder %s still exists after remove (stat: %v)", d.InstanceDir(id), err)
		}
	}
	if !portFree(port) {
		t.Fatalf("port %d is still taken after remove", port)
	}
}

func testIdempotence(t *testing.T, rt runtime.Runtime, port int) {
	ctx := t.Context()
	id := primary("suite-idem")
	cleanupRemove(t, rt, id)

	// Stopping and removing what does not exist is not an error.
	if err := rt.Stop(ctx, id); err != nil {
		t.Fatalf("stop of a missing instance: %v", err)
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatalf("remove of a missing instance: %v", err)
	}
	spec := runtime.Spec{ID: id, Port: port}
	for i := range 2 {
		if err := rt.Create(ctx, spec); err != nil {
			t.Fatalf("create #%d: %v", i+1, err)
		}
	}
	wantState(t, rt, id, runtime.StateStopped)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatalf("start: %v", err)
	}
	// A marker proves the second create did not re-initialise the data.
	psql(t, rt, id, "create table marker (id int)")
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("create on a running instance: %v", err)
	}
	if got := psql(t, rt, id, "select count(*) from marker"); got != "0" {
		t.Fatalf("marker table after create = %q", got)
	}
	for i := range 2 {
		if err := rt.Remove(ctx, id); err != nil {
			t.Fatalf("remove #%d: %v", i+1, err)
		}
	}
	wantState(t, rt, id, runtime.StateMissing)
	if !portFree(port) {
		t.Fatalf("port %d is still taken after remove", port)
	}
}

func testValidation(t *testing.T, rt runtime.Runtime, port int) {
	ctx := t.Context()
	bad := []runtime.Spec{
		{ID: runtime.InstanceID{Env: "Bad_Name", Role: runtime.RolePrimary}, Port: port},
		{ID: runtime.InstanceID{Env: "../escape", Role: runtime.RolePrimary}, Port: port},
		{ID: runtime.InstanceID{Env: "ok", Role: "wizard"}, Port: port},
		{ID: primary("no-port"), Port: 0},
		{ID: primary("bad-conf"), Port: port, Conf: map[string]string{"work_mem": "1MB\nport = 1"}},
		// A replica is a base backup of a PostgreSQL instance, through a
		// slot, as a replication role with a password; nothing else is one.
		{ID: replica("repl-initdb"), Port: port},
		{ID: replica("repl-no-from"), Port: port, Init: replInit(runtime.InstanceID{}, replSlot, replUser, "pw")},
		{ID: replica("repl-bad-from"), Port: port, Init: replInit(runtime.InstanceID{Env: "../x", Role: runtime.RolePrimary}, replSlot, replUser, "pw")},
		{ID: replica("repl-self"), Port: port, Init: replInit(replica("repl-self"), replSlot, replUser, "pw")},
		{ID: replica("repl-pooler"), Port: port, Init: replInit(pooler("repl-pooler"), replSlot, replUser, "pw")},
		{ID: replica("repl-no-slot"), Port: port, Init: replInit(primary("repl-no-slot"), "", replUser, "pw")},
		{ID: replica("repl-no-user"), Port: port, Init: replInit(primary("repl-no-user"), replSlot, "", "pw")},
		{ID: replica("repl-no-pw"), Port: port, Init: replInit(primary("repl-no-pw"), replSlot, replUser, "")},
		{ID: replica("repl-no-primary"), Port: port, Init: replInit(primary("repl-no-primary"), replSlot, replUser, "pw")},
		{ID: replica("repl-program"), Port: port, Program: runtime.ProgramPgBouncer, Init: replInit(primary("repl-program"), replSlot, replUser, "pw")},
		{ID: primary("primary-basebackup"), Port: port, Init: replInit(primary("other"), replSlot, replUser, "pw")},
		{ID: primary("primary-slot"), Port: port, Init: runtime.Init{Slot: replSlot}},
	}
	for _, spec := range bad {
		t.Run(spec.ID.String(), func(t *testing.T) {
			cleanupRemoveIfValid(t, rt, spec.ID)
			err := rt.Create(ctx, spec)
			if err == nil {
				t.Fatalf("create %+v succeeded", spec)
			}
			t.Logf("refused: %v", err)
			if spec.ID.Validate() == nil {
				wantState(t, rt, spec.ID, runtime.StateMissing)
			}
		})
	}
}

// replInit is a base backup's init.
func replInit(from runtime.InstanceID, slot, user, password string) runtime.Init {
	return runtime.Init{Kind: runtime.InitBaseBackup, From: from, Slot: slot, User: user, Password: password}
}

func cleanupRemoveIfValid(t *testing.T, rt runtime.Runtime, id runtime.InstanceID) {
	if id.Validate() == nil {
		cleanupRemove(t, rt, id)
	}
}
