package runtimetest

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"pgdeck/provisioner/runtime"
)

func replica(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RoleReplica}
}

// The replication role and slot the suite's replica uses.
const (
	replUser     = "suite_repl"
	replPassword = "suite-repl-s3cret:with\\odd chars"
	replSlot     = "suite_replica"
)

// streamTimeout bounds how long the suite waits for a replica to stream
// and to replay a change; a loaded machine needs some seconds.
const streamTimeout = 90 * time.Second

// replicaSpec is the spec the provisioner gives a replica of primary.
func replicaSpec(rt runtime.Runtime, id, from runtime.InstanceID, port int, conf map[string]string, password string) runtime.Spec {
	return runtime.Spec{ID: id, Port: port, Conf: conf,
		HBA: []string{"host all all " + rt.ClientNetwork(id.Env) + " scram-sha-256"},
		Init: runtime.Init{Kind: runtime.InitBaseBackup, From: from, Slot: replSlot,
			User: replUser, Password: password}}
}

// testReplica: a replica made the way the provisioner makes one (a primary
// with WAL senders and a replication line in pg_hba, the role and the slot
// made by the caller, Create with a base backup, Start) streams from its
// primary, keeps the password out of its configuration, survives a
// restart, and goes away without touching the primary or its slot. A base
// backup that cannot log in leaves nothing behind.
func testReplica(t *testing.T, rt runtime.Runtime, dbPort, replPort int) {
	ctx := t.Context()
	db, repl := primary("suite-repl"), replica("suite-repl")
	cleanupRemove(t, rt, db)
	cleanupRemove(t, rt, repl)

	conf := map[string]string{"wal_level": "replica", "max_wal_senders": "5", "work_mem": "5MB"}
	if err := rt.Create(ctx, runtime.Spec{ID: db, Port: dbPort, Conf: conf, HBA: []string{
		"host all all " + rt.ClientNetwork(db.Env) + " scram-sha-256",
		"host replication " + replUser + " " + rt.ClientNetwork(db.Env) + " scram-sha-256",
	}}); err != nil {
		t.Fatalf("create primary: %v", err)
	}
	if err := rt.Start(ctx, db); err != nil {
		t.Fatalf("start primary: %v", err)
	}
	psql(t, rt, db, fmt.Sprintf("set password_encryption = 'scram-sha-256'; create role %s replication login password '%s'",
		replUser, strings.ReplaceAll(replPassword, "'", "''")))
	psql(t, rt, db, fmt.Sprintf("select pg_create_physical_replication_slot('%s')", replSlot))

	// A base backup that cannot log in fails with the server's reason and
	// leaves no replica behind.
	err := rt.Create(ctx, replicaSpec(rt, repl, db, replPort, conf, "wrong-password"))
	if err == nil || !strings.Contains(err.Error(), "password authentication failed") {
		t.Fatalf("create with a wrong password: error = %v, want the authentication failure", err)
	}
	t.Logf("create with a wrong password: %v", err)
	wantState(t, rt, repl, runtime.StateMissing)
	if d, ok := rt.(InstanceDirer); ok {
		if left, _ := filepath.Glob(filepath.Join(d.InstanceDir(repl), "pgdata*")); len(left) > 0 {
			t.Fatalf("a failed base backup left %v", left)
		}
	}

	var (
		mu       sync.Mutex
		progress [][2]int64
	)
	spec := replicaSpec(rt, repl, db, replPort, conf, replPassword)
	spec.Init.Progress = func(done, total int64) {
		mu.Lock()
		defer mu.Unlock()
		progress = append(progress, [2]int64{done, total})
	}
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("create replica: %v", err)
	}
	mu.Lock()
	if len(progress) == 0 || progress[len(progress)-1][0] <= 0 {
		t.Errorf("progress reports = %v, want at least one with bytes done", progress)
	}
	t.Logf("base backup progress reports: %v", progress)
	mu.Unlock()
	wantState(t, rt, repl, runtime.StateStopped)
	if host, p := rt.Address(repl); host == "" || p != replPort {
		t.Fatalf("replica address = %s:%d, want the allocated port %d", host, p, replPort)
	}
	if _, p := rt.Address(db); p != dbPort {
		t.Fatalf("primary address after the base backup: port %d, want %d", p, dbPort)
	}
	if ids, err := rt.List(ctx); err != nil || !slices.Contains(ids, repl) {
		t.Fatalf("List = %v, %v; want it to hold %s", ids, err, repl)
	}

	if err := rt.Start(ctx, repl); err != nil {
		t.Fatalf("start replica: %v", err)
	}
	wantState(t, rt, repl, runtime.StateRunning)
	wantState(t, rt, db, runtime.StateRunning)
	waitStreaming(t, rt, db, repl)
	if got := psql(t, rt, repl, "select pg_is_in_recovery()"); got != "t" {
		t.Fatalf("pg_is_in_recovery() on the replica = %q", got)
	}
	if got := psql(t, rt, repl, "show work_mem"); got != "5MB" {
		t.Errorf("work_mem on the replica = %q, want 5MB from the spec", got)
	}
	if got := psql(t, rt, repl, "show port"); got != fmt.Sprint(replPort) {
		t.Errorf("port on the replica = %q, want %d", got, replPort)
	}
	psql(t, rt, db, "create table suite_repl_marker (note text); insert into suite_repl_marker values ('from the primary')")
	waitReplayed(t, rt, repl, "select note from suite_repl_marker", "from the primary")
	if _, err := rt.Exec(ctx, repl, nil, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-c", "insert into suite_repl_marker values ('x')"); err == nil ||
		!strings.Contains(err.Error(), "read-only") {
		t.Errorf("write on the replica: error = %v, want a read-only transaction", err)
	}

	conninfo := psql(t, rt, repl, "show primary_conninfo")
	if strings.Contains(conninfo, "password") || strings.Contains(conninfo, replPassword) || !strings.Contains(conninfo, "passfile=") {
		t.Errorf("primary_conninfo = %q, want a passfile and no password", conninfo)
	}
	if d, ok := rt.(InstanceDirer); ok {
		checkPasswordOnlyInPassfile(t, d.InstanceDir(repl), replPassword)
	}

	// Create again only rewrites the configuration: the data stays.
	if err := rt.Create(ctx, spec); err != nil {
		t.Fatalf("create on a running replica: %v", err)
	}
	if got := psql(t, rt, repl, "select note from suite_repl_marker"); got != "from the primary" {
		t.Fatalf("marker after a second create = %q", got)
	}

	if err := rt.Stop(ctx, repl); err != nil {
		t.Fatalf("stop replica: %v", err)
	}
	wantState(t, rt, repl, runtime.StateStopped)
	psql(t, rt, db, "insert into suite_repl_marker values ('while it was stopped')")
	if err := rt.Start(ctx, repl); err != nil {
		t.Fatalf("start replica again: %v", err)
	}
	waitStreaming(t, rt, db, repl)
	waitReplayed(t, rt, repl, "select count(*) from suite_repl_marker", "2")

	if err := rt.Remove(ctx, repl); err != nil {
		t.Fatalf("remove replica: %v", err)
	}
	wantState(t, rt, repl, runtime.StateMissing)
	if d, ok := rt.(InstanceDirer); ok {
		if _, err := os.Stat(d.InstanceDir(repl)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("replica folder still exists after remove (stat: %v)", err)
		}
	}
	wantState(t, rt, db, runtime.StateRunning)
	if got := psql(t, rt, db, fmt.Sprintf("select count(*) from pg_replication_slots where slot_name = '%s'", replSlot)); got != "1" {
		t.Fatalf("slot %s on the primary after removing the replica: count = %q, want 1 (dropping it is the caller's job)", replSlot, got)
	}
	if !portFree(replPort) {
		t.Fatalf("port %d is still taken after remove", replPort)
	}
}

