package provisioner

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/backup"
	"pgdeck/provisioner/neutralize"
	"pgdeck/store"
)

// KindRestore restores a backup into an environment (its own, or another
// one: a clone).
const KindRestore Kind = "restore"

// restoreKind restores database, filestore and configuration from a backup
// into the job's environment. Everything is made beside the running data
// and checked before it is swapped in; until the swap the environment keeps
// serving what it had, and after it the old data stays until the job ends.
var restoreKind = JobKind{
	Kind:    KindRestore,
	Lane:    store.LaneOps,
	Timeout: 12 * time.Hour,
	Check:   backupCheck,
	Params:  reflect.TypeOf(RestoreParams{}),
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		p, err := ParamsOf[RestoreParams](r)
		if err != nil {
			return err
		}
		return r.restore(ctx, env, p)
	},
}

// stagingDB is the database a restore loads into, beside the environment's;
// previousDB is where the environment's database goes at the swap, until
// the restore succeeds. Named by the environment's id: short, and never a
// name Odoo could use.
func stagingDB(envID int64) string  { return "pgdeck_restore_" + strconv.FormatInt(envID, 10) }
func previousDB(envID int64) string { return "pgdeck_previous_" + strconv.FormatInt(envID, 10) }

// The filestore folders of a restore beside the environment's own.
const (
	stagingFilestore  = ".pgdeck-restore"
	previousFilestore = ".pgdeck-previous"
)

func (r *JobRun) restore(ctx context.Context, env store.Environment, params RestoreParams) error {
	p := r.p
	// A restore pgdeck stopped during: after the swap it is finished, before
	// it everything it made is removed and it starts over.
	done, err := r.resumeRestore(ctx, env)
	if err != nil || done {
		return err
	}

	b, err := p.store.BackupByID(ctx, params.BackupID)
	if err != nil {
		return err
	}
	r.Step(ctx, "Checking the archive "+b.File, 2)
	a, err := backup.Open(p.BackupPath(b), p.cfg.BackupLimits)
	if err != nil {
		return fmt.Errorf("the archive cannot be restored: %w", err)
	}
	defer a.Close()
	if err := a.Verify(ctx, p.cfg.PgRestore, p.cfg.BackupDir); err != nil {
		return fmt.Errorf("the archive cannot be restored: %w", err)
	}
	pgMajor, err := p.serverMajor(ctx, env)
	if err != nil {
		return err
	}
	man := a.Manifest()
	if err := backup.CheckCompatible(man, pgMajor, env.OdooVersion); err != nil {
		return err
	}
	clone := man.Pgdeck == nil || man.Pgdeck.Environment != env.Name
	if params.Neutralize {
		if _, err := neutralize.Script(env.OdooVersion, nil); err != nil {
			return err
		}
	}

	r.Step(ctx, "Backing up "+env.Name+" before the restore", 5)
	pre, err := r.takeBackup(ctx, env, store.BackupPreRestore, backup.FormatZip, 5, 35)
	if err != nil {
		return fmt.Errorf("the backup before the restore failed, nothing was restored: %w", err)
	}
	r.Logf(ctx, "%s's data before the restore is kept in %s", env.Name, p.BackupPath(pre))

	dbPassword, err := p.box.Open(env.DBPassword)
	if err != nil {
		return err
	}
	baseURL, err := r.currentBaseURL(ctx, env, dbPassword)
	if err != nil {
		return err
	}

	staging := stagingDB(env.ID)
	if err := r.checkRestoreAccess(ctx, env); err != nil {
		return err
	}
	r.Step(ctx, "Creating the database "+staging+" beside "+env.DBName, 36)
	if _, err := r.p.rt.Exec(ctx, primary(env.Name), []byte(createStagingSQL(staging, env.DBUser)),
		"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-f", "-"); err != nil {
		return fmt.Errorf("create %s: %w", staging, err)
	}
	r.Step(ctx, "Restoring the database into "+staging, 40)
	if err := r.loadDump(ctx, env, a, staging); err != nil {
		return r.abandonRestore(ctx, env, fmt.Errorf("restore the database: %w", err))
	}
	r.Step(ctx, "Checking the restored rows", 75)
	if err := r.checkRows(ctx, env, staging, man); err != nil {
		return r.abandonRestore(ctx, env, err)
	}
	if err := r.fixCopy(ctx, env, staging, clone, baseURL, params.Neutralize); err != nil {
		return r.abandonRestore(ctx, env, err)
	}

	r.Step(ctx, "Restoring the filestore", 80)
	fsStaging := p.filestoreDir(env) + stagingFilestore
	if err := os.RemoveAll(fsStaging); err != nil {
		return r.abandonRestore(ctx, env, err)
	}
	if err := p.rt.MakeEnvDir(ctx, env.Name, "filestore/filestore", p.odooOwner()); err != nil {
		return r.abandonRestore(ctx, env, err)
	}
	files, size, err := a.ExtractFilestore(ctx, fsStaging)
	if err != nil {
		return r.abandonRestore(ctx, env, fmt.Errorf("restore the filestore: %w", err))
	}
	if err := p.rt.MakeEnvDir(ctx, env.Name, "filestore/filestore/"+env.DBName+stagingFilestore, p.odooOwner()); err != nil {
		return r.abandonRestore(ctx, env, err)
	}
	r.Logf(ctx, "filestore: %d files, %s", files, humanBytes(size))

	r.Step(ctx, "Swapping the restored data in", 88)
	if err := r.swapIn(ctx, env); err != nil {
		return r.abandonRestore(ctx, env, err)
	}
	if !clone {
		if err := r.restoreSettings(ctx, env, a); err != nil {
			r.Logf(ctx, "the saved database settings were not restored: %v", err)
		}
	}
	return r.finishRestore(ctx, env)
}

