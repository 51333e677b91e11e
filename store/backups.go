package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The kinds of backup: why it was taken.
const (
	BackupManual     = "manual"
	BackupScheduled  = "scheduled"
	BackupPreRestore = "pre-restore"
	BackupPreDelete  = "pre-delete"
	BackupImported   = "imported"
)

// The states of a backup.
const (
	BackupRunning   = "running"
	BackupSucceeded = "succeeded"
	BackupFailed    = "failed"
)

// Backup is one archive in the backup folder.
type Backup struct {
	ID int64 `db:"id"`
	// EnvID is nil once its environment was deleted; EnvName stays.
	EnvID   *int64 `db:"env_id"`
	EnvName string `db:"env_name"`
	Kind    string `db:"kind"`
	// Format is "zip" (Odoo's: plain SQL) or "dump" (pg_dump's custom
	// format, for pg_restore).
	Format string `db:"format"`
	State  string `db:"state"`
	// File is the archive's path relative to the backup folder.
	File      string `db:"file"`
	SizeBytes int64  `db:"size_bytes"`
	// SHA256 is the whole archive's, hex.
	SHA256      string          `db:"sha256"`
	Manifest    json.RawMessage `db:"manifest"`
	Error       string          `db:"error"`
	JobID       *int64          `db:"job_id"`
	RequestedBy string          `db:"requested_by"`
	CreatedAt   time.Time       `db:"created_at"`
	FinishedAt  *time.Time      `db:"finished_at"`
	VerifiedAt  *time.Time      `db:"verified_at"`
	VerifyError string          `db:"verify_error"`
}

// Good reports whether the backup finished and its last check, if any, found
// nothing wrong.
func (b Backup) Good() bool { return b.State == BackupSucceeded && b.VerifyError == "" }

const backupColumns = `id, env_id, env_name, kind, format, state, file, size_bytes, sha256, manifest,
	error, job_id, requested_by, created_at, finished_at, verified_at, verify_error`

// NewBackup is a backup about to be written.
type NewBackup struct {
	EnvID       *int64
	EnvName     string
	Kind        string
	Format      string
	File        string
	JobID       *int64
	RequestedBy string
}

// CreateBackup records a backup in state running; a file already recorded
// is ErrConflict.
func (s *Store) CreateBackup(ctx context.Context, n NewBackup) (Backup, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO backups (env_id, env_name, kind, format, file, job_id, requested_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING `+backupColumns,
		n.EnvID, n.EnvName, n.Kind, n.Format, n.File, n.JobID, n.RequestedBy)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Backup])
	if isUniqueViolation(err) {
		return Backup{}, fmt.Errorf("backup file %s: %w", n.File, ErrConflict)
	}
	if err != nil {
		return Backup{}, fmt.Errorf("store: create backup: %w", err)
	}
	return b, nil
}

// FinishBackup marks a running backup succeeded with its size, checksum and
// manifest.
func (s *Store) FinishBackup(ctx context.Context, id, size int64, sha string, manifest json.RawMessage) error {
	tag, err := s.Pool.Exec(ctx, `UPDATE backups SET state = 'succeeded', size_bytes = $2, sha256 = $3,
		manifest = $4, error = '', finished_at = now() WHERE id = $1 AND state = 'running'`, id, size, sha, manifest)
	if err != nil {
		return fmt.Errorf("store: finish backup %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("store: finish backup %d: %w", id, ErrNotFound)
	}
	return nil
}

// FailBackup marks a running backup failed with the reason.
func (s *Store) FailBackup(ctx context.Context, id int64, reason string) error {
	_, err := s.Pool.Exec(ctx, `UPDATE backups SET state = 'failed', error = $2, size_bytes = 0, finished_at = now()
		WHERE id = $1 AND state = 'running'`, id, reason)
	if err != nil {
		return fmt.Errorf("store: fail backup %d: %w", id, err)
	}
	return nil
}

// FailInterruptedBackups marks failed, with the reason, the running backups
// that no running job writes (pgdeck stopped while they ran) and those an
// earlier attempt of job ownJob left (0: none), and returns them so their
// temporary files can be removed.
func (s *Store) FailInterruptedBackups(ctx context.Context, reason string, ownJob int64) ([]Backup, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE backups b SET state = 'failed', error = $1, size_bytes = 0, finished_at = now()
		WHERE b.state = 'running' AND (b.job_id = $2 OR NOT EXISTS (
			SELECT 1 FROM jobs j WHERE j.id = b.job_id AND j.state = 'running'))
		RETURNING `+backupColumns, reason, ownJob)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Backup])
	if err != nil {
		return nil, fmt.Errorf("store: fail interrupted backups: %w", err)
	}
	return out, nil
}

