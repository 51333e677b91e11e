package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	_ "pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

func pooler(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePooler}
}

func (r *JobRun) deployPooler(ctx context.Context, env store.Environment, settings DeploySettings, dbPassword, monitorPassword string) error {
	return nil // WIP
}

// removePoolerIfOff stops and removes the environment's PgBouncer when its
// settings turn it off, and frees its port. It runs after odoo.conf points
// at PostgreSQL again.
func (r *JobRun) removePoolerIfOff(ctx context.Context, env store.Environment, settings DeploySettings) error {
	if settings.PgBouncer != nil && settings.PgBouncer.Enabled {
		return nil
	}
	id := pooler(env.Name)
	st, err := r.p.rt.Status(ctx, id)
	if err != nil {
		return err
	}
	if st.State != runtime.StateMissing {
		r.Step(ctx, "Removing PgBouncer", 90)
		if err := r.p.rt.Remove(ctx, id); err != nil {
			return err
		}
		r.Logf(ctx, "PgBouncer removed; odoo.conf points at PostgreSQL")
	}
	return r.p.store.DeleteInstance(ctx, env.ID, store.InstancePooler)
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

// simpleConfig is a pgx connection config for PgBouncer: the simple query
// protocol only (its console takes nothing else, and transaction pooling in
// PgBouncer 1.18 carries no prepared statements).
func simpleConfig(host string, port int, db, user, password string) (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, user, password
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	return cfg, nil
}

// poolerConsole runs one command on the environment's PgBouncer console as
// pgdeck's monitoring role (an admin_users entry).
func (p *Provisioner) poolerConsole(ctx context.Context, env store.Environment, monitorPassword, command string) error {
	host, port := p.rt.Address(pooler(env.Name))
	cfg, err := simpleConfig(host, port, "pgbouncer", env.MonitorUser, monitorPassword)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	_, err = conn.Exec(cctx, command)
	return err
}

// checkPoolerConnect logs in through PgBouncer and runs a query.
func (p *Provisioner) checkPoolerConnect(ctx context.Context, id runtime.InstanceID, db, user, password string) error {
	host, port := p.rt.Address(id)
	cfg, err := simpleConfig(host, port, db, user, password)
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return fmt.Errorf("the role %s cannot connect to %s through PgBouncer: %w", user, db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	return conn.QueryRow(cctx, "SELECT 1").Scan(&one)
}

// instancePort returns the port recorded for one of the environment's
// instances, allocating one first (see allocatePort).
func (p *Provisioner) instancePort(ctx context.Context, env store.Environment, role string, id runtime.InstanceID) (int, error) {
	is, err := p.store.Instances(ctx, env.ID)
	if err != nil {
		return 0, err
	}
	for _, in := range is {
		if in.Role == role && in.Port != nil {
			return *in.Port, nil
		}
	}
	for range 5 {
		used, err := p.store.UsedPorts(ctx)
		if err != nil {
			return 0, err
		}
		for port := p.cfg.PortLow; port <= p.cfg.PortHigh; port++ {
			if used[port] || !p.rt.PortFree(port) {
				continue
			}
			got, err := p.store.SetInstancePort(ctx, env.ID, role, port)
			if errors.Is(err, store.ErrConflict) {
				break
			}
			return got, err
		}
	}
	return 0, fmt.Errorf("no free port left for %s in %d-%d (PGDECK_PORT_RANGE)", id, p.cfg.PortLow, p.cfg.PortHigh)
}

// hasPooler reports whether the environment has a PgBouncer recorded.
func (p *Provisioner) hasPooler(ctx context.Context, envID int64) (bool, error) {
	is, err := p.store.Instances(ctx, envID)
	if err != nil {
		return false, err
	}
	for _, in := range is {
		if in.Role == store.InstancePooler {
			return true, nil
		}
	}
	return false, nil
}

// startAll starts the environment's primary, then its PgBouncer if it has one.
func (r *JobRun) startAll(ctx context.Context, env store.Environment) error {
	if err := r.p.rt.Start(ctx, primary(env.Name)); err != nil {
		return err
	}
	has, err := r.p.hasPooler(ctx, env.ID)
	if err != nil || !has {
		return err
	}
	r.Step(ctx, "Starting PgBouncer", 80)
	return r.p.rt.Start(ctx, pooler(env.Name))
}

// stopAll stops the environment's PgBouncer (clients first), then its primary.
func (r *JobRun) stopAll(ctx context.Context, env store.Environment) error {
	if err := r.p.rt.Stop(ctx, pooler(env.Name)); err != nil {
		return err
	}
	return r.p.rt.Stop(ctx, primary(env.Name))
}