// resumeRestore finds what an earlier attempt of a restore left: when its
// swap was done, it finishes the restore (true); otherwise it removes what
// it made, and the restore starts over (false).
func (r *JobRun) resumeRestore(ctx context.Context, env store.Environment) (bool, error) {
	prev, err := r.databaseExists(ctx, env, previousDB(env.ID))
	if err != nil {
		return false, err
	}
	if prev {
		r.Logf(ctx, "an earlier attempt of this restore swapped the data in before pgdeck stopped: finishing it")
		if err := r.swapFilestore(ctx, env); err != nil {
			return false, err
		}
		return true, r.finishRestore(ctx, env)
	}
	return false, r.dropStaging(ctx, env)
}

// abandonRestore removes what the restore made beside the environment,
// which was never touched, and returns why.
func (r *JobRun) abandonRestore(ctx context.Context, env store.Environment, cause error) error {
	if r.Interrupted(ctx) {
		return cause // resumed at the next start
	}
	cctx := context.WithoutCancel(ctx)
	if err := r.dropStaging(cctx, env); err != nil {
		r.Logf(cctx, "cleanup after the failed restore: %v", err)
	}
	return fmt.Errorf("%w (%s was not touched and still serves its data)", cause, env.Name)
}

// dropStaging removes the staging database and filestore folder.
func (r *JobRun) dropStaging(ctx context.Context, env store.Environment) error {
	if _, err := r.psql(ctx, primary(env.Name), "DROP DATABASE IF EXISTS "+quoteIdent(stagingDB(env.ID))+" WITH (FORCE)"); err != nil {
		return err
	}
	return os.RemoveAll(r.p.filestoreDir(env) + stagingFilestore)
}

func createStagingSQL(db, owner string) string {
	d, u := quoteIdent(db), quoteIdent(owner)
	return "DROP DATABASE IF EXISTS " + d + " WITH (FORCE);\n" +
		"CREATE DATABASE " + d + " OWNER " + u + " ENCODING 'UTF8' TEMPLATE template0;\n" +
		"REVOKE ALL ON DATABASE " + d + " FROM PUBLIC;\n" +
		"GRANT ALL ON DATABASE " + d + " TO " + u + ";\n" +
		"\\connect " + quoteLiteral(db) + "\n" +
		"CREATE EXTENSION IF NOT EXISTS pg_trgm;\n" +
		"CREATE EXTENSION IF NOT EXISTS unaccent;\n"
}

