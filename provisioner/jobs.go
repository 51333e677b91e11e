package provisioner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// JobRun carries one job through its steps: what a kind's Run is given.
type JobRun struct {
	p   *Provisioner
	job store.Job
}

// Job is the job being run, as it was claimed.
func (r *JobRun) Job() store.Job { return r.job }

// Step records that the job moved on to name, at progress percent.
func (r *JobRun) Step(ctx context.Context, name string, progress int) {
	r.job.Step = name
	if err := r.p.store.SetJobStep(ctx, r.job.ID, name, progress); err != nil {
		r.p.log.Error("job step", "job_id", r.job.ID, "error", err)
	}
	r.Logf(ctx, "%s", name)
}

// Logf adds a line to the job's log.
func (r *JobRun) Logf(ctx context.Context, format string, args ...any) {
	if err := r.p.store.AppendJobLog(ctx, r.job.ID, fmt.Sprintf(format, args...)); err != nil {
		r.p.log.Error("job log", "job_id", r.job.ID, "error", err)
	}
}

// Interrupted reports whether the job's context ended because pgdeck is
// shutting down: the job goes back to the queue rather than failing, so a
// step should not undo what it made.
func (r *JobRun) Interrupted(ctx context.Context) bool {
	return errors.Is(context.Cause(ctx), errShutdown)
}

// errShutdown is the cause of a job's context cancelled when pgdeck stops
// and the shutdown grace is over.
var errShutdown = errors.New("pgdeck is shutting down")

// finishTimeout bounds writing how a job ended, with a context of its own:
// the job's may have expired.
const finishTimeout = 10 * time.Second

// execute runs a claimed job and records how it ended: succeeded, failed
// with the reason, or (cut short by a shutdown) back in the queue.
func (p *Provisioner) execute(ctx context.Context, j store.Job, k JobKind) {
	r := &JobRun{p: p, job: j}
	log := p.log.With("job_id", j.ID, "env", j.EnvName, "kind", j.Kind, "lane", j.Lane)
	log.Info("job started", "attempt", j.Attempts, "timeout", k.Timeout)
	start := time.Now()
	err := r.do(ctx, k)
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), finishTimeout)
	defer cancel()
	if err != nil && r.Interrupted(ctx) {
		r.Logf(fctx, "pgdeck stopped during step %q before the job ended; it resumes at the next start", r.job.Step)
		if rerr := p.store.RequeueJob(fctx, j.ID); rerr != nil {
			log.Error("requeue job cut short by the shutdown", "error", rerr)
		}
		log.Warn("job cut short by the shutdown; it resumes at the next start", "step", r.job.Step, "error", err)
		return
	}
	if err != nil && errors.Is(context.Cause(ctx), context.DeadlineExceeded) {
		during := ""
		if r.job.Step != "" {
			during = fmt.Sprintf(" (step %q)", r.job.Step)
		}
		err = fmt.Errorf("the job took longer than its limit of %s%s: %w", k.Timeout, during, err)
	}
	msg := ""
	if err != nil {
		full := err.Error()
		msg = summarizeError(full)
		r.Logf(fctx, "failed: %s", msg)
		if msg != full {
			r.Logf(fctx, "the tool's whole output: %s", full)
		}
		log.Error("job failed", "step", r.job.Step, "error", err, "duration", time.Since(start))
	} else {
		r.Logf(fctx, "done in %s", time.Since(start).Round(time.Millisecond))
		log.Info("job succeeded", "duration", time.Since(start))
	}
	if ferr := p.store.FinishJob(fctx, j.ID, msg); ferr != nil {
		log.Error("finish job", "error", ferr)
	}
}

// do loads the job's environment and runs the kind's steps on it.
func (r *JobRun) do(ctx context.Context, k JobKind) error {
	if k.Run == nil {
		return fmt.Errorf("unknown job kind %q (queued by a newer pgdeck?)", r.job.Kind)
	}
	gone := func() error {
		if k.Gone != nil {
			return k.Gone(ctx, r)
		}
		return errors.New("the environment no longer exists")
	}
	if r.job.EnvironmentID == nil {
		return gone()
	}
	env, err := r.p.store.EnvironmentByID(ctx, *r.job.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		return gone()
	}
	if err != nil {
		return err
	}
	return k.Run(ctx, r, env)
}

// checkConnect proves that a role reaches a database of the instance over
// TCP, at the address the runtime gives.
func (p *Provisioner) checkConnect(ctx context.Context, id runtime.InstanceID, db, user, password string) error {
	if err := p.withConn(ctx, id, db, user, password, selectOne); err != nil {
		return fmt.Errorf("the role %s cannot connect to %s: %w", user, db, err)
	}
	return nil
}

