package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/backup"
	"pgdeck/store"
)

// The kinds of backup job.
const (
	// KindBackup is an operator's backup (lane backup).
	KindBackup Kind = "backup"
	// KindScheduledBackup is the schedule's daily backup (lane schedule),
	// followed by the retention.
	KindScheduledBackup Kind = "scheduled_backup"
	// KindVerifyBackup checks a backup's archive.
	KindVerifyBackup Kind = "verify_backup"
)

// backupKind takes a backup of the environment's database, filestore and
// configuration.
var backupKind = JobKind{
	Kind:    KindBackup,
	Lane:    store.LaneBackup,
	Timeout: 12 * time.Hour,
	Check:   backupCheck,
	Params:  reflect.TypeOf(BackupParams{}),
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		p, err := ParamsOf[BackupParams](r)
		if err != nil {
			return err
		}
		if p.Kind == "" {
			p.Kind = store.BackupManual
		}
		_, err = r.takeBackup(ctx, env, p.Kind, backup.Format(p.Format), 0, 95)
		return err
	},
}

// scheduledBackupKind is the schedule's backup, then its retention.
var scheduledBackupKind = JobKind{
	Kind:    KindScheduledBackup,
	Lane:    store.LaneSchedule,
	Timeout: 12 * time.Hour,
	Check:   backupCheck,
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		if _, err := r.takeBackup(ctx, env, store.BackupScheduled, backup.FormatZip, 0, 90); err != nil {
			return err
		}
		r.Step(ctx, "Applying the retention", 95)
		return r.p.applyRetention(ctx, env, r.Logf)
	},
}

// verifyBackupKind reads a backup's archive whole: every checksum, and the
// dump proved readable.
var verifyBackupKind = JobKind{
	Kind:    KindVerifyBackup,
	Lane:    store.LaneBackup,
	Timeout: 6 * time.Hour,
	Params:  reflect.TypeOf(VerifyParams{}),
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		p, err := ParamsOf[VerifyParams](r)
		if err != nil {
			return err
		}
		b, err := r.p.store.BackupByID(ctx, p.BackupID)
		if err != nil {
			return err
		}
		r.Step(ctx, "Checking "+filepath.Base(b.File), 10)
		verr := r.p.verifyBackup(ctx, b)
		if verr != nil && ctx.Err() != nil {
			return ctx.Err()
		}
		if err := r.p.store.SetBackupVerified(ctx, b.ID, verr); err != nil {
			return err
		}
		if verr != nil {
			return fmt.Errorf("the backup failed its check: %w", verr)
		}
		r.Logf(ctx, "every part matches its checksum and the dump is readable")
		return nil
	},
}

// VerifyParams name the backup a verify job checks.
type VerifyParams struct {
	BackupID int64 `json:"backup_id"`
}

func backupCheck(env store.Environment) error {
	if !env.Deployed() {
		return invalid(env.Name + " is not deployed yet: there is nothing to back up.")
	}
	if env.DesiredState != "running" {
		return invalid(env.Name + " is stopped; start it to take a backup.")
	}
	return nil
}

// BackupPath returns where a backup's archive is on this host.
func (p *Provisioner) BackupPath(b store.Backup) string {
	return filepath.Join(p.cfg.BackupDir, filepath.FromSlash(b.File))
}

// BackupDir is the folder that holds every backup (PGDECK_BACKUP_DIR).
func (p *Provisioner) BackupDir() string { return p.cfg.BackupDir }

// tempArchive is where a backup's archive is written until it is complete:
// in the same folder, so that the rename is atomic, with a name no listing
// takes for a backup.
func tempArchive(final string, id int64) string {
	return filepath.Join(filepath.Dir(final), ".tmp-"+strconv.FormatInt(id, 10)+".zip")
}

// filestoreDir is where Odoo keeps the environment's filestore on this host:
// <data_dir>/filestore/<db>.
func (p *Provisioner) filestoreDir(env store.Environment) string {
	return p.rt.EnvPath(env.Name, "filestore/filestore/"+env.DBName)
}