// loadDump runs the archive's dump into db as the environment's own role
// (never the superuser), stopping at the first error. A custom-format dump
// goes through pg_restore's script output, so that both formats pass the
// same filter.
func (r *JobRun) loadDump(ctx context.Context, env store.Environment, a *backup.Archive, db string) error {
	dump, err := a.Dump()
	if err != nil {
		return err
	}
	defer dump.Close()
	var script io.Reader = dump
	var converted chan error
	if a.Format() == backup.FormatDump {
		pr, pw := io.Pipe()
		converted = make(chan error, 1)
		go func() {
			err := r.p.rt.Stream(ctx, primary(env.Name), dump, pw, "pg_restore", "--no-owner", "--file=-")
			pw.CloseWithError(err)
			converted <- err
		}()
		defer pr.Close()
		script = pr
	}
	err = r.p.rt.Stream(ctx, primary(env.Name), backup.RestoreScript(script), io.Discard,
		"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", env.DBUser, "-d", db)
	if converted != nil {
		if cerr := <-converted; cerr != nil && err == nil {
			err = cerr
		}
	}
	return err
}

// checkRows compares the restored tables' row counts with the manifest's;
// an archive made by Odoo, which lists none, must at least hold Odoo's
// module table.
func (r *JobRun) checkRows(ctx context.Context, env store.Environment, db string, man backup.Manifest) error {
	dbPassword, err := r.p.box.Open(env.DBPassword)
	if err != nil {
		return err
	}
	return r.p.withDB(ctx, env, db, dbPassword, func(ctx context.Context, conn *pgx.Conn) error {
		if man.Pgdeck == nil || len(man.Pgdeck.Tables) == 0 {
			var ok bool
			if err := conn.QueryRow(ctx, "SELECT to_regclass('public.ir_module_module') IS NOT NULL").Scan(&ok); err != nil {
				return err
			}
			if !ok {
				return errors.New("the restored database has no ir_module_module table: it is not an Odoo database")
			}
			return nil
		}
		var bad []string
		for table, want := range man.Pgdeck.Tables {
			schema, name, _ := strings.Cut(table, ".")
			var got int64
			if err := conn.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{schema, name}.Sanitize()).Scan(&got); err != nil {
				bad = append(bad, fmt.Sprintf("%s: %v", table, err))
				continue
			}
			if got != want {
				bad = append(bad, fmt.Sprintf("%s: %d rows, the backup holds %d", table, got, want))
			}
		}
		if len(bad) > 0 {
			return fmt.Errorf("the restored database differs from the backup: %s", strings.Join(firstN(bad, 5), "; "))
		}
		r.Logf(ctx, "%d tables restored with the row counts the backup lists", len(man.Pgdeck.Tables))
		return nil
	})
}

// currentBaseURL is the environment's web.base.url before the restore
// ("" when its database has none): a copy gets it back, so that the target
// keeps its own address.
func (r *JobRun) currentBaseURL(ctx context.Context, env store.Environment, dbPassword string) (string, error) {
	var url string
	err := r.p.withDB(ctx, env, env.DBName, dbPassword, func(ctx context.Context, conn *pgx.Conn) error {
		var ok bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('public.ir_config_parameter') IS NOT NULL").Scan(&ok); err != nil || !ok {
			return err
		}
		err := conn.QueryRow(ctx, "SELECT value FROM ir_config_parameter WHERE key = 'web.base.url'").Scan(&url)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		return err
	})
	return url, err
}

