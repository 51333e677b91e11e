package provisioner

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// deployKind makes an environment's cluster, database, role, filestore and
// odoo.conf for the first time.
var deployKind = JobKind{
	Kind:    KindDeploy,
	Lane:    store.LaneOps,
	Action:  true,
	Timeout: 10 * time.Minute,
	Check: func(env store.Environment) error {
		if env.Deployed() {
			return invalid(env.Name + " is already deployed; use Redeploy to apply changes.")
		}
		return nil
	},
	Params:   reflect.TypeFor[DeployParams](),
	Snapshot: snapshotSettings,
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		return r.deploy(ctx, env)
	},
}

// deploy makes (or re-makes) the environment's cluster, database, role,
// pooler, filestore and odoo.conf, with the settings of the job's snapshot,
// reloading or restarting what runs as little as the changes allow. Every
// step can run twice without harm.
func (r *JobRun) deploy(ctx context.Context, env store.Environment) error {
	params, err := ParamsOf[DeployParams](r)
	if err != nil {
		return err
	}
	if params.Settings == nil {
		snap, err := snapshotSettings(ctx, r.p, env)
		if err != nil {
			return err
		}
		params = snap.(DeployParams)
	}
	firstDeploy := !env.Deployed()
	err = r.deploySteps(ctx, env, *params.Settings)
	if err != nil && firstDeploy && !r.Interrupted(ctx) {
		// Nothing half-made is left running: a first deploy that failed
		// removes what it made (the port and passwords stay recorded and
		// are reused by the next try). One cut short by a shutdown keeps it
		// and resumes at the next start.
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Minute)
		defer cancel()
		r.Logf(cctx, "removing what this failed deploy made")
		if rerr := r.p.removeAll(cctx, env.Name); rerr != nil {
			r.Logf(cctx, "cleanup failed: %s (remove %s by hand)", rerr, r.p.rt.EnvPath(env.Name, "."))
			return fmt.Errorf("%w; cleanup also failed: %v", err, rerr)
		}
	}
	return err
}