// takeBackup writes a backup of the environment's database, filestore and
// configuration into the backup folder, recorded as kind, reporting its
// progress between from and to percent. The archive appears under its name
// only once whole and synced; on any failure the row says why and the
// temporary file is gone.
func (r *JobRun) takeBackup(ctx context.Context, env store.Environment, kind string, format backup.Format, from, to int) (store.Backup, error) {
	p := r.p
	if format == "" {
		format = backup.FormatZip
	}
	if p.cfg.BackupDir == "" {
		return store.Backup{}, errors.New("no backup folder is configured (PGDECK_BACKUP_DIR)")
	}
	// A backup this job started before pgdeck stopped is failed, not
	// continued: its archive is incomplete.
	if _, err := p.store.FailInterruptedBackups(ctx, "interrupted: pgdeck stopped while it was written", r.job.ID); err != nil {
		return store.Backup{}, err
	}
	p.removeStaleTemps(env.Name)
	dir := filepath.Join(p.cfg.BackupDir, env.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return store.Backup{}, fmt.Errorf("backup folder: %w", err)
	}
	jobID := r.job.ID
	b, err := p.recordBackup(ctx, env, kind, format, &jobID, r.job.RequestedBy)
	if err != nil {
		return store.Backup{}, err
	}
	r.Step(ctx, fmt.Sprintf("Backing up (%s, %s)", kind, format), from)
	size, sha, man, err := r.writeArchive(ctx, env, b, format, from, to)
	if err != nil {
		reason := summarizeError(err.Error())
		if ferr := p.store.FailBackup(context.WithoutCancel(ctx), b.ID, reason); ferr != nil {
			p.log.Error("fail backup", "backup", b.ID, "error", ferr)
		}
		return store.Backup{}, fmt.Errorf("backup: %w", err)
	}
	raw, err := json.Marshal(man)
	if err != nil {
		return store.Backup{}, err
	}
	if err := p.store.FinishBackup(ctx, b.ID, size, sha, raw); err != nil {
		return store.Backup{}, err
	}
	r.Logf(ctx, "backup %s: %s, %d tables, %d filestore files", b.File, humanBytes(size), len(man.Pgdeck.Tables), man.Pgdeck.FilestoreFiles)
	return p.store.BackupByID(ctx, b.ID)
}

// recordBackup records a running backup of env named after the environment,
// the time (UTC) and kind: <env>/<env>_<time>_<kind>.zip, with -2, -3, …
// when that name is taken (two backups in one second).
func (p *Provisioner) recordBackup(ctx context.Context, env store.Environment, kind string, format backup.Format, jobID *int64, by string) (store.Backup, error) {
	envID := env.ID
	base := env.Name + "/" + env.Name + "_" + time.Now().UTC().Format("2006-01-02_15-04-05") + "_" + kind
	for i := 1; ; i++ {
		name := base
		if i > 1 {
			name += "-" + strconv.Itoa(i)
		}
		b, err := p.store.CreateBackup(ctx, store.NewBackup{EnvID: &envID, EnvName: env.Name, Kind: kind,
			Format: string(format), File: name + ".zip", JobID: jobID, RequestedBy: by})
		if !errors.Is(err, store.ErrConflict) || i > 20 {
			return b, err
		}
	}
}

