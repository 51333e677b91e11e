package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

func pooler(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePooler}
}

// deployPooler makes the environment's PgBouncer match its settings when
// they turn it on: an instance on a port of its own, pgbouncer.ini and an
// auth_file of SCRAM verifiers copied from pg_authid (never a password),
// both 0600. A running PgBouncer is reloaded (RELOAD on its console), which
// applies pool sizes, modes and the auth_file without dropping clients; a
// stopped one is started. Then a client logs in through it with Odoo's
// credentials. Off: nothing here (removePoolerIfOff, once odoo.conf points
// at PostgreSQL again).
func (r *JobRun) deployPooler(ctx context.Context, env store.Environment, settings DeploySettings, dbPassword, monitorPassword string) error {
	return r.deployPoolerFor(ctx, env, primaryPooler(env.Name), settings, dbPassword, monitorPassword)
}

// poolerFor is one of an environment's PgBouncers: the primary's, or the
// replica's (Odoo's read-only queries go through it when pooling is on).
type poolerFor struct {
	id     runtime.InstanceID
	role   string // the instances record's role
	server runtime.InstanceID
	what   string // for the job log
}

func primaryPooler(env string) poolerFor {
	return poolerFor{id: pooler(env), role: store.InstancePooler, server: primary(env), what: "PgBouncer"}
}

func replicaPooler(env string) poolerFor {
	return poolerFor{id: runtime.InstanceID{Env: env, Role: runtime.RoleReplicaPooler}, role: store.InstanceReplicaPooler,
		server: replicaID(env), what: "the replica's PgBouncer"}
}

// deployPoolerFor makes one of the environment's PgBouncers (see
// deployPooler) in front of its server.
func (r *JobRun) deployPoolerFor(ctx context.Context, env store.Environment, pf poolerFor, settings DeploySettings, dbPassword, monitorPassword string) error {
	pool := settings.PgBouncer
	if pool == nil || !pool.Enabled {
		return nil
	}
	id := pf.id
	fresh := false
	port, err := r.p.instancePort(ctx, env, pf.role)
	if err != nil {
		return err
	}
	st, err := r.p.rt.Status(ctx, id)
	if err != nil {
		return err
	}
	running := st.State == runtime.StateRunning
	fresh = st.State == runtime.StateMissing
	r.Logf(ctx, "%s on port %d: %s pooling, pool size %d, max %d clients", pf.what, port, pool.PoolMode, pool.PoolSize, pool.MaxClientConn)
	if err := r.p.rt.Create(ctx, runtime.Spec{ID: id, Port: port, Program: runtime.ProgramPgBouncer, Init: runtime.Init{Kind: runtime.InitNone}}); err != nil {
		return err
	}
	fail := func(err error) error {
		if fresh {
			// A PgBouncer this job made and could not start is not left
			// behind; odoo.conf still points at PostgreSQL.
			cctx := context.WithoutCancel(ctx)
			if rerr := r.p.rt.Remove(cctx, id); rerr == nil {
				_ = r.p.store.DeleteInstance(cctx, env.ID, pf.role)
			}
		}
		return err
	}
	secrets, err := r.roleSecrets(ctx, env, env.DBUser, env.MonitorUser)
	if err != nil {
		return fail(err)
	}
	userlist, err := render.PgBouncerUserlist([]render.AuthUser{{Name: env.DBUser, Secret: secrets[env.DBUser]}, {Name: env.MonitorUser, Secret: secrets[env.MonitorUser]}})
	if err != nil {
		return fail(err)
	}
	listen, lport := r.p.rt.Address(id)
	serverHost, serverPort := r.p.rt.PeerAddress(pf.server)
	ini, err := render.PgBouncerIni(render.PgBouncerConf{
		ListenAddr: listen, ListenPort: lport, ServerHost: serverHost, ServerPort: serverPort,
		DBName: env.DBName, Pool: *pool, MaxConnections: MaxConnectionsOf(settings.PostgreSQLConf),
		AdminUser: env.MonitorUser,
		AuthFile:  r.p.rt.InstancePath(id, runtime.PgBouncerAuthFile),
		LogFile:   r.p.rt.InstancePath(id, runtime.PgBouncerLogFile),
		PidFile:   r.p.rt.InstancePath(id, runtime.PgBouncerPidFile),
	})
	if err != nil {
		return fail(err)
	}
	if err := r.p.rt.WriteFile(ctx, id, runtime.PgBouncerAuthFile, userlist, 0o600); err != nil {
		return fail(err)
	}
	if err := r.p.rt.WriteFile(ctx, id, runtime.PgBouncerIniFile, ini, 0o600); err != nil {
		return fail(err)
	}
	if running {
		if err := r.p.poolerConsole(ctx, id, env, monitorPassword, "RELOAD"); err != nil {
			return fmt.Errorf("reload %s: %w", pf.what, err)
		}
		r.Logf(ctx, "reloaded %s (its clients stay connected)", pf.what)
	} else if err := r.p.rt.Start(ctx, id); err != nil {
		return fail(err)
	}
	// Odoo's credentials through PgBouncer, both databases Odoo uses.
	for _, db := range []string{env.DBName, "postgres"} {
		if err := r.p.checkPoolerConnect(ctx, id, db, env.DBUser, dbPassword); err != nil {
			return fail(err)
		}
	}
	return nil
}

