package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

func replicaID(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RoleReplica}
}

// replicationRole is the role the environment's replica streams as.
func replicationRole(env string) string { return "replication_" + strings.ReplaceAll(env, "-", "_") }

// replicaCheck refuses a replica job on an environment that is not deployed
// and running.
func replicaCheck(env store.Environment) error {
	if !env.Deployed() {
		return invalid(env.Name + " is not deployed yet; use Deploy.")
	}
	if env.DesiredState != "running" {
		return invalid(env.Name + " is stopped; start it first.")
	}
	return nil
}

var deployReplicaKind = JobKind{
	Kind:    KindDeployReplica,
	Lane:    store.LaneOps,
	Timeout: 30 * time.Minute,
	Check:   replicaCheck,
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		return r.deployReplica(ctx, env, false)
	},
}

var rebuildReplicaKind = JobKind{
	Kind:    KindRebuildReplica,
	Lane:    store.LaneOps,
	Timeout: 30 * time.Minute,
	Check:   replicaCheck,
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		return r.deployReplica(ctx, env, true)
	},
}

var removeReplicaKind = JobKind{
	Kind:    KindRemoveReplica,
	Lane:    store.LaneOps,
	Timeout: 10 * time.Minute,
	Check: func(env store.Environment) error {
		if !env.Deployed() {
			return invalid(env.Name + " is not deployed yet.")
		}
		return nil
	},
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		return r.removeReplica(ctx, env)
	},
}