// waitStreaming waits until the replica's WAL receiver streams and the
// primary lists it under <env>_replica.
func waitStreaming(t *testing.T, rt runtime.Runtime, db, repl runtime.InstanceID) {
	t.Helper()
	waitReplayed(t, rt, repl, "select status from pg_stat_wal_receiver", "streaming")
	q := fmt.Sprintf("select state from pg_stat_replication where application_name = '%s_replica'", repl.Env)
	waitReplayed(t, rt, db, q, "streaming")
}

// waitReplayed runs sql in id until it prints want (errors count as not
// yet: a table may not have been replayed), at most streamTimeout.
func waitReplayed(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, sql, want string) {
	t.Helper()
	deadline := time.Now().Add(streamTimeout)
	for {
		out, err := rt.Exec(t.Context(), id, nil, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
		got := strings.TrimSpace(string(out))
		if err == nil && got == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s in %s = %q (%v) after %s, want %q", sql, id, got, err, streamTimeout, want)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// checkPasswordOnlyInPassfile walks an instance folder: exactly one file
// may hold the password, and it must be readable by its owner alone.
func checkPasswordOnlyInPassfile(t *testing.T, dir, password string) {
	t.Helper()
	var holders []string
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		// The passfile escapes ':' and '\'; look for both spellings.
		escaped := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace(password)
		if bytes.Contains(b, []byte(password)) || bytes.Contains(b, []byte(escaped)) {
			holders = append(holders, path)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("walk %s: %v", dir, err)
	}
	if len(holders) != 1 {
		t.Fatalf("files holding the replication password: %v, want exactly one (the passfile)", holders)
	}
	fi, err := os.Stat(holders[0])
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("passfile %s mode = %v, want 0600", holders[0], fi.Mode().Perm())
	}
	t.Logf("the password is only in %s", holders[0])
}
