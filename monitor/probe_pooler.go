package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"syscall"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// poolerConsoleDB is PgBouncer's admin console database.
const poolerConsoleDB = "pgbouncer"

// poolerProbe checks an environment's PgBouncer through its admin console,
// logged in as the environment's monitoring role (the provisioner lists it
// in admin_users and stats_users, with its SCRAM verifier in the
// auth_file). Environments without a pooler instance are Absent.
type poolerProbe struct {
	rt       runtime.Runtime
	box      *secret.Box
	connBase *pgx.ConnConfig
	connErr  error
}

func newPoolerProbe(rt runtime.Runtime, box *secret.Box) *poolerProbe {
	p := &poolerProbe{rt: rt, box: box}
	p.connBase, p.connErr = newConnBase()
	return p
}

// Component implements Probe.
func (p *poolerProbe) Component() string { return store.ComponentPooler }

// Present reports whether the environment has a pooler instance.
func (p *poolerProbe) Present(e store.Environment) bool { return e.PoolerPort != nil }

// Check implements Probe. A console that does not answer is Stopped when
// the operator stopped the environment and an Error otherwise, with the
// cause as the reason; the runtime is not asked why.
func (p *poolerProbe) Check(ctx context.Context, e store.Environment) Result {
	if !p.Present(e) {
		return Result{Absent: true}
	}
	d, err := p.read(ctx, e)
	if err == nil {
		raw, err := json.Marshal(d)
		if err != nil {
			return Result{Status: store.HealthError, Reason: fmt.Sprintf("details: %v", err)}
		}
		return Result{Status: store.HealthRunning, Figures: &Figures{Details: raw}}
	}
	var down *unreachableError
	if errors.As(err, &down) && e.DesiredState == desiredStopped && ctx.Err() == nil {
		return Result{Status: store.HealthStopped}
	}
	return Result{Status: store.HealthError, Reason: err.Error()}
}

// unreachableError is a console that could not be reached at all (as
// opposed to one that answered wrongly).
type unreachableError struct{ err error }

func (u *unreachableError) Error() string { return u.err.Error() }
func (u *unreachableError) Unwrap() error { return u.err }

// read logs in to the console and reads the environment's pool: SHOW POOLS,
// SHOW STATS, SHOW DATABASES and SHOW CONFIG, one round trip each (the
// console takes one command per query).
func (p *poolerProbe) read(ctx context.Context, e store.Environment) (store.PoolerDetails, error) {
	d := store.PoolerDetails{Database: e.DBName}
	if p.connErr != nil {
		return d, fmt.Errorf("connection settings: %w", p.connErr)
	}
	host, port := p.rt.Address(runtime.InstanceID{Env: e.Name, Role: runtime.RolePooler})
	if port == 0 {
		return d, &unreachableError{errors.New("the runtime knows no address for PgBouncer")}
	}
	addr := net.JoinHostPort(host, strconv.Itoa(port))
	if e.MonitorUser == "" || e.MonitorPassword == nil {
		return d, fmt.Errorf("no monitoring role recorded to log in to PgBouncer at %s: redeploy the environment", addr)
	}
	password, err := p.box.Open(e.MonitorPassword)
	if err != nil {
		return d, fmt.Errorf("cannot open the stored password of %s: %w", e.MonitorUser, err)
	}
	cfg := p.connBase.Copy()
	cfg.Host = host
	cfg.Port = uint16(port)
	cfg.User = e.MonitorUser
	cfg.Password = password
	cfg.Database = poolerConsoleDB
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		reason := fmt.Errorf("connect to PgBouncer at %s: %s", addr, cause(err))
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) {
			// It answered, refusing the role (or full): it runs.
			return d, reason
		}
		return d, &unreachableError{reason}
	}
	defer conn.Close(ctx)

	// Pools appear at a client's first login: none yet means no client,
	// not a fault. The database entry must be there.
	pool, _, err := show(ctx, conn, "POOLS", func(r row) bool { return r["database"] == e.DBName && r["user"] == e.DBUser })
	if err != nil {
		return d, err
	}
	stats, _, err := show(ctx, conn, "STATS", func(r row) bool { return r["database"] == e.DBName })
	if err != nil {
		return d, err
	}
	db, ok, err := show(ctx, conn, "DATABASES", func(r row) bool { return r["name"] == e.DBName })
	if err != nil {
		return d, err
	}
	if !ok {
		return d, fmt.Errorf("PgBouncer at %s has no database %s (SHOW DATABASES)", addr, e.DBName)
	}
	conf, ok, err := show(ctx, conn, "CONFIG", func(r row) bool { return r["key"] == "max_client_conn" })
	if err != nil {
		return d, err
	}
	if !ok {
		return d, fmt.Errorf("PgBouncer at %s reports no max_client_conn (SHOW CONFIG)", addr)
	}

	var maxwait, maxwaitUS int64
	var perr error
	num := func(r row, what, col string) int64 {
		if r == nil || perr != nil {
			return 0
		}
		n, err := strconv.ParseInt(r[col], 10, 64)
		if err != nil {
			perr = fmt.Errorf("SHOW %s: column %s: %q is not a number", what, col, r[col])
		}
		return n
	}
	d.ClActive = int(num(pool, "POOLS", "cl_active"))
	d.ClWaiting = int(num(pool, "POOLS", "cl_waiting"))
	d.SvActive = int(num(pool, "POOLS", "sv_active"))
	d.SvIdle = int(num(pool, "POOLS", "sv_idle"))
	maxwait, maxwaitUS = num(pool, "POOLS", "maxwait"), num(pool, "POOLS", "maxwait_us")
	d.AvgQueryMicros = num(stats, "STATS", "avg_query_time")
	d.AvgXactMicros = num(stats, "STATS", "avg_xact_time")
	d.TotalXacts = num(stats, "STATS", "total_xact_count")
	d.PoolSize = int(num(db, "DATABASES", "pool_size"))
	d.MaxClientConn = int(num(conf, "CONFIG", "value"))
	if perr != nil {
		return d, perr
	}
	d.MaxWaitSeconds = float64(maxwait) + float64(maxwaitUS)/1e6
	d.PoolMode = db["pool_mode"]
	return d, nil
}

// row is one row of a console SHOW, by column name, as text.
type row map[string]string

// show runs SHOW what on the console and returns the first row that match
// accepts (nil and false when none does). Columns are read by name as text,
// whatever their type, so that columns added by later PgBouncer versions do
// no harm.
func show(ctx context.Context, conn *pgx.Conn, what string, match func(row) bool) (row, bool, error) {
	rows, err := conn.Query(ctx, "SHOW "+what)
	if err != nil {
		return nil, false, fmt.Errorf("SHOW %s: %w", what, err)
	}
	defer rows.Close()
	fields := rows.FieldDescriptions()
	for rows.Next() {
		r := make(row, len(fields))
		for i, v := range rows.RawValues() {
			r[fields[i].Name] = string(v)
		}
		if match(r) {
			return r, true, nil
		}
	}
	if err := rows.Err(); err != nil {
		return nil, false, fmt.Errorf("SHOW %s: %w", what, err)
	}
	return nil, false, nil
}

// cause is the innermost reason a connection failed: the server's message
// (a refused password), the system's (connection refused) or, failing
// those, the whole error.
func cause(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return "timed out"
	}
	return err.Error()
}