func (r *JobRun) deploySteps(ctx context.Context, env store.Environment, settings DeploySettings) error {
	r.Step(ctx, "Allocating a port", 5)
	port, err := r.p.allocatePort(ctx, env)
	if err != nil {
		return err
	}
	r.Logf(ctx, "port %d", port)

	r.Step(ctx, "Generating credentials", 10)
	env, err = r.p.store.SetCredentials(ctx, env.ID, dbName(env.Name), dbUser(env.Name),
		r.p.box.Seal(randomSecret()), r.p.box.Seal(randomSecret()))
	if err != nil {
		return err
	}
	dbPassword, err := r.p.box.Open(env.DBPassword)
	if err != nil {
		return err
	}
	adminPassword, err := r.p.box.Open(env.AdminPassword)
	if err != nil {
		return err
	}
	env, monitorPassword, err := r.monitorCredentials(ctx, env)
	if err != nil {
		return err
	}

	replPassword := ""
	if settings.ReadReplica {
		env, err = r.p.store.SetReplicationCredentials(ctx, env.ID, replicationRole(env.Name), r.p.box.Seal(randomSecret()))
		if err != nil {
			return err
		}
		if replPassword, err = r.p.box.Open(env.ReplicationPassword); err != nil {
			return err
		}
	} else if env.ReplicaPort != nil {
		// Read replica turned off: the replica goes first (odoo.conf
		// loses it, its slot is dropped), then the primary's settings.
		r.Step(ctx, "Removing the read replica (turned off)", 15)
		if err := r.removeReplica(ctx, env); err != nil {
			return err
		}
		env.ReplicaPort = nil
	}

	r.Step(ctx, "Creating the PostgreSQL cluster", 20)
	id := primary(env.Name)
	spec := runtime.Spec{ID: id, Port: port, Conf: settings.PostgreSQLConf, HBA: r.p.hba(env, settings)}
	var previous map[string]string
	if env.Deployed() {
		applied, err := r.p.appliedSettings(ctx, env)
		if err != nil {
			return err
		}
		previous = applied.PostgreSQLConf
	}
	// A standby must keep some settings at least as high as its primary's
	// (or its recovery pauses): raised, they reach the replica first;
	// lowered, the primary first.
	replicaFirst := env.ReplicaPort != nil && raisesStandbyMinimum(previous, settings.PostgreSQLConf)
	if replicaFirst {
		if err := r.applyReplicaConf(ctx, env, settings, replPassword, previous); err != nil {
			return err
		}
	}
	if err := r.applyConf(ctx, spec, previous); err != nil {
		return err
	}
	if env.ReplicaPort != nil && !replicaFirst {
		if err := r.applyReplicaConf(ctx, env, settings, replPassword, previous); err != nil {
			return err
		}
	}
	r.Step(ctx, "Creating the database and its role", 70)
	// One psql session does it all (each psql start costs a connection):
	// reload (a resumed deploy may find the server running with an older
	// pg_hba.conf), the role, the database if missing, and its grants.
	sql := monitorRoleSQL(env.MonitorUser, monitorPassword) + provisionSQL(env.DBName, env.DBUser, dbPassword)
	if settings.ReadReplica {
		sql += replicationSQL(env.ReplicationUser, replPassword)
	} else if env.ReplicationUser != "" {
		sql += "DROP ROLE IF EXISTS " + quoteIdent(env.ReplicationUser) + ";\n"
	}
	if _, err := r.p.rt.Exec(ctx, id, []byte(sql), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "-"); err != nil {
		return err
	}

	r.Step(ctx, "Configuring PgBouncer", 78)
	if err := r.deployPooler(ctx, env, settings, dbPassword, monitorPassword); err != nil {
		return err
	}
	if env.ReplicaPort != nil {
		if err := r.deployPoolerFor(ctx, env, replicaPooler(env.Name), settings, dbPassword, monitorPassword); err != nil {
			return err
		}
	}

	r.Step(ctx, "Writing the filestore and odoo.conf", 85)
	if err := r.p.writeOdooFiles(ctx, env, settings, dbPassword, adminPassword); err != nil {
		return err
	}
	if err := r.removePoolerIfOff(ctx, env, settings); err != nil {
		return err
	}

	r.Step(ctx, "Checking that Odoo's role can connect", 95)
	// Odoo needs its database and `postgres` (its start-up check, its bus).
	for _, db := range []string{env.DBName, "postgres"} {
		if err := r.p.checkConnect(ctx, id, db, env.DBUser, dbPassword); err != nil {
			return err
		}
	}
	if err := r.p.checkConnect(ctx, id, "postgres", env.MonitorUser, monitorPassword); err != nil {
		return err
	}
	// What this deploy applied: Settings → Database compares it with what
	// is saved to show what waits for the next redeploy.
	if err := r.p.recordApplied(ctx, env.ID, settings); err != nil {
		return err
	}
	if err := r.p.store.MarkDeployed(ctx, env.ID); err != nil {
		return err
	}
	return r.p.store.SetDesiredState(ctx, env.ID, "running")
}

// allocatePort returns the environment's port, choosing one first: the lowest
// port of the range that no environment has and nothing on the host listens on.
func (p *Provisioner) allocatePort(ctx context.Context, env store.Environment) (int, error) {
	if env.Port != nil {
		if env.Deployed() || p.rt.PortFree(*env.Port) {
			return *env.Port, nil
		}
		// A deploy that never succeeded may find its recorded port taken
		// since: by its own half-made cluster (keep it), or by something
		// else (choose another, or every retry would fail).
		if st, err := p.rt.Status(ctx, primary(env.Name)); err == nil && st.State == runtime.StateRunning {
			return *env.Port, nil
		}
		if err := p.store.ClearPort(ctx, env.ID); err != nil {
			return 0, err
		}
	}
	return p.claimPort(ctx, env.ID, store.InstancePrimary)
}