// writeArchive writes the archive of b into its temporary file and renames
// it into place; it returns the archive's size, SHA-256 and manifest.
func (r *JobRun) writeArchive(ctx context.Context, env store.Environment, b store.Backup, format backup.Format, from, to int) (size int64, sha string, man backup.Manifest, err error) {
	p := r.p
	final := p.BackupPath(b)
	tmp := tempArchive(final, b.ID)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", man, err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(tmp)
		}
	}()

	// One snapshot for the row counts and the dump: the manifest's counts
	// are what the dump holds, whatever Odoo writes meanwhile.
	dbPassword, err := p.box.Open(env.DBPassword)
	if err != nil {
		return 0, "", man, err
	}
	conn, err := p.connect(ctx, primary(env.Name), env.DBName, env.DBUser, dbPassword)
	if err != nil {
		return 0, "", man, fmt.Errorf("connect to %s: %w", env.DBName, err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return 0, "", man, err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var snapshot string
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snapshot); err != nil {
		return 0, "", man, fmt.Errorf("export a snapshot: %w", err)
	}
	man, estimate, err := r.p.manifestFor(ctx, tx, env)
	if err != nil {
		return 0, "", man, err
	}
	config, err := p.configFiles(ctx, env)
	if err != nil {
		return 0, "", man, err
	}
	estimate += dirSize(p.filestoreDir(env))

	args := []string{"pg_dump", "--no-owner", "--snapshot=" + snapshot, "-d", env.DBName}
	if format == backup.FormatDump {
		args = append(args, "--format=custom", "--compress=0")
	}
	h := sha256.New()
	var last time.Time
	progress := func(n int64) {
		if time.Since(last) < time.Second {
			return
		}
		last = time.Now()
		pct := from
		if estimate > 0 {
			pct = from + int(float64(to-from)*min(1, float64(n)/float64(estimate)))
		}
		r.Step(ctx, "Writing the archive: "+humanBytes(n), pct)
	}
	man, err = backup.Write(ctx, io.MultiWriter(f, h), backup.Source{
		Format: format,
		Dump: func(ctx context.Context, w io.Writer) error {
			return p.rt.Stream(ctx, primary(env.Name), nil, w, args...)
		},
		FilestoreDir: p.filestoreDir(env),
		Config:       config,
		Manifest:     man,
	}, progress)
	if err != nil {
		return 0, "", man, err
	}
	if err := f.Sync(); err != nil {
		return 0, "", man, err
	}
	st, err := f.Stat()
	if err != nil {
		return 0, "", man, err
	}
	if err := f.Close(); err != nil {
		return 0, "", man, err
	}
	if err := os.Rename(tmp, final); err != nil {
		return 0, "", man, err
	}
	syncDir(filepath.Dir(final))
	return st.Size(), hex.EncodeToString(h.Sum(nil)), man, nil
}

// manifestFor fills Odoo's manifest keys and pgdeck's own for the database
// as the transaction sees it, and returns an estimate of the dump's size.
func (p *Provisioner) manifestFor(ctx context.Context, tx pgx.Tx, env store.Environment) (backup.Manifest, int64, error) {
	var man backup.Manifest
	var serverVersion string
	var versionNum int
	var dbSize int64
	if err := tx.QueryRow(ctx, "SELECT current_setting('server_version'), current_setting('server_version_num')::int, pg_database_size(current_database())").
		Scan(&serverVersion, &versionNum, &dbSize); err != nil {
		return man, 0, err
	}
	major := versionNum / 10000
	odooMajor, _ := strconv.Atoi(strings.SplitN(env.OdooVersion, ".", 2)[0])
	man = backup.Manifest{
		OdooDump:     "1",
		DBName:       env.DBName,
		Version:      env.OdooVersion,
		VersionInfo:  []any{odooMajor, 0, 0, "final", 0, ""},
		MajorVersion: env.OdooVersion,
		// Odoo's own form: "%d.%d" % divmod(server_version / 100, 100).
		PGVersion: fmt.Sprintf("%d.0", major),
		Modules:   map[string]string{},
		Pgdeck: &backup.Info{
			Environment:       env.Name,
			PostgreSQLVersion: serverVersion,
			PostgreSQLMajor:   major,
			PgdeckVersion:     p.cfg.Version,
			CreatedAt:         time.Now().UTC(),
			Tables:            map[string]int64{},
		},
	}
	var hasModules bool
	if err := tx.QueryRow(ctx, "SELECT to_regclass('public.ir_module_module') IS NOT NULL").Scan(&hasModules); err != nil {
		return man, 0, err
	}
	if hasModules {
		rows, _ := tx.Query(ctx, "SELECT name, coalesce(latest_version, '') FROM ir_module_module WHERE state = 'installed'")
		var name, version string
		if _, err := pgx.ForEachRow(rows, []any{&name, &version}, func() error {
			man.Modules[name] = version
			return nil
		}); err != nil {
			return man, 0, fmt.Errorf("installed modules: %w", err)
		}
	}
	tables, err := userTables(ctx, tx)
	if err != nil {
		return man, 0, err
	}
	for _, t := range tables {
		var n int64
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+t.quoted()).Scan(&n); err != nil {
			return man, 0, fmt.Errorf("count the rows of %s: %w", t, err)
		}
		man.Pgdeck.Tables[t.String()] = n
	}
	// A plain dump is about the size of the tables' data.
	return man, dbSize / 2, nil
}