// SetBackupVerified records the result of a check of the backup: a nil
// failure clears an earlier one.
func (s *Store) SetBackupVerified(ctx context.Context, id int64, failure error) error {
	msg := ""
	if failure != nil {
		msg = failure.Error()
	}
	_, err := s.Pool.Exec(ctx, `UPDATE backups SET verified_at = now(), verify_error = $2 WHERE id = $1`, id, msg)
	if err != nil {
		return fmt.Errorf("store: verify backup %d: %w", id, err)
	}
	return nil
}

// BackupByID returns one backup.
func (s *Store) BackupByID(ctx context.Context, id int64) (Backup, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+backupColumns+` FROM backups WHERE id = $1`, id)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Backup])
	if err != nil {
		return Backup{}, fmt.Errorf("store: backup %d: %w", id, notFound(err))
	}
	return b, nil
}

// ListBackups returns an environment's backups, newest first (limit ≤ 0: all).
func (s *Store) ListBackups(ctx context.Context, envName string, limit int) ([]Backup, error) {
	if limit <= 0 {
		limit = 1 << 30
	}
	rows, _ := s.Pool.Query(ctx, `SELECT `+backupColumns+` FROM backups WHERE env_name = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, envName, limit)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[Backup])
	if err != nil {
		return nil, fmt.Errorf("store: backups of %s: %w", envName, err)
	}
	return out, nil
}

// NewestGoodBackups returns, per environment name, when its newest
// succeeded backup was made.
func (s *Store) NewestGoodBackups(ctx context.Context) (map[string]time.Time, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT env_name, max(created_at) FROM backups
		WHERE state = 'succeeded' AND verify_error = '' GROUP BY env_name`)
	out := map[string]time.Time{}
	var name string
	var at time.Time
	_, err := pgx.ForEachRow(rows, []any{&name, &at}, func() error {
		out[name] = at
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: newest backups: %w", err)
	}
	return out, nil
}

// NewestGoodBackup returns when the environment's newest succeeded backup
// that no check found wrong was made; nil when it has none.
func (s *Store) NewestGoodBackup(ctx context.Context, envName string) (*time.Time, error) {
	var at *time.Time
	err := s.Pool.QueryRow(ctx, `SELECT max(created_at) FROM backups
		WHERE env_name = $1 AND state = 'succeeded' AND verify_error = ''`, envName).Scan(&at)
	if err != nil {
		return nil, fmt.Errorf("store: newest backup of %s: %w", envName, err)
	}
	return at, nil
}

// DeleteBackup forgets a backup (the caller removes its file); a running
// one cannot be deleted (ErrConflict).
func (s *Store) DeleteBackup(ctx context.Context, id int64) error {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM backups WHERE id = $1 AND state <> 'running'`, id)
	if err != nil {
		return fmt.Errorf("store: delete backup %d: %w", id, err)
	}
	if tag.RowsAffected() == 0 {
		if _, err := s.BackupByID(ctx, id); err != nil {
			return err
		}
		return fmt.Errorf("store: delete backup %d: it is being written: %w", id, ErrConflict)
	}
	return nil
}

// BackupSchedule is an environment's daily backup schedule and retention.
type BackupSchedule struct {
	EnvironmentID int64  `db:"environment_id" json:"-"`
	Enabled       bool   `db:"enabled" json:"enabled"`
	TimeOfDay     string `db:"time_of_day" json:"time"`
	KeepDaily     int    `db:"keep_daily" json:"keep_daily"`
	KeepWeekly    int    `db:"keep_weekly" json:"keep_weekly"`
	KeepMonthly   int    `db:"keep_monthly" json:"keep_monthly"`
	// LastQueuedOn is the UTC day the scheduler last queued a backup for.
	LastQueuedOn *time.Time `db:"last_queued_on" json:"-"`
	UpdatedAt    time.Time  `db:"updated_at" json:"-"`
}

// DefaultBackupSchedule is the schedule of an environment that never saved
// one: disabled, 02:00 UTC, keep 7 daily, 4 weekly, 12 monthly.
func DefaultBackupSchedule(envID int64) BackupSchedule {
	return BackupSchedule{EnvironmentID: envID, TimeOfDay: "02:00", KeepDaily: 7, KeepWeekly: 4, KeepMonthly: 12}
}

const scheduleColumns = `environment_id, enabled, time_of_day, keep_daily, keep_weekly, keep_monthly, last_queued_on, updated_at`

// BackupSchedule returns an environment's schedule (the default when none
// was saved).
func (s *Store) BackupSchedule(ctx context.Context, envID int64) (BackupSchedule, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+scheduleColumns+` FROM backup_schedules WHERE environment_id = $1`, envID)
	b, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[BackupSchedule])
	if errors.Is(err, pgx.ErrNoRows) {
		return DefaultBackupSchedule(envID), nil
	}
	if err != nil {
		return BackupSchedule{}, fmt.Errorf("store: backup schedule of %d: %w", envID, err)
	}
	return b, nil
}

// SaveBackupSchedule stores an environment's schedule (the caller has
// validated it).
func (s *Store) SaveBackupSchedule(ctx context.Context, b BackupSchedule) (BackupSchedule, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO backup_schedules (environment_id, enabled, time_of_day, keep_daily, keep_weekly, keep_monthly)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (environment_id) DO UPDATE SET enabled = $2, time_of_day = $3, keep_daily = $4,
			keep_weekly = $5, keep_monthly = $6, updated_at = now()
		RETURNING `+scheduleColumns, b.EnvironmentID, b.Enabled, b.TimeOfDay, b.KeepDaily, b.KeepWeekly, b.KeepMonthly)
	out, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[BackupSchedule])
	if isForeignKeyViolation(err) {
		return BackupSchedule{}, fmt.Errorf("environment %d: %w", b.EnvironmentID, ErrNotFound)
	}
	if err != nil {
		return BackupSchedule{}, fmt.Errorf("store: save backup schedule: %w", err)
	}
	return out, nil
}

