package views

import "time"

// The environment's pages are built from parts, each with its own model so
// that a part refreshed on its own (the header while a job runs, the
// Database card after each health check) is built from what it shows only.

// EnvironmentHead is the header of every environment tab: name, stage,
// version, plan, health badge, the actions and the job strip.
type EnvironmentHead struct {
	Env       Environment
	CanChange bool
	// Job is the active job, or the last one when it ended recently.
	Job *Job
	// CSRF is the token for the action forms.
	CSRF string
	// OOB swaps the header in out of band, beside another part's answer
	// (a backup queued from the Backups tab).
	OOB bool
}

// Busy reports whether a job is queued or running (conflicting buttons are disabled).
func (h EnvironmentHead) Busy() bool { return h.Job != nil && h.Job.Active() }

// DatabaseCard is the Overview's self-refreshing database widget.
type DatabaseCard struct {
	Name    string
	Health  Health
	Details DatabaseDetails
	// Pooler is the environment's PgBouncer, shown beside the database's
	// health; nil when it has none.
	Pooler *PoolerBadge
}

// PoolerBadge is PgBouncer's health and where Odoo reaches it.
type PoolerBadge struct {
	Health Health
	Host   string
	Port   int
}

// Overview is the Overview tab's cards under the tabs.
type Overview struct {
	Name      string
	Database  DatabaseCard
	CanChange bool
	CanReveal bool
	// Busy disables the delete button while a job is queued or running.
	Busy bool
	// Delete is the delete form (its message when the typed name is wrong).
	Delete Form
	// CSRF is the token for the delete form.
	CSRF string
	// Deployed: the delete takes a pre-delete backup first, kept in
	// BackupFolder.
	Deployed     bool
	BackupFolder string
	// Backups is how old the newest good backup is.
	Backups BackupAge
}

// DatabaseDetails are the figures the Overview shows about the database.
type DatabaseDetails struct {
	Deployed       bool
	Host           string
	Port           int
	DBName         string
	DBUser         string
	OdooConfPath   string
	PGVersion      string
	SizeBytes      int64
	Connections    int
	MaxConnections int
	StartedAt      *time.Time
	CheckedAt      time.Time
	FiguresAt      *time.Time
	Stale          bool
	HasFigures     bool
}