// fixCopy makes a copy of another environment's database its own, as Odoo's
// copy does (a new database.uuid and database.secret, so that sessions and
// tokens of the source mean nothing here), gives it back the target's
// web.base.url, and neutralizes it when asked: in one transaction, as the
// environment's role. A database without Odoo's parameters table (not an
// Odoo database yet) has nothing to change.
func (r *JobRun) fixCopy(ctx context.Context, env store.Environment, db string, clone bool, baseURL string, neutral bool) error {
	if !clone && !neutral {
		return nil
	}
	dbPassword, err := r.p.box.Open(env.DBPassword)
	if err != nil {
		return err
	}
	return r.p.withDB(ctx, env, db, dbPassword, func(ctx context.Context, conn *pgx.Conn) error {
		var odoo bool
		if err := conn.QueryRow(ctx, "SELECT to_regclass('public.ir_config_parameter') IS NOT NULL AND to_regclass('public.ir_module_module') IS NOT NULL").Scan(&odoo); err != nil {
			return err
		}
		if !odoo {
			if neutral {
				return errors.New("the restored database is not an Odoo database: there is nothing to neutralize")
			}
			return nil
		}
		var sql strings.Builder
		if clone {
			sql.WriteString("UPDATE ir_config_parameter SET value = gen_random_uuid()::text WHERE key IN ('database.uuid', 'database.secret');\n")
			if baseURL != "" {
				fmt.Fprintf(&sql, "UPDATE ir_config_parameter SET value = %s WHERE key = 'web.base.url';\n", quoteLiteral(baseURL))
			}
			if baseURL != "" {
				r.Logf(ctx, "a copy: new database.uuid and database.secret; %s's web.base.url %q kept", env.Name, baseURL)
			} else {
				r.Logf(ctx, "a copy: new database.uuid and database.secret; %s had no web.base.url, so the archive's is left (Odoo sets it at the first admin sign-in)", env.Name)
			}
		}
		if neutral {
			r.Step(ctx, "Neutralizing the copy (mail servers, crons, webhooks, payment providers)", 78)
			rows, _ := conn.Query(ctx, "SELECT name FROM ir_module_module WHERE state IN ('installed', 'to upgrade', 'to remove')")
			modules, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				return fmt.Errorf("list the installed modules: %w", err)
			}
			script, err := neutralize.Script(env.OdooVersion, modules)
			if err != nil {
				return err
			}
			sql.WriteString(script)
		}
		// The simple protocol runs the statements as one implicit
		// transaction: all or nothing.
		if _, err := conn.Exec(ctx, sql.String()); err != nil {
			return fmt.Errorf("prepare the copy: %w", err)
		}
		return nil
	})
}

// swapIn puts the staging database and filestore in the environment's
// place in one transaction: connections to the old database are ended, the
// old one becomes previousDB and the staging one takes its name.
func (r *JobRun) swapIn(ctx context.Context, env store.Environment) error {
	db, staging, prev := quoteIdent(env.DBName), quoteIdent(stagingDB(env.ID)), quoteIdent(previousDB(env.ID))
	if _, err := r.psql(ctx, primary(env.Name), "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS false"); err != nil {
		return err
	}
	_, err := r.psql(ctx, primary(env.Name), "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = "+quoteLiteral(env.DBName)+" AND pid <> pg_backend_pid()")
	if err == nil {
		_, err = r.p.rt.Exec(ctx, primary(env.Name), []byte(
			"BEGIN;\nALTER DATABASE "+db+" RENAME TO "+prev+";\nALTER DATABASE "+staging+" RENAME TO "+db+";\nCOMMIT;\n"),
			"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres")
	}
	if err != nil {
		if _, rerr := r.psql(context.WithoutCancel(ctx), primary(env.Name), "ALTER DATABASE "+db+" WITH ALLOW_CONNECTIONS true"); rerr != nil {
			r.Logf(ctx, "reopen %s: %v", env.DBName, rerr)
		}
		return fmt.Errorf("swap the databases: %w", err)
	}
	r.Logf(ctx, "swapped: %s now holds the restored data; the previous one is %s until the restore ends", env.DBName, previousDB(env.ID))
	if _, err := r.psql(ctx, primary(env.Name), "ALTER DATABASE "+prev+" WITH ALLOW_CONNECTIONS true"); err != nil {
		return err
	}
	return r.swapFilestore(ctx, env)
}

// swapFilestore moves the staging filestore into place, the environment's
// own aside; each rename is done once, so it can run again after a stop.
func (r *JobRun) swapFilestore(ctx context.Context, env store.Environment) error {
	dir := r.p.filestoreDir(env)
	staging, prev := dir+stagingFilestore, dir+previousFilestore
	if _, err := os.Stat(staging); err != nil {
		return nil // done, or the archive had none and none was made
	}
	if _, err := os.Stat(prev); errors.Is(err, os.ErrNotExist) {
		if err := os.Rename(dir, prev); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("move the filestore aside: %w", err)
		}
	} else if err := os.RemoveAll(dir); err != nil {
		return err
	}
	if err := os.Rename(staging, dir); err != nil {
		return fmt.Errorf("move the restored filestore in: %w", err)
	}
	return nil
}

