package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// desiredStopped is the desired state of an environment the operator stopped.
const desiredStopped = "stopped"

// primaryProbe checks an environment's PostgreSQL: it connects over TCP and
// reads the figures in one query; when that fails it asks the runtime why.
type primaryProbe struct {
	rt  runtime.Runtime
	box *secret.Box
	// connBase holds the connection settings shared by every check.
	connBase *pgx.ConnConfig
	connErr  error
}

func newPrimaryProbe(rt runtime.Runtime, box *secret.Box) *primaryProbe {
	p := &primaryProbe{rt: rt, box: box}
	// Parsed once: every check copies it and fills in the environment's
	// address and credentials.
	p.connBase, p.connErr = pgx.ParseConfig("host=127.0.0.1 sslmode=disable application_name=pgdeck-monitor")
	if p.connErr == nil {
		// One query per connection: the simple protocol needs one round
		// trip and no prepared statement.
		p.connBase.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		p.connBase.StatementCacheCapacity = 0
		p.connBase.DescriptionCacheCapacity = 0
		// Ignore PGTARGETSESSIONATTRS and the like from the environment.
		p.connBase.ValidateConnect = nil
	}
	return p
}

// Component implements Probe.
func (p *primaryProbe) Component() string { return store.ComponentPrimary }

// Check implements Probe.
func (p *primaryProbe) Check(ctx context.Context, e store.Environment) Result {
	f, err := p.read(ctx, e)
	if err == nil {
		return Result{Status: store.HealthRunning, Figures: &f}
	}
	if ctx.Err() != nil {
		// Out of time: the monitor records it as such.
		return Result{Status: store.HealthError, Reason: err.Error()}
	}
	st, serr := p.rt.Status(ctx, runtime.InstanceID{Env: e.Name, Role: runtime.RolePrimary})
	if serr != nil {
		return Result{Status: store.HealthError, Reason: fmt.Sprintf("%v; the runtime cannot tell why: %v", err, serr)}
	}
	stopped := e.DesiredState == desiredStopped
	switch st.State {
	case runtime.StateStopped:
		if stopped {
			return Result{Status: store.HealthStopped}
		}
		return Result{Status: store.HealthError, Reason: "should be running but is not: it is stopped"}
	case runtime.StateMissing:
		if stopped {
			return Result{Status: store.HealthStopped}
		}
		return Result{Status: store.HealthError, Reason: "should be running but is not: its instance does not exist"}
	case runtime.StateBroken:
		if stopped {
			return Result{Status: store.HealthError, Reason: st.Reason}
		}
		return Result{Status: store.HealthError, Reason: "should be running but is not: " + st.Reason}
	default:
		// The runtime sees it running, yet it does not answer us: wrong
		// password, pg_hba, database missing, too many connections, …
		return Result{Status: store.HealthError, Reason: fmt.Sprintf("runs but does not answer: %v", err)}
	}
}

// credentials returns the role the probe logs in as and the database it
// opens: the cluster's monitoring role on `postgres` once a deploy has made
// it; until the environment is redeployed with it, Odoo's own role on its
// database.
func (p *primaryProbe) credentials(e store.Environment) (user, password, db string, err error) {
	user, sealed, db := e.MonitorUser, e.MonitorPassword, "postgres"
	if user == "" || sealed == nil {
		user, sealed, db = e.DBUser, e.DBPassword, e.DBName
	}
	password, err = p.box.Open(sealed)
	if err != nil {
		return "", "", "", fmt.Errorf("cannot open the stored password of %s: %w", user, err)
	}
	return user, password, db, nil
}

// read connects over TCP and reads the figures in one query.
func (p *primaryProbe) read(ctx context.Context, e store.Environment) (Figures, error) {
	var f Figures
	if p.connErr != nil {
		return f, fmt.Errorf("connection settings: %w", p.connErr)
	}
	if e.Port == nil {
		return f, errors.New("no port recorded")
	}
	user, password, db, err := p.credentials(e)
	if err != nil {
		return f, err
	}
	cfg := p.connBase.Copy()
	cfg.Host = "127.0.0.1"
	cfg.Port = uint16(*e.Port)
	cfg.User = user
	cfg.Password = password
	cfg.Database = db
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return f, fmt.Errorf("cannot connect: %w", err)
	}
	defer conn.Close(ctx)
	var started = new(time.Time)
	// Client backends only: they are what max_connections limits. The
	// size is the environment's database, whichever database we opened
	// (pg_monitor may read every database's size).
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'),
			pg_database_size($1),
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
			current_setting('max_connections')::int,
			pg_postmaster_start_time()`, e.DBName).
		Scan(&f.PGVersion, &f.DBSizeBytes, &f.Connections, &f.MaxConnections, started)
	if err != nil {
		return f, fmt.Errorf("query: %w", err)
	}
	f.ServerStartedAt = started
	return f, nil
}
