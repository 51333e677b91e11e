package provisioner_test

import (
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
)

// newDockerHarness is a harness whose runtime is Docker, on a private
// dockerd with the test image.
func newDockerHarness(t *testing.T) *harness {
	t.Helper()
	return newDockerHarnessOn(t, dockertest.Engine(t))
}

// newDockerHarnessOn is newDockerHarness on the given private dockerd, for
// tests that stop or restart it.
func newDockerHarnessOn(t *testing.T, engine *dockertest.Daemon) *harness {
	t.Helper()
	image := dockertest.Image(t, engine)
	root := filepath.Join(testkit.TempDir(t), "envs")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	rt, err := docker.New(docker.Config{Host: engine.Host, Image: image, Root: root, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("the PostgreSQL binaries are required (apt-get install -y postgresql): %v", err)
	}
	return newHarnessWith(t, root, rt, bin, log)
}

// TestJobsOnDocker runs the operator's jobs on the Docker runtime: a
// deploy, a redeploy that turns PgBouncer on (odoo.conf then points at it
// and a login goes through it), a redeploy of a reload-only change (the
// server is not restarted), stop, start and restart.
func TestJobsOnDocker(t *testing.T) {
	h := newDockerHarness(t)
	ctx := t.Context()
	e := h.deploy("erp")
	h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 15, PoolMode: "transaction"})
	h.succeed("erp", provisioner.KindRedeploy)
	e = h.env("erp")
	port := h.poolerPort(e)
	if port == 0 {
		t.Fatal("no PgBouncer port after the redeploy")
	}
	if st, err := h.rt.Status(ctx, poolerID("erp")); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("PgBouncer: %+v, %v", st, err)
	}
	conf := readOdooConf(t, h.p.OdooConfPath("erp"))
	if conf["db_port"] != strconv.Itoa(port) {
		t.Errorf("odoo.conf db_port %s, want PgBouncer's %d", conf["db_port"], port)
	}
	conn, err := simple(ctx, port, e.DBName, e.DBUser, h.password(e))
	if err != nil {
		t.Fatalf("login through PgBouncer on docker: %v", err)
	}
	var one int
	if err := conn.QueryRow(ctx, "SELECT 1").Scan(&one); err != nil || one != 1 {
		t.Errorf("query through PgBouncer: %v", err)
	}
	conn.Close(ctx)

	before := h.wantState("erp", runtime.StateRunning)
	var started string
	h.connectAs(e).QueryRow(ctx, "SELECT pg_postmaster_start_time()::text").Scan(&started)
	if _, err := h.st.UpdateDatabaseSettings(ctx, e.ID, func(d *store.DatabaseSettings) error {
		d.Parameters["work_mem"] = "12MB"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	h.succeed("erp", provisioner.KindRedeploy)
	var workMem, startedAfter string
	c := h.connectAs(e)
	c.QueryRow(ctx, "SHOW work_mem").Scan(&workMem)
	c.QueryRow(ctx, "SELECT pg_postmaster_start_time()::text").Scan(&startedAfter)
	if workMem != "12MB" || startedAfter != started || h.status("erp").PID != before.PID {
		t.Errorf("after a reload-only redeploy: work_mem %s, started %s (was %s); want 12MB without a restart", workMem, startedAfter, started)
	}

	h.succeed("erp", provisioner.KindStop)
	h.wantState("erp", runtime.StateStopped)
	if st, _ := h.rt.Status(ctx, poolerID("erp")); st.State == runtime.StateRunning {
		t.Error("PgBouncer still runs after Stop")
	}
	h.succeed("erp", provisioner.KindStart)
	h.wantState("erp", runtime.StateRunning)
	h.succeed("erp", provisioner.KindRestart)
	h.wantState("erp", runtime.StateRunning)
	if st, _ := h.rt.Status(ctx, poolerID("erp")); st.State != runtime.StateRunning {
		t.Errorf("PgBouncer after Restart: %+v", st)
	}
}

// TestBackupAndRestoreOnDocker runs the provisioner's jobs on the Docker
// runtime (a private dockerd, the test image): deploy, a backup of rows and
// files, changes, a restore that brings them back, then the environment's
// delete with its pre-delete backup.
func TestBackupAndRestoreOnDocker(t *testing.T) {
	h := newDockerHarness(t)
	e := h.deploy("shop")
	h.seedOdooish(e, "https://shop.example.com")
	h.writeFiles(e, map[string]string{"ab/ab12cd": "an invoice", "cd/cd34": strings.Repeat("image ", 4000)})
	wantRows, wantFiles := h.tableSums(e), h.fileHashes(e)

	for _, format := range []string{"zip", "dump"} {
		b := h.backup("shop", format)
		if _, err := h.connectAs(e).Exec(t.Context(), "DELETE FROM res_partner WHERE id % 2 = 0"); err != nil {
			t.Fatal(err)
		}
		h.writeFiles(e, map[string]string{"ab/ab12cd": "changed"})
		h.wantSucceeded(h.restore(b, "shop", false))
		if got := h.tableSums(e); !maps.Equal(got, wantRows) {
			t.Errorf("%s: rows after the restore on docker: %v, want %v", format, got, wantRows)
		}
		if got := h.fileHashes(e); !maps.Equal(got, wantFiles) {
			t.Errorf("%s: files after the restore on docker: %v, want %v", format, got, wantFiles)
		}
	}
	h.succeed("shop", "delete")
	bs, err := h.st.ListBackups(t.Context(), "shop", 1)
	if err != nil || len(bs) != 1 || bs[0].Kind != "pre-delete" || bs[0].State != "succeeded" {
		t.Errorf("after the delete on docker: %+v, %v; want a succeeded pre-delete backup", bs, err)
	}
}

// TestReplicaJobsOnDocker: the read replica's jobs on the Docker runtime,
// as the operator runs them: Enable + Redeploy, Deploy Replica (it
// streams, a row written on the primary is read on it, odoo.conf points
// at it and Odoo's role logs in there), Rebuild, Remove (odoo.conf loses
// it, its container and slot are gone).
func TestReplicaJobsOnDocker(t *testing.T) {
	h := newDockerHarness(t)
	ctx := t.Context()
	e := h.deploy("rep")
	h.saveReplica(e, true)
	h.succeed("rep", provisioner.KindRedeploy)
	h.succeed("rep", provisioner.KindDeployReplica)
	e = h.env("rep")
	if e.ReplicaPort == nil {
		t.Fatal("no replica port recorded")
	}
	if got := h.superSQL(replicaOf("rep"), "SELECT status FROM pg_stat_wal_receiver"); got != "streaming" {
		t.Fatalf("WAL receiver after Deploy Replica: %q, want streaming", got)
	}
	conn := h.connectAs(e)
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE TABLE seen (note text); INSERT INTO seen VALUES ('written on the primary')"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the row reaches the replica", 20*time.Second, func() (bool, string) {
		out, err := h.rt.Exec(ctx, replicaOf("rep"), nil, "psql", "-X", "-q", "-A", "-t", "-d", e.DBName, "-c", "SELECT note FROM seen")
		return err == nil && strings.TrimSpace(string(out)) == "written on the primary", string(out)
	})
	conf := readOdooConf(t, h.p.OdooConfPath("rep"))
	host, port := h.rt.Address(replicaOf("rep"))
	if conf["db_replica_host"] != host || conf["db_replica_port"] != strconv.Itoa(port) {
		t.Fatalf("odoo.conf db_replica_host/port = %q:%q, want %s:%d", conf["db_replica_host"], conf["db_replica_port"], host, port)
	}
	rc, err := connect(ctx, port, e.DBName, e.DBUser, h.password(e))
	if err != nil {
		t.Fatalf("Odoo's role on the replica with odoo.conf's address: %v", err)
	}
	rc.Close(ctx)

	h.succeed("rep", provisioner.KindRebuildReplica)
	if got := h.superSQL(replicaOf("rep"), "SELECT status FROM pg_stat_wal_receiver"); got != "streaming" {
		t.Fatalf("WAL receiver after Rebuild: %q, want streaming", got)
	}

	h.succeed("rep", provisioner.KindRemoveReplica)
	if st, err := h.rt.Status(ctx, replicaOf("rep")); err != nil || st.State != runtime.StateMissing {
		t.Errorf("the replica after Remove: %+v, %v; want missing", st, err)
	}
	if got := h.superSQL(primary("rep"), "SELECT count(*) FROM pg_replication_slots"); got != "0" {
		t.Errorf("replication slots left on the primary: %s", got)
	}
	if conf := readOdooConf(t, h.p.OdooConfPath("rep")); conf["db_replica_host"] != "" || conf["db_replica_port"] != "" {
		t.Errorf("odoo.conf still names a replica: %q:%q", conf["db_replica_host"], conf["db_replica_port"])
	}
}