// qualifiedTable is a table of the environment's database.
type qualifiedTable struct{ Schema, Name string }

func (t qualifiedTable) String() string { return t.Schema + "." + t.Name }
func (t qualifiedTable) quoted() string { return pgx.Identifier{t.Schema, t.Name}.Sanitize() }

// userTables lists the tables a dump holds rows of: ordinary and partitioned
// tables outside the system schemas that no extension owns.
func userTables(ctx context.Context, q interface {
	Query(context.Context, string, ...any) (pgx.Rows, error)
}) ([]qualifiedTable, error) {
	rows, _ := q.Query(ctx, `SELECT n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
		AND n.nspname NOT LIKE 'pg\_toast%' AND n.nspname NOT LIKE 'pg\_temp%'
		AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e')
		ORDER BY 1, 2`)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[qualifiedTable])
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	return out, nil
}

// configFiles are the environment's configuration files a backup keeps:
// odoo.conf as pgdeck wrote it, and the database settings (saved and
// applied: PostgreSQL's parameters, PgBouncer's, the replica's flag).
func (p *Provisioner) configFiles(ctx context.Context, env store.Environment) (map[string][]byte, error) {
	out := map[string][]byte{}
	if data, err := os.ReadFile(p.OdooConfPath(env.Name)); err == nil {
		out["odoo.conf"] = data
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("read odoo.conf: %w", err)
	}
	s, err := p.store.DatabaseSettings(ctx, env.ID)
	if err != nil {
		return nil, err
	}
	data, err := json.MarshalIndent(savedSettingsFile{Parameters: s.Parameters, PgBouncer: s.PgBouncer,
		ReadReplica: s.ReadReplica, Applied: s.Applied}, "", "  ")
	if err != nil {
		return nil, err
	}
	out[settingsFile] = data
	return out, nil
}

// settingsFile is the config/ entry holding the database settings.
const settingsFile = "database_settings.json"

// savedSettingsFile is settingsFile's content.
type savedSettingsFile struct {
	Parameters  map[string]string    `json:"parameters"`
	PgBouncer   store.PoolerSettings `json:"pgbouncer"`
	ReadReplica bool                 `json:"read_replica"`
	Applied     json.RawMessage      `json:"applied,omitempty"`
}

// verifyBackup checks b's archive whole.
func (p *Provisioner) verifyBackup(ctx context.Context, b store.Backup) error {
	if b.State != store.BackupSucceeded {
		return fmt.Errorf("backup %d is %s: only a finished backup can be checked", b.ID, b.State)
	}
	a, err := backup.Open(p.BackupPath(b), p.cfg.BackupLimits)
	if err != nil {
		return err
	}
	defer a.Close()
	return a.Verify(ctx, p.cfg.PgRestore, p.cfg.BackupDir)
}

// removeStaleTemps removes the temporary archives in env's backup folder
// that no running backup writes.
func (p *Provisioner) removeStaleTemps(env string) {
	dir := filepath.Join(p.cfg.BackupDir, env)
	matches, _ := filepath.Glob(filepath.Join(dir, ".tmp-*"))
	for _, m := range matches {
		id, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimPrefix(filepath.Base(m), ".tmp-"), ".zip"), 10, 64)
		if err == nil {
			if b, err := p.store.BackupByID(context.Background(), id); err == nil && b.State == store.BackupRunning {
				continue
			}
		}
		os.RemoveAll(m)
	}
}

// dirSize is the bytes of the regular files under dir (0 when missing).
func dirSize(dir string) int64 {
	var n int64
	filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// syncDir flushes a folder's entries (a rename into it) to disk.
func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
}

// humanBytes writes n in B, kB, MB, GB (decimal).
func humanBytes(n int64) string {
	switch {
	case n >= 1e9:
		return fmt.Sprintf("%.2f GB", float64(n)/1e9)
	case n >= 1e6:
		return fmt.Sprintf("%.1f MB", float64(n)/1e6)
	case n >= 1e3:
		return fmt.Sprintf("%.0f kB", float64(n)/1e3)
	}
	return fmt.Sprintf("%d B", n)
}
