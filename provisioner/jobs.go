package provisioner

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"net"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// run carries one job through its steps.
type run struct {
	p   *Provisioner
	job store.Job
}

// step records that the job moved on to name, at progress percent.
func (r *run) step(ctx context.Context, name string, progress int) {
	r.job.Step = name
	if err := r.p.store.SetJobStep(ctx, r.job.ID, name, progress); err != nil {
		r.p.log.Error("job step", "job_id", r.job.ID, "error", err)
	}
	r.logf(ctx, "%s", name)
}

func (r *run) logf(ctx context.Context, format string, args ...any) {
	if err := r.p.store.AppendJobLog(ctx, r.job.ID, fmt.Sprintf(format, args...)); err != nil {
		r.p.log.Error("job log", "job_id", r.job.ID, "error", err)
	}
}

// execute runs a claimed job and records how it ended.
func (p *Provisioner) execute(ctx context.Context, j store.Job) {
	r := &run{p: p, job: j}
	log := p.log.With("job_id", j.ID, "env", j.EnvName, "kind", j.Kind)
	log.Info("job started", "attempt", j.Attempts)
	start := time.Now()
	err := r.do(ctx)
	msg := ""
	if err != nil {
		full := err.Error()
		msg = summarizeError(full)
		r.logf(ctx, "failed: %s", msg)
		if msg != full {
			r.logf(ctx, "the tool's whole output: %s", full)
		}
		log.Error("job failed", "step", r.job.Step, "error", err, "duration", time.Since(start))
	} else {
		r.logf(ctx, "done in %s", time.Since(start).Round(time.Millisecond))
		log.Info("job succeeded", "duration", time.Since(start))
	}
	if ferr := p.store.FinishJob(context.WithoutCancel(ctx), j.ID, msg); ferr != nil {
		log.Error("finish job", "error", ferr)
	}
}

func (r *run) do(ctx context.Context) error {
	if r.job.EnvironmentID == nil {
		if Kind(r.job.Kind) == KindDelete {
			// A delete cut short after the row went (which set the job's
			// environment_id to NULL): finish the folder.
			return r.p.removeAll(ctx, r.job.EnvName)
		}
		return errors.New("the environment no longer exists")
	}
	env, err := r.p.store.EnvironmentByID(ctx, *r.job.EnvironmentID)
	if errors.Is(err, store.ErrNotFound) {
		if Kind(r.job.Kind) == KindDelete {
			// A delete cut short after the row went: finish the folder.
			return r.p.removeAll(ctx, r.job.EnvName)
		}
		return errors.New("the environment no longer exists")
	}
	if err != nil {
		return err
	}
	switch Kind(r.job.Kind) {
	case KindDeploy, KindRedeploy:
		return r.deploy(ctx, env)
	case KindStop:
		return r.stop(ctx, env)
	case KindStart:
		return r.start(ctx, env)
	case KindRestart:
		return r.restart(ctx, env)
	case KindDelete:
		return r.delete(ctx, env)
	}
	return fmt.Errorf("unknown job kind %q", r.job.Kind)
}

// deploy makes (or re-makes) the environment's cluster, database, role,
// filestore and odoo.conf. Every step can run twice without harm.
func (r *run) deploy(ctx context.Context, env store.Environment) error {
	firstDeploy := !env.Deployed()
	err := r.deploySteps(ctx, env)
	if err != nil && firstDeploy {
		// Nothing half-made is left running: a first deploy that failed
		// removes what it made (the port and passwords stay recorded and
		// are reused by the next try).
		r.logf(ctx, "removing what this failed deploy made")
		if rerr := r.p.removeAll(context.WithoutCancel(ctx), env.Name); rerr != nil {
			r.logf(ctx, "cleanup failed: %s (remove %s by hand)", rerr, r.p.rt.EnvPath(env.Name, "."))
			return fmt.Errorf("%w; cleanup also failed: %v", err, rerr)
		}
	}
	return err
}