// removePoolerIfOff stops and removes the environment's PgBouncers (the
// primary's and the replica's) when its settings turn pooling off, and
// frees their ports. It runs after odoo.conf points at PostgreSQL again.
func (r *JobRun) removePoolerIfOff(ctx context.Context, env store.Environment, settings DeploySettings) error {
	if settings.PgBouncer != nil && settings.PgBouncer.Enabled {
		return nil
	}
	for _, pf := range []poolerFor{replicaPooler(env.Name), primaryPooler(env.Name)} {
		if err := r.removePooler(ctx, env, pf); err != nil {
			return err
		}
	}
	return nil
}

// removePooler stops and removes one PgBouncer and frees its port.
func (r *JobRun) removePooler(ctx context.Context, env store.Environment, pf poolerFor) error {
	st, err := r.p.rt.Status(ctx, pf.id)
	if err != nil {
		return err
	}
	if st.State != runtime.StateMissing {
		r.Step(ctx, "Removing "+pf.what, 90)
		if err := r.p.rt.Remove(ctx, pf.id); err != nil {
			return err
		}
		r.Logf(ctx, "%s removed", pf.what)
	}
	return r.p.store.DeleteInstance(ctx, env.ID, pf.role)
}

// roleSecrets reads the SCRAM verifiers of the named roles from pg_authid
// (as the superuser, over the socket).
func (r *JobRun) roleSecrets(ctx context.Context, env store.Environment, roles ...string) (map[string]string, error) {
	var quoted []string
	for _, n := range roles {
		quoted = append(quoted, quoteLiteral(n))
	}
	sql := "SELECT rolname, coalesce(rolpassword, '') FROM pg_authid WHERE rolname IN (" + strings.Join(quoted, ", ") + ")"
	b, err := r.p.rt.Exec(ctx, primary(env.Name), nil, "psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		if name, secret, ok := strings.Cut(line, "\t"); ok {
			out[name] = secret
		}
	}
	for _, n := range roles {
		if !strings.HasPrefix(out[n], "SCRAM-SHA-256$") {
			return nil, fmt.Errorf("role %s has no SCRAM password for PgBouncer's auth_file", n)
		}
	}
	return out, nil
}

// poolerConsole runs one command on a PgBouncer's console as pgdeck's
// monitoring role (an admin_users entry).
func (p *Provisioner) poolerConsole(ctx context.Context, id runtime.InstanceID, env store.Environment, monitorPassword, command string) error {
	return p.withConn(ctx, id, "pgbouncer", env.MonitorUser, monitorPassword, func(ctx context.Context, conn *pgx.Conn) error {
		_, err := conn.Exec(ctx, command)
		return err
	})
}

// checkPoolerConnect logs in through PgBouncer and runs a query.
func (p *Provisioner) checkPoolerConnect(ctx context.Context, id runtime.InstanceID, db, user, password string) error {
	if err := p.withConn(ctx, id, db, user, password, selectOne); err != nil {
		return fmt.Errorf("the role %s cannot connect to %s through PgBouncer: %w", user, db, err)
	}
	return nil
}

// instancePort returns the port recorded for one of the environment's
// instances, allocating one first (see allocatePort).
func (p *Provisioner) instancePort(ctx context.Context, env store.Environment, role string) (int, error) {
	is, err := p.store.Instances(ctx, env.ID)
	if err != nil {
		return 0, err
	}
	for _, in := range is {
		if in.Role == role && in.Port != nil {
			return *in.Port, nil
		}
	}
	return p.claimPort(ctx, env.ID, role)
}

// claimPort records for one of the environment's instances the lowest port
// of the range that no instance has and nothing on the host listens on.
func (p *Provisioner) claimPort(ctx context.Context, envID int64, role string) (int, error) {
	for range 5 {
		used, err := p.store.UsedPorts(ctx)
		if err != nil {
			return 0, err
		}
		for port := p.cfg.PortLow; port <= p.cfg.PortHigh; port++ {
			if used[port] || !p.rt.PortFree(port) {
				continue
			}
			got, err := p.store.SetInstancePort(ctx, envID, role, port)
			if errors.Is(err, store.ErrConflict) {
				break // another deploy took it meanwhile: look again
			}
			return got, err
		}
	}
	return 0, fmt.Errorf("no free port left for the %s in %d-%d (PGDECK_PORT_RANGE)", role, p.cfg.PortLow, p.cfg.PortHigh)
}

// startAll starts the environment's primary, its replica and then its
// PgBouncer, those it has.
func (r *JobRun) startAll(ctx context.Context, env store.Environment) error {
	if err := r.p.rt.Start(ctx, primary(env.Name)); err != nil {
		return err
	}
	if env.ReplicaPort != nil {
		r.Step(ctx, "Starting the replica", 70)
		if err := r.p.rt.Start(ctx, replicaID(env.Name)); err != nil {
			return err
		}
		if st, err := r.p.rt.Status(ctx, replicaPooler(env.Name).id); err == nil && st.State != runtime.StateMissing {
			if err := r.p.rt.Start(ctx, replicaPooler(env.Name).id); err != nil {
				return err
			}
		}
	}
	if env.PoolerPort == nil {
		return nil
	}
	r.Step(ctx, "Starting PgBouncer", 80)
	return r.p.rt.Start(ctx, pooler(env.Name))
}

// stopAll stops the environment's PgBouncer (clients first), its replica,
// then its primary.
func (r *JobRun) stopAll(ctx context.Context, env store.Environment) error {
	if err := r.p.rt.Stop(ctx, pooler(env.Name)); err != nil {
		return err
	}
	if err := r.p.rt.Stop(ctx, replicaPooler(env.Name).id); err != nil {
		return err
	}
	if err := r.p.rt.Stop(ctx, replicaID(env.Name)); err != nil {
		return err
	}
	return r.p.rt.Stop(ctx, primary(env.Name))
}