// DueSchedules returns the enabled schedules whose time of day has passed
// on day (UTC) and that have not queued a backup for that day yet.
func (s *Store) DueSchedules(ctx context.Context, now time.Time) ([]BackupSchedule, error) {
	now = now.UTC()
	day := now.Format(time.DateOnly)
	hhmm := now.Format("15:04")
	rows, _ := s.Pool.Query(ctx, `SELECT `+scheduleColumns+` FROM backup_schedules
		WHERE enabled AND time_of_day <= $2 AND (last_queued_on IS NULL OR last_queued_on < $1::date)
		ORDER BY environment_id`, day, hhmm)
	out, err := pgx.CollectRows(rows, pgx.RowToStructByName[BackupSchedule])
	if err != nil {
		return nil, fmt.Errorf("store: due backup schedules: %w", err)
	}
	return out, nil
}

// MarkScheduleQueued records that the schedule queued its backup for day;
// false when another pgdeck (or an earlier call) already did.
func (s *Store) MarkScheduleQueued(ctx context.Context, envID int64, day time.Time) (bool, error) {
	tag, err := s.Pool.Exec(ctx, `UPDATE backup_schedules SET last_queued_on = $2::date
		WHERE environment_id = $1 AND (last_queued_on IS NULL OR last_queued_on < $2::date)`,
		envID, day.UTC().Format(time.DateOnly))
	if err != nil {
		return false, fmt.Errorf("store: mark schedule queued: %w", err)
	}
	return tag.RowsAffected() == 1, nil
}