// withConn logs in to a database of the instance over TCP, at the address
// the runtime gives, and runs fn, all within 10 seconds. It speaks the
// simple query protocol: the only one PgBouncer's console takes, the one
// its transaction pooling carries (1.18 keeps no prepared statements), and
// as good as any for pgdeck's few statements on PostgreSQL itself.
func (p *Provisioner) withConn(ctx context.Context, id runtime.InstanceID, db, user, password string, fn func(context.Context, *pgx.Conn) error) error {
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := p.connect(cctx, id, db, user, password)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(cctx, conn)
}

// connect logs in to a database of the instance over TCP like withConn,
// within 10 seconds, and hands the connection to the caller, who closes it.
func (p *Provisioner) connect(ctx context.Context, id runtime.InstanceID, db, user, password string) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig("sslmode=disable")
	if err != nil {
		return nil, err
	}
	host, port := p.rt.Address(id)
	cfg.Host, cfg.Port = host, uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, user, password
	cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
	cfg.ConnectTimeout = 10 * time.Second
	return pgx.ConnectConfig(ctx, cfg)
}

// selectOne runs SELECT 1: the connection serves queries.
func selectOne(ctx context.Context, conn *pgx.Conn) error {
	var one int
	return conn.QueryRow(ctx, "SELECT 1").Scan(&one)
}

// provisionSQL reloads the configuration, creates or updates the
// environment's login role (never a superuser, password stored as SCRAM),
// creates its database when missing, lets only that role connect to it, and
// creates the extensions Odoo expects in it (pg_trgm, unaccent).
// Every statement can run twice without harm.
func provisionSQL(db, user, password string) string {
	u, d := quoteIdent(user), quoteIdent(db)
	return "SELECT pg_reload_conf();\n" +
		"SET password_encryption = 'scram-sha-256';\n" +
		"SELECT " + quoteLiteral("CREATE ROLE "+u) + " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " + quoteLiteral(user) + ")\\gexec\n" +
		"ALTER ROLE " + u + " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + quoteLiteral(password) + ";\n" +
		"SELECT " + quoteLiteral("CREATE DATABASE "+d+" OWNER "+u+" ENCODING 'UTF8' TEMPLATE template0") +
		" WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = " + quoteLiteral(db) + ")\\gexec\n" +
		"REVOKE ALL ON DATABASE " + d + " FROM PUBLIC;\n" +
		"GRANT ALL ON DATABASE " + d + " TO " + u + ";\n" +
		// Odoo creates these only when it makes the database itself; on
		// one made for it, its trigram indexes would be silently skipped.
		"\\connect " + quoteLiteral(db) + "\n" +
		"CREATE EXTENSION IF NOT EXISTS pg_trgm;\n" +
		"CREATE EXTENSION IF NOT EXISTS unaccent;\n"
}

// dbName is the environment's database name (Odoo's db_name).
func dbName(env string) string { return strings.ReplaceAll(env, "-", "_") }

// dbUser is the role that owns the environment's database.
func dbUser(env string) string { return "odoo_" + strings.ReplaceAll(env, "-", "_") }

func randomSecret() string {
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return hex.EncodeToString(b)
}

func quoteIdent(s string) string { return pgx.Identifier{s}.Sanitize() }

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

var (
	exitStatusRE = regexp.MustCompile(`^(?s)(.*?exit status \d+)`)
	toolErrorRE  = regexp.MustCompile(`FATAL|ERROR|PANIC|error:|could not|No space|Permission denied|too large|invalid value for parameter`)
)

// summarizeError keeps what an operator needs from a tool's failure: the
// context up to "exit status N" and the tool's error lines (at most three),
// rather than its whole chatter (initdb prints a banner first). Messages of
// one line are kept as they are; the job log keeps the whole output.
func summarizeError(full string) string {
	if !strings.Contains(full, "\n") {
		return full
	}
	head := strings.SplitN(full, "\n", 2)[0]
	if m := exitStatusRE.FindStringSubmatch(full); m != nil && !strings.Contains(m[1], "\n") {
		head = m[1]
	}
	var picked []string
	seen := map[string]bool{}
	for _, line := range strings.Split(full, "\n") {
		line = strings.TrimSpace(line)
		if line == "" || seen[line] || strings.HasPrefix(full, line) || !toolErrorRE.MatchString(line) {
			continue
		}
		seen[line] = true
		picked = append(picked, line)
	}
	if len(picked) > 3 {
		picked = picked[len(picked)-3:]
	}
	if len(picked) == 0 {
		return full
	}
	return head + ": " + strings.Join(picked, " · ")
}