// deployReplica makes the environment's streaming replica (rebuild: a new
// one from a fresh base backup and a fresh slot, in place of the old): the
// slot on the primary, pg_basebackup with --checkpoint=fast through it, the
// standby started on its own port; the job ends when the WAL receiver
// streams, and only then does odoo.conf send Odoo's read-only queries to it.
// The primary keeps serving throughout. A failed deploy leaves no replica
// and no slot behind.
func (r *JobRun) deployReplica(ctx context.Context, env store.Environment, rebuild bool) error {
	r.Step(ctx, "Checking the replica's requirements", 2)
	reqs, err := r.p.ReplicaRequirements(ctx, env)
	if err != nil {
		return err
	}
	if err := RequirementsMet(reqs); err != nil {
		return err
	}
	applied, err := r.p.appliedSettings(ctx, env)
	if err != nil {
		return err
	}
	if !applied.ReadReplica || env.ReplicationUser == "" {
		return invalid("the primary is not ready for a replica: check Enable Read Replica, Save Settings and Redeploy first")
	}
	replPassword, err := r.p.box.Open(env.ReplicationPassword)
	if err != nil {
		return err
	}
	id := replicaID(env.Name)
	if rebuild {
		r.Step(ctx, "Removing the old replica", 5)
		// Odoo reads from the primary until the new replica streams.
		noReplica := env
		noReplica.ReplicaPort = nil
		if err := r.rewriteOdooConf(ctx, noReplica, applied); err != nil {
			return err
		}
		if err := r.removePooler(ctx, env, replicaPooler(env.Name)); err != nil {
			return err
		}
		if err := r.p.rt.Remove(ctx, id); err != nil {
			return err
		}
		if err := r.dropSlot(ctx, env); err != nil {
			return err
		}
	}
	r.Step(ctx, "Allocating a port", 8)
	port, err := r.p.instancePort(ctx, env, store.InstanceReplica)
	if err != nil {
		return err
	}
	cleanup := func(cause error) error {
		if r.Interrupted(ctx) {
			return cause
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		r.Logf(cctx, "removing what this failed replica deploy made")
		err := errors.Join(r.removePooler(cctx, env, replicaPooler(env.Name)), r.p.rt.Remove(cctx, id), r.dropSlot(cctx, env),
			r.p.store.DeleteInstance(cctx, env.ID, store.InstanceReplica))
		if err != nil {
			return fmt.Errorf("%w; cleanup also failed: %v", cause, err)
		}
		return cause
	}

	r.Step(ctx, "Creating the replication slot", 10)
	if _, err := r.psql(ctx, primary(env.Name), "SELECT pg_create_physical_replication_slot("+quoteLiteral(runtime.ReplicaSlot)+") WHERE NOT EXISTS (SELECT 1 FROM pg_replication_slots WHERE slot_name = "+quoteLiteral(runtime.ReplicaSlot)+")"); err != nil {
		return cleanup(err)
	}

	r.Step(ctx, "Copying the primary (pg_basebackup)", 15)
	var lastReport time.Time
	progress := func(done, total int64) {
		if time.Since(lastReport) < 500*time.Millisecond && done < total {
			return
		}
		lastReport = time.Now()
		pct := 15
		if total > 0 {
			pct = 15 + int(60*min(done, total)/total)
		}
		label := "Copying the primary: " + render.FormatBytes(done)
		if total > 0 {
			label += " of " + render.FormatBytes(total)
		}
		r.Step(ctx, label, pct)
	}
	spec := runtime.Spec{ID: id, Port: port, Conf: applied.PostgreSQLConf,
		HBA: r.p.hba(env, applied),
		Init: runtime.Init{Kind: runtime.InitBaseBackup, From: primary(env.Name), Slot: runtime.ReplicaSlot,
			User: env.ReplicationUser, Password: replPassword, Progress: progress}}
	if err := r.p.rt.Create(ctx, spec); err != nil {
		return cleanup(err)
	}
	r.Step(ctx, "Starting the replica", 80)
	if err := r.p.rt.Start(ctx, id); err != nil {
		return cleanup(err)
	}
	r.Step(ctx, "Waiting for the replica to stream", 88)
	if err := r.waitStreaming(ctx, id); err != nil {
		return cleanup(err)
	}
	env, err = r.p.store.EnvironmentByName(ctx, env.Name)
	if err != nil {
		return err
	}
	if pool := applied.PgBouncer; pool != nil && pool.Enabled {
		r.Step(ctx, "Starting the replica's PgBouncer", 92)
		dbPassword, err := r.p.box.Open(env.DBPassword)
		if err != nil {
			return err
		}
		monitorPassword, err := r.p.box.Open(env.MonitorPassword)
		if err != nil {
			return err
		}
		if err := r.deployPoolerFor(ctx, env, replicaPooler(env.Name), applied, dbPassword, monitorPassword); err != nil {
			return cleanup(err)
		}
	}
	r.Step(ctx, "Pointing Odoo's read-only queries at the replica", 95)
	if err := r.rewriteOdooConf(ctx, env, applied); err != nil {
		return err
	}
	host, rport := r.p.rt.Address(id)
	r.Logf(ctx, "the replica streams on %s:%d; odoo.conf has db_replica_host/db_replica_port", host, rport)
	return nil
}

// waitStreaming waits (at most two minutes) until the replica's WAL
// receiver streams, not merely until it accepts connections.
func (r *JobRun) waitStreaming(ctx context.Context, id runtime.InstanceID) error {
	deadline := time.Now().Add(2 * time.Minute)
	last := ""
	for {
		out, err := r.psql(ctx, id, "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), 'no WAL receiver')")
		if err == nil {
			last = strings.TrimSpace(string(out))
			if last == "streaming" {
				return nil
			}
		} else {
			last = err.Error()
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the replica does not stream after 2 minutes (WAL receiver: %s)", last)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// removeReplica takes the replica out of odoo.conf first (Odoo's next
// connections go to the primary), then stops and deletes it and drops its
// slot. The primary is not restarted and keeps serving writes.
func (r *JobRun) removeReplica(ctx context.Context, env store.Environment) error {
	r.Step(ctx, "Taking the replica out of odoo.conf", 10)
	applied, err := r.p.appliedSettings(ctx, env)
	if err != nil {
		return err
	}
	noReplica := env
	noReplica.ReplicaPort = nil
	if err := r.rewriteOdooConf(ctx, noReplica, applied); err != nil {
		return err
	}
	r.Step(ctx, "Removing the replica", 40)
	if err := r.removePooler(ctx, env, replicaPooler(env.Name)); err != nil {
		return err
	}
	if err := r.p.rt.Remove(ctx, replicaID(env.Name)); err != nil {
		return err
	}
	r.Step(ctx, "Dropping the replication slot", 80)
	if err := r.dropSlot(ctx, env); err != nil {
		return err
	}
	return r.p.store.DeleteInstance(ctx, env.ID, store.InstanceReplica)
}

// dropSlot drops the replica's slot on the primary if it is there (a slot
// still in use by a walsender being stopped is retried briefly).
func (r *JobRun) dropSlot(ctx context.Context, env store.Environment) error {
	sql := "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name = " + quoteLiteral(runtime.ReplicaSlot)
	var err error
	for range 50 {
		if _, err = r.psql(ctx, primary(env.Name), sql); err == nil || !strings.Contains(err.Error(), "is active") {
			return err
		}
		time.Sleep(100 * time.Millisecond)
	}
	return err
}

// psql runs one statement as the superuser on an instance and returns its
// unaligned, tuples-only output.
func (r *JobRun) psql(ctx context.Context, id runtime.InstanceID, sql string) ([]byte, error) {
	return r.p.rt.Exec(ctx, id, nil, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
}

// rewriteOdooConf writes odoo.conf again from the environment as recorded
// and the applied settings.
func (r *JobRun) rewriteOdooConf(ctx context.Context, env store.Environment, applied DeploySettings) error {
	dbPassword, err := r.p.box.Open(env.DBPassword)
	if err != nil {
		return err
	}
	adminPassword, err := r.p.box.Open(env.AdminPassword)
	if err != nil {
		return err
	}
	return r.p.writeOdooFiles(ctx, env, applied, dbPassword, adminPassword)
}

// hba returns the primary's (and replica's) pg_hba lines for the settings:
// the replication role's line when a replica may stream.
func (p *Provisioner) hba(env store.Environment, s DeploySettings) []string {
	network := p.rt.ClientNetwork(env.Name)
	lines := append(render.RestoreHBA(stagingDB(env.ID), env.DBUser, network), render.HBA(env.DBName, env.DBUser, network)...)
	if s.ReadReplica && env.ReplicationUser != "" {
		lines = append([]string{render.ReplicationHBA(env.ReplicationUser, network)}, lines...)
	}
	return lines
}

// replicationSQL creates or updates the replication role (REPLICATION, no
// other right, SCRAM password); run as the superuser on `postgres`.
func replicationSQL(user, password string) string {
	u := quoteIdent(user)
	return "SET password_encryption = 'scram-sha-256';\n" +
		"SELECT " + quoteLiteral("CREATE ROLE "+u) + " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " + quoteLiteral(user) + ")\\gexec\n" +
		"ALTER ROLE " + u + " WITH LOGIN REPLICATION NOSUPERUSER NOCREATEDB NOCREATEROLE NOBYPASSRLS PASSWORD " + quoteLiteral(password) + ";\n"
}

// standbyMinimums are the settings a hot standby must hold at least as high
// as its primary, or its recovery pauses.
var standbyMinimums = []string{"max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions", "max_locks_per_transaction"}

// raisesStandbyMinimum says whether the new configuration raises one of
// standbyMinimums (then the replica must have it before the primary).
func raisesStandbyMinimum(old, new map[string]string) bool {
	for _, name := range standbyMinimums {
		o, err1 := strconv.Atoi(old[name])
		n, err2 := strconv.Atoi(new[name])
		if err2 == nil && (err1 != nil || n > o) {
			return true
		}
	}
	return false
}

// applyReplicaConf gives the replica the primary's tuning (a standby must
// match it) and applies it as applyConf does; previous is what both ran.
func (r *JobRun) applyReplicaConf(ctx context.Context, env store.Environment, settings DeploySettings, replPassword string, previous map[string]string) error {
	spec := runtime.Spec{ID: replicaID(env.Name), Port: *env.ReplicaPort, Conf: settings.PostgreSQLConf, HBA: r.p.hba(env, settings),
		Init: runtime.Init{Kind: runtime.InitBaseBackup, From: primary(env.Name), Slot: runtime.ReplicaSlot, User: env.ReplicationUser, Password: replPassword}}
	r.Logf(ctx, "applying the settings to the replica")
	return r.applyConf(ctx, spec, previous)
}
