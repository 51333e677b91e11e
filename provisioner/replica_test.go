package provisioner_test

import (
	"context"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

func replicaOf(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RoleReplica}
}

// superSQL runs a statement as the superuser on one of the environment's
// instances and returns its output.
func (h *harness) superSQL(id runtime.InstanceID, sql string) string {
	h.t.Helper()
	out, err := h.rt.Exec(context.Background(), id, nil, "psql", "-X", "-q", "-A", "-t", "-d", "postgres", "-c", sql)
	if err != nil {
		h.t.Fatalf("%s on %s: %v", sql, id, err)
	}
	return strings.TrimSpace(string(out))
}

func (h *harness) saveReplica(e store.Environment, on bool) {
	h.t.Helper()
	if _, err := h.st.UpdateDatabaseSettings(context.Background(), e.ID, func(d *store.DatabaseSettings) error {
		d.ReadReplica = on
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// TestReadReplica: enable, redeploy (the primary is prepared without a
// restart), deploy the replica: it streams, a row written on the primary is
// read on it, odoo.conf sends read-only queries to it; rebuild; remove while
// a writer keeps inserting: no failed write, slot and replica gone, odoo.conf
// without db_replica_*; turned off, the replication role goes.
func TestReadReplica(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("rr")
	_, started := h.show(e, "work_mem")

	if j := h.run("rr", provisioner.KindDeployReplica); j.State != store.JobFailed || !strings.Contains(j.Error, "Enable Read Replica") {
		t.Fatalf("deploy_replica before the primary is prepared: %q %q", j.State, j.Error)
	}

	h.saveReplica(e, true)
	h.succeed("rr", provisioner.KindRedeploy)
	e = h.env("rr")
	if e.ReplicationUser == "" {
		t.Fatal("no replication role recorded after the redeploy")
	}
	if got := h.superSQL(primary("rr"), "SELECT rolreplication FROM pg_roles WHERE rolname = '"+e.ReplicationUser+"'"); got != "t" {
		t.Fatalf("replication role on the primary: %q", got)
	}
	if _, now := h.show(e, "work_mem"); !now.Equal(started) {
		t.Errorf("preparing the primary for a replica restarted it (%v → %v)", started, now)
	}

	start := time.Now()
	j := h.succeed("rr", provisioner.KindDeployReplica)
	t.Logf("replica deployed in %v", time.Since(start).Round(time.Millisecond))
	e = h.env("rr")
	if e.ReplicaPort == nil {
		t.Fatal("no replica port recorded")
	}
	if got := h.superSQL(replicaOf("rr"), "SELECT status FROM pg_stat_wal_receiver"); got != "streaming" {
		t.Fatalf("WAL receiver after the deploy job: %q, want streaming", got)
	}
	if got := h.superSQL(replicaOf("rr"), "SELECT pg_is_in_recovery()"); got != "t" {
		t.Errorf("the replica is not in recovery: %q", got)
	}
	if log := strings.Join(h.jobLog(j.ID), "\n"); !strings.Contains(log, "Copying the primary") {
		t.Errorf("the job log shows no copy progress:\n%s", log)
	}
	conn := h.connectAs(e)
	if _, err := conn.Exec(ctx, "CREATE TABLE seen (note text); INSERT INTO seen VALUES ('written on the primary')"); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the row reaches the replica", 10*time.Second, func() (bool, string) {
		out, err := h.rt.Exec(ctx, replicaOf("rr"), nil, "psql", "-X", "-q", "-A", "-t", "-d", e.DBName, "-c", "SELECT note FROM seen")
		return err == nil && strings.TrimSpace(string(out)) == "written on the primary", string(out)
	})
	conf := readOdooConf(t, h.p.OdooConfPath("rr"))
	if _, port := h.rt.Address(replicaOf("rr")); conf["db_replica_host"] != "127.0.0.1" || conf["db_replica_port"] != strconv.Itoa(port) {
		t.Errorf("odoo.conf db_replica_host/port = %q:%q, want 127.0.0.1:%d", conf["db_replica_host"], conf["db_replica_port"], port)
	}
	// Odoo's role reads from the replica with odoo.conf's credentials.
	rc, err := connect(ctx, *e.ReplicaPort, e.DBName, e.DBUser, h.password(e))
	if err != nil {
		t.Fatalf("Odoo's role on the replica: %v", err)
	}
	rc.Close(ctx)
	// No password in a file others could read, none in a conf file.
	replPassword, err := h.box.Open(e.ReplicationPassword)
	if err != nil {
		t.Fatal(err)
	}
	noSecretOutside(t, filepath.Join(h.envDir("rr"), "replica"), replPassword)

	t.Run("a redeploy keeps the replica streaming and in odoo.conf", func(t *testing.T) {
		h.save(e, map[string]string{"work_mem": "12MB"})
		h.succeed("rr", provisioner.KindRedeploy)
		if got := h.superSQL(replicaOf("rr"), "SHOW work_mem"); got != "12MB" {
			t.Errorf("the replica's work_mem after the redeploy = %s, want 12MB (tuning applies to it too)", got)
		}
		if got := h.superSQL(replicaOf("rr"), "SELECT status FROM pg_stat_wal_receiver"); got != "streaming" {
			t.Errorf("WAL receiver after the redeploy: %q", got)
		}
		if conf := readOdooConf(t, h.p.OdooConfPath("rr")); conf["db_replica_port"] == "" {
			t.Error("the redeploy dropped db_replica_port from odoo.conf")
		}
	})

	t.Run("rebuild", func(t *testing.T) {
		h.succeed("rr", provisioner.KindRebuildReplica)
		if got := h.superSQL(replicaOf("rr"), "SELECT status FROM pg_stat_wal_receiver"); got != "streaming" {
			t.Fatalf("WAL receiver after the rebuild: %q", got)
		}
	})

	t.Run("remove while a writer inserts", func(t *testing.T) {
		w := h.connectAs(e)
		if _, err := w.Exec(ctx, "CREATE TABLE writes (n int)"); err != nil {
			t.Fatal(err)
		}
		_, before := h.show(e, "work_mem")
		var stop atomic.Bool
		var failed, written atomic.Int64
		var wg sync.WaitGroup
		wg.Go(func() {
			for i := 0; !stop.Load(); i++ {
				if _, err := w.Exec(context.Background(), "INSERT INTO writes VALUES ($1)", i); err != nil {
					failed.Add(1)
					t.Errorf("a write failed during the remove: %v", err)
					return
				}
				written.Add(1)
			}
		})
		h.succeed("rr", provisioner.KindRemoveReplica)
		stop.Store(true)
		wg.Wait()
		if written.Load() == 0 {
			t.Error("the writer wrote nothing")
		}
		if got := h.superSQL(primary("rr"), "SELECT count(*) FROM pg_replication_slots"); got != "0" {
			t.Errorf("slots left on the primary: %s", got)
		}
		if st, _ := h.rt.Status(ctx, replicaOf("rr")); st.State != runtime.StateMissing {
			t.Errorf("replica after remove: %+v", st)
		}
		if h.env("rr").ReplicaPort != nil {
			t.Error("the replica's port is still recorded")
		}
		conf := readOdooConf(t, h.p.OdooConfPath("rr"))
		if _, ok := conf["db_replica_host"]; ok {
			t.Errorf("odoo.conf still names a replica: %v", conf)
		}
		if _, now := h.show(e, "work_mem"); !now.Equal(before) {
			t.Errorf("removing the replica restarted the primary (%v → %v)", before, now)
		}
	})

	t.Run("turned off, the replication role goes", func(t *testing.T) {
		h.saveReplica(e, false)
		h.succeed("rr", provisioner.KindRedeploy)
		if got := h.superSQL(primary("rr"), "SELECT count(*) FROM pg_roles WHERE rolname = '"+e.ReplicationUser+"'"); got != "0" {
			t.Errorf("replication role still there: %s", got)
		}
	})
}

// noSecretOutside fails when a file under dir holds secret, except a
// passfile readable by its owner alone.
func noSecretOutside(t *testing.T, dir, secret string) {
	t.Helper()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		fi, err := d.Info()
		if err != nil || !fi.Mode().IsRegular() || fi.Size() > 1<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil || !strings.Contains(string(b), secret) {
			return err
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s holds the replication password and is %v, not 0600", path, fi.Mode().Perm())
		}
		if strings.HasSuffix(path, ".conf") {
			t.Errorf("%s, a configuration file, holds the replication password", path)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestReplicaRequirements: a starter plan, Odoo 17 and a full server each
// refuse a replica with the reason, and nothing is made.
func TestReplicaRequirements(t *testing.T) {
	h := newHarness(t)
	for _, c := range []struct{ name, plan, odoo, want string }{
		{"small", render.PlanStarter, "18.0", "Pro"},
		{"old", render.PlanPro, "17.0", "Odoo 17.0 cannot use a replica"},
	} {
		e, err := h.st.CreateEnvironment(t.Context(), store.Environment{Name: c.name, OdooVersion: c.odoo, Stage: "staging", Plan: c.plan})
		if err != nil {
			t.Fatal(err)
		}
		reqs, err := h.p.ReplicaRequirements(t.Context(), e)
		if err != nil {
			t.Fatal(err)
		}
		if err := provisioner.RequirementsMet(reqs); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: requirements %+v → %v, want refused saying %q", c.name, reqs, err, c.want)
		}
	}
	full := provisioner.New(provisioner.Config{PortLow: h.lo, PortHigh: h.hi, Capacity: render.Resources{Memory: 6 * render.GiB}, BackupDir: h.backups}, h.st, h.rt, h.box, slog.Default())
	e := h.deploy("big") // pro: 4GB; a replica needs 4GB more, 2GB are left
	reqs, err := full.ReplicaRequirements(t.Context(), e)
	if err != nil {
		t.Fatal(err)
	}
	if err := provisioner.RequirementsMet(reqs); err == nil || !strings.Contains(err.Error(), "not enough memory") {
		t.Errorf("a full server: %+v → %v", reqs, err)
	}
}

// TestReplicaBehindPgBouncer: with pooling on, the replica gets its own
// PgBouncer and odoo.conf's db_replica_port points at it; removing the
// replica removes it too.
func TestReplicaBehindPgBouncer(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("rp")
	h.saveReplica(e, true)
	h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 10, PoolMode: "transaction", MaxClientConn: 100})
	h.succeed("rp", provisioner.KindRedeploy)
	h.succeed("rp", provisioner.KindDeployReplica)
	rp := runtime.InstanceID{Env: "rp", Role: runtime.RoleReplicaPooler}
	if st, err := h.rt.Status(ctx, rp); err != nil || st.State != runtime.StateRunning {
		t.Fatalf("the replica's PgBouncer: %+v, %v", st, err)
	}
	_, port := h.rt.Address(rp)
	conf := readOdooConf(t, h.p.OdooConfPath("rp"))
	if conf["db_replica_port"] != strconv.Itoa(port) {
		t.Fatalf("odoo.conf db_replica_port = %s, want the replica's PgBouncer %d", conf["db_replica_port"], port)
	}
	c, err := simple(ctx, port, conf["db_name"], conf["db_user"], conf["db_password"])
	if err != nil {
		t.Fatalf("through the replica's PgBouncer with odoo.conf's credentials: %v", err)
	}
	var standby bool
	if err := c.QueryRow(ctx, "SELECT pg_is_in_recovery()").Scan(&standby); err != nil || !standby {
		t.Errorf("through the replica's PgBouncer: in recovery %v, %v; want the replica", standby, err)
	}
	c.Close(ctx)

	// A pool change reaches it too (reload).
	h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 12, PoolMode: "transaction", MaxClientConn: 100})
	h.succeed("rp", provisioner.KindRedeploy)
	if conf := readOdooConf(t, h.p.OdooConfPath("rp")); conf["db_replica_port"] != strconv.Itoa(port) {
		t.Errorf("after a redeploy db_replica_port = %s, want %d", conf["db_replica_port"], port)
	}

	h.succeed("rp", provisioner.KindRemoveReplica)
	if st, _ := h.rt.Status(ctx, rp); st.State != runtime.StateMissing {
		t.Errorf("the replica's PgBouncer after remove: %+v", st)
	}
	if !testkit.PortFree(port) {
		t.Errorf("port %d still taken", port)
	}
}
