package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// desiredStopped is the desired state of an environment the operator stopped.
const desiredStopped = "stopped"

// primaryProbe checks an environment's PostgreSQL: it connects over TCP and
// reads the figures and the applied settings of the tuned parameters in one
// round trip; when that fails it asks the runtime why.
type primaryProbe struct {
	rt  runtime.Runtime
	box *secret.Box
	// conns keeps the monitoring role's connections between checks.
	conns *conns
	// connBase holds the connection settings shared by every check.
	connBase *pgx.ConnConfig
	connErr  error
	// tuned are the parameters whose applied values the probe reads back.
	tuned []string
}

func newPrimaryProbe(rt runtime.Runtime, box *secret.Box, cs *conns) *primaryProbe {
	p := &primaryProbe{rt: rt, box: box, conns: cs, tuned: render.TunedParameters()}
	p.connBase, p.connErr = newConnBase()
	return p
}

// newConnBase returns the connection settings every check copies, filling
// in the instance's address and credentials.
func newConnBase() (*pgx.ConnConfig, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable application_name=pgdeck-monitor")
	if err != nil {
		return nil, err
	}
	// A few queries per connection: the simple protocol needs one round
	// trip each and no prepared statement (PgBouncer's console takes
	// nothing else).
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.StatementCacheCapacity = 0
	cfg.DescriptionCacheCapacity = 0
	// Ignore PGTARGETSESSIONATTRS and the like from the environment.
	cfg.ValidateConnect = nil
	return cfg, nil
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

// credentials returns the roles the probe may log in as, in order, with the
// database each opens: the cluster's monitoring role on `postgres` once a
// deploy has made it, then Odoo's own role on its database (the only one
// until the environment is redeployed with the monitoring role).
func credentials(e store.Environment) []login {
	odoo := login{user: e.DBUser, sealed: e.DBPassword, db: e.DBName}
	if e.MonitorUser == "" || e.MonitorPassword == nil {
		return []login{odoo}
	}
	return []login{{user: e.MonitorUser, sealed: e.MonitorPassword, db: "postgres"}, odoo}
}

// login is a role, its sealed password and the database it opens.
type login struct {
	user   string
	sealed []byte
	db     string
}

// read reads the figures and settings in one round trip, on the
// monitoring role's kept connection or a new one over TCP.
func (p *primaryProbe) read(ctx context.Context, e store.Environment) (Figures, error) {
	var f Figures
	if p.connErr != nil {
		return f, fmt.Errorf("connection settings: %w", p.connErr)
	}
	// The runtime says where the instance is reached.
	host, port := p.rt.Address(runtime.InstanceID{Env: e.Name, Role: runtime.RolePrimary})
	if port == 0 {
		return f, errors.New("the runtime knows no address for it")
	}
	var err error
	for _, l := range credentials(e) {
		dial := func(ctx context.Context) (*pgx.Conn, error) { return p.connect(ctx, host, port, l) }
		err = p.conns.use(ctx, l.key(e.ID, host, port), dial, func(conn *pgx.Conn) error {
			var qerr error
			f, qerr = p.query(ctx, conn, e)
			return qerr
		})
		// A redeploy cut short may have recorded the monitoring role
		// before making it: then Odoo's role still answers.
		if err == nil || !isAuthFailure(err) {
			break
		}
	}
	return f, err
}

// query reads the figures and the tuned parameters' settings in one round
// trip.
func (p *primaryProbe) query(ctx context.Context, conn *pgx.Conn, e store.Environment) (Figures, error) {
	var f Figures
	started := new(time.Time)
	// Both queries go in one simple-protocol message: one round trip.
	b := &pgx.Batch{}
	// Client backends only: they are what max_connections limits. The
	// size is the environment's database, whichever database we opened
	// (pg_monitor may read every database's size).
	b.Queue(`SELECT current_setting('server_version'),
			pg_database_size($1),
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
			current_setting('max_connections')::int,
			pg_postmaster_start_time()`, e.DBName).
		QueryRow(func(row pgx.Row) error {
			return row.Scan(&f.PGVersion, &f.DBSizeBytes, &f.Connections, &f.MaxConnections, started)
		})
	// The tuned parameters as the running server applies them.
	settings := make(map[string]store.ServerSetting, len(p.tuned))
	b.Queue(`SELECT name, current_setting(name), setting, coalesce(unit, ''), vartype,
			coalesce(min_val, ''), coalesce(max_val, ''), coalesce(enumvals, '{}'), context, pending_restart
		FROM pg_settings WHERE name = ANY($1)`, p.tuned).
		Query(func(rows pgx.Rows) error {
			for rows.Next() {
				var name string
				var s store.ServerSetting
				if err := rows.Scan(&name, &s.Value, &s.Setting, &s.Unit, &s.VarType,
					&s.MinVal, &s.MaxVal, &s.EnumVals, &s.Context, &s.PendingRestart); err != nil {
					return err
				}
				settings[name] = s
			}
			return rows.Err()
		})
	if err := conn.SendBatch(ctx, b).Close(); err != nil {
		return f, fmt.Errorf("query: %w", err)
	}
	f.ServerStartedAt = started
	details, err := json.Marshal(store.PrimaryDetails{Settings: settings})
	if err != nil {
		return f, fmt.Errorf("details: %w", err)
	}
	f.Details = details
	return f, nil
}

func (p *primaryProbe) connect(ctx context.Context, host string, port int, l login) (*pgx.Conn, error) {
	return dial(ctx, p.connBase, p.box, host, port, l)
}

// dial connects to host:port as l, with base's settings.
func dial(ctx context.Context, base *pgx.ConnConfig, box *secret.Box, host string, port int, l login) (*pgx.Conn, error) {
	password, err := box.Open(l.sealed)
	if err != nil {
		return nil, fmt.Errorf("cannot open the stored password of %s: %w", l.user, err)
	}
	cfg := base.Copy()
	cfg.Host = host
	cfg.Port = uint16(port)
	cfg.User = l.user
	cfg.Password = password
	cfg.Database = l.db
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("cannot connect: %w", err)
	}
	return conn, nil
}

// isAuthFailure reports whether the server refused the role: a wrong
// password (28P01) or no pg_hba line for it (28000).
func isAuthFailure(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && (pgErr.Code == "28P01" || pgErr.Code == "28000")
}