// finishRestore checks that the environment serves the restored database,
// then removes the previous data. Should the check fail, the previous data
// is swapped back.
func (r *JobRun) finishRestore(ctx context.Context, env store.Environment) error {
	r.Step(ctx, "Checking that "+env.Name+" serves the restored data", 92)
	dbPassword, err := r.p.box.Open(env.DBPassword)
	if err != nil {
		return err
	}
	if err := r.p.checkConnect(ctx, primary(env.Name), env.DBName, env.DBUser, dbPassword); err != nil {
		return fmt.Errorf("%w; the previous data is kept as database %s and folder %s", err, previousDB(env.ID), r.p.filestoreDir(env)+previousFilestore)
	}
	if env.PoolerPort != nil {
		if err := r.p.checkPoolerConnect(ctx, pooler(env.Name), env.DBName, env.DBUser, dbPassword); err != nil {
			r.Logf(ctx, "PgBouncer does not serve the restored database yet: %v", err)
		}
	}
	r.Step(ctx, "Removing the previous data", 96)
	if _, err := r.psql(ctx, primary(env.Name), "DROP DATABASE IF EXISTS "+quoteIdent(previousDB(env.ID))+" WITH (FORCE)"); err != nil {
		return err
	}
	return os.RemoveAll(r.p.filestoreDir(env) + previousFilestore)
}

// restoreSettings saves the archive's database settings as the
// environment's (a restore of its own backup): like any save they wait for
// a redeploy.
func (r *JobRun) restoreSettings(ctx context.Context, env store.Environment, a *backup.Archive) error {
	config, err := a.Config()
	if err != nil {
		return err
	}
	data, ok := config[settingsFile]
	if !ok {
		return nil
	}
	var saved savedSettingsFile
	if err := json.Unmarshal(data, &saved); err != nil {
		return err
	}
	changed := false
	_, err = r.p.store.UpdateDatabaseSettings(ctx, env.ID, func(s *store.DatabaseSettings) error {
		changed = !maps.Equal(s.Parameters, saved.Parameters) || s.PgBouncer != saved.PgBouncer || s.ReadReplica != saved.ReadReplica
		if saved.Parameters == nil {
			saved.Parameters = map[string]string{}
		}
		s.Parameters, s.PgBouncer, s.ReadReplica = saved.Parameters, saved.PgBouncer, saved.ReadReplica
		return nil
	})
	if err == nil && changed {
		r.Logf(ctx, "the database settings saved at backup time are restored; Redeploy to apply them")
	}
	return err
}

// checkRestoreAccess checks that the primary's pg_hba lets the
// environment's role into the staging database (environments deployed
// before restores existed get the lines at their next redeploy).
func (r *JobRun) checkRestoreAccess(ctx context.Context, env store.Environment) error {
	out, err := r.psql(ctx, primary(env.Name), "SELECT count(*) FROM pg_hba_file_rules WHERE "+
		quoteLiteral(stagingDB(env.ID))+" = ANY(database) AND "+quoteLiteral(env.DBUser)+" = ANY(user_name)")
	if err != nil {
		return err
	}
	if n := strings.TrimSpace(string(out)); n != "2" {
		return invalid(env.Name + "'s access rules predate restores: Redeploy it once, then restore. Nothing was changed.")
	}
	return nil
}

func (r *JobRun) databaseExists(ctx context.Context, env store.Environment, db string) (bool, error) {
	out, err := r.psql(ctx, primary(env.Name), "SELECT count(*) FROM pg_database WHERE datname = "+quoteLiteral(db))
	if err != nil {
		return false, err
	}
	return strings.TrimSpace(string(out)) == "1", nil
}

// serverMajor is the primary's PostgreSQL major version.
func (p *Provisioner) serverMajor(ctx context.Context, env store.Environment) (int, error) {
	out, err := p.rt.Exec(ctx, primary(env.Name), nil, "psql", "-X", "-A", "-t", "-d", "postgres", "-c", "SHOW server_version_num")
	if err != nil {
		return 0, err
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil {
		return 0, fmt.Errorf("server_version_num %q: %w", out, err)
	}
	return n / 10000, nil
}

// withDB logs in to database db of the environment's primary as its role.
func (p *Provisioner) withDB(ctx context.Context, env store.Environment, db, password string, fn func(context.Context, *pgx.Conn) error) error {
	conn, err := p.connect(ctx, primary(env.Name), db, env.DBUser, password)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	return fn(ctx, conn)
}

func firstN(s []string, n int) []string {
	if len(s) > n {
		return append(s[:n:n], fmt.Sprintf("and %d more", len(s)-n))
	}
	return s
}
