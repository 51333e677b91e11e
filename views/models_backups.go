package views

import (
	"strconv"
	"time"
)

// BackupsTab is the Backups tab: the list, Create backup, Import and the
// schedule.
type BackupsTab struct {
	Name string
	CSRF string
	// CanChange may create, verify, restore, delete and import;
	// CanDownload (owners and admins) may download.
	CanChange, CanDownload bool
	// Deployed: there is a database to back up.
	Deployed bool
	List     BackupList
	Create   Form
	Import   Form
	Schedule Form
	// Targets are the environments a restore may go into (this one
	// first).
	Targets []string
	// ImportFiles are the archives waiting in ImportFolder.
	ImportFiles  []string
	ImportFolder string
	UploadLimit  int64
	// Folder is where this environment's backups are kept.
	Folder string
}

// BackupList is the table of backups, refreshed while one is written.
type BackupList struct {
	Name                   string
	CSRF                   string
	CanChange, CanDownload bool
	Backups                []BackupRow
	Targets                []string
	Age                    BackupAge
	// JobActive: a job of the environment is queued or running (a backup
	// whose row does not exist yet, a check, a restore): the list polls.
	JobActive bool
}

// Running reports whether a backup is being written or a job runs (the
// list polls).
func (l BackupList) Running() bool {
	if l.JobActive {
		return true
	}
	for _, b := range l.Backups {
		if b.State == "running" {
			return true
		}
	}
	return false
}

// BackupRow is one backup.
type BackupRow struct {
	ID          int64
	Kind        string
	Format      string
	State       string
	Error       string
	SizeBytes   int64
	CreatedAt   time.Time
	VerifiedAt  *time.Time
	VerifyError string
	File        string
	// Source is the environment the backup was made of ("" for an
	// import that does not say).
	Source string
}

// IDString is the backup's id for URLs and element ids.
func (b BackupRow) IDString() string { return strconv.FormatInt(b.ID, 10) }

// BackupAge is the newest good backup's age and whether it is too old.
type BackupAge struct {
	Newest *time.Time
	Warn   bool
	// WarnAfter is the configured age, in words ("1 day").
	WarnAfter string
}