func (r *run) deploySteps(ctx context.Context, env store.Environment) error {
	r.step(ctx, "Allocating a port", 5)
	port, err := r.p.allocatePort(ctx, env)
	if err != nil {
		return err
	}
	r.logf(ctx, "port %d on 127.0.0.1", port)

	r.step(ctx, "Generating credentials", 10)
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

	r.step(ctx, "Creating the PostgreSQL cluster", 20)
	id := primary(env.Name)
	spec := runtime.Spec{ID: id, Port: port, Conf: render.PrimaryConf(), HBA: render.HBA(env.DBName, env.DBUser)}
	if err := r.p.rt.Create(ctx, spec); err != nil {
		return err
	}

	r.step(ctx, "Starting PostgreSQL", 55)
	if Kind(r.job.Kind) == KindRedeploy {
		// Settings such as the port only apply on a restart.
		if err := r.p.rt.Stop(ctx, id); err != nil {
			return err
		}
	}
	if err := r.p.rt.Start(ctx, id); err != nil {
		return err
	}
	r.step(ctx, "Creating the database and its role", 70)
	// One psql session does it all (each psql start costs a connection):
	// reload (a resumed deploy may find the server running with an older
	// pg_hba.conf), the role, the database if missing, and its grants.
	sql := monitorRoleSQL(env.MonitorUser, monitorPassword) + provisionSQL(env.DBName, env.DBUser, dbPassword)
	if _, err := r.p.rt.Exec(ctx, id, []byte(sql), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "-"); err != nil {
		return err
	}

	r.step(ctx, "Writing the filestore and odoo.conf", 85)
	if err := r.p.writeOdooFiles(ctx, env, port, dbPassword, adminPassword); err != nil {
		return err
	}

	r.step(ctx, "Checking that Odoo's role can connect", 95)
	// Odoo needs its database and `postgres` (its start-up check, its bus).
	for _, db := range []string{env.DBName, "postgres"} {
		if err := checkConnect(ctx, port, db, env.DBUser, dbPassword); err != nil {
			return err
		}
	}
	if err := checkConnect(ctx, port, "postgres", env.MonitorUser, monitorPassword); err != nil {
		return err
	}
	if err := r.p.store.MarkDeployed(ctx, env.ID); err != nil {
		return err
	}
	return r.p.store.SetDesiredState(ctx, env.ID, "running")
}

func (r *run) stop(ctx context.Context, env store.Environment) error {
	r.step(ctx, "Stopping PostgreSQL", 30)
	if err := r.p.store.SetDesiredState(ctx, env.ID, "stopped"); err != nil {
		return err
	}
	return r.p.rt.Stop(ctx, primary(env.Name))
}

func (r *run) start(ctx context.Context, env store.Environment) error {
	r.step(ctx, "Starting PostgreSQL", 30)
	if err := r.p.store.SetDesiredState(ctx, env.ID, "running"); err != nil {
		return err
	}
	return r.p.rt.Start(ctx, primary(env.Name))
}

func (r *run) restart(ctx context.Context, env store.Environment) error {
	r.step(ctx, "Stopping PostgreSQL", 20)
	if err := r.p.rt.Stop(ctx, primary(env.Name)); err != nil {
		return err
	}
	r.step(ctx, "Starting PostgreSQL", 60)
	if err := r.p.store.SetDesiredState(ctx, env.ID, "running"); err != nil {
		return err
	}
	return r.p.rt.Start(ctx, primary(env.Name))
}

func (r *run) delete(ctx context.Context, env store.Environment) error {
	r.step(ctx, "Stopping and removing PostgreSQL", 20)
	if err := r.p.removeAll(ctx, env.Name); err != nil {
		return err
	}
	r.step(ctx, "Forgetting the environment", 90)
	return r.p.store.DeleteEnvironment(ctx, env.ID)
}

// allocatePort returns the environment's port, choosing one first: the lowest
// port of the range that no environment has and nothing on the host listens on.
func (p *Provisioner) allocatePort(ctx context.Context, env store.Environment) (int, error) {
	if env.Port != nil {
		if env.Deployed() || portFree(*env.Port) {
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
	for attempt := 0; attempt < 5; attempt++ {
		used, err := p.store.UsedPorts(ctx)
		if err != nil {
			return 0, err
		}
		for port := p.cfg.PortLow; port <= p.cfg.PortHigh; port++ {
			if used[port] || !portFree(port) {
				continue
			}
			got, err := p.store.SetPort(ctx, env.ID, port)
			if errors.Is(err, store.ErrConflict) {
				break // another deploy took it meanwhile: look again
			}
			return got, err
		}
	}
	return 0, fmt.Errorf("no free port left in %d-%d (PGDECK_PORT_RANGE)", p.cfg.PortLow, p.cfg.PortHigh)
}

func portFree(port int) bool {
	ln, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
	if err != nil {
		return false
	}
	ln.Close()
	return true
}

// checkConnect proves that the environment's role reaches its database over TCP.
func checkConnect(ctx context.Context, port int, db, user, password string) error {
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable")
	if err != nil {
		return err
	}
	cfg.Port = uint16(port)
	cfg.Database, cfg.User, cfg.Password = db, user, password
	cctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(cctx, cfg)
	if err != nil {
		return fmt.Errorf("the role %s cannot connect to %s: %w", user, db, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var one int
	return conn.QueryRow(cctx, "SELECT 1").Scan(&one)
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
	toolErrorRE  = regexp.MustCompile(`FATAL|ERROR|PANIC|error:|could not|No space|Permission denied|too large`)
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
