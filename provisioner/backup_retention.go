package provisioner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"time"

	"pgdeck/store"
)

// Keep is how many scheduled backups the retention keeps of each period.
type Keep struct {
	Daily, Weekly, Monthly int
}

// Retained splits scheduled backups into those the retention keeps and those
// it drops. Walking from the newest, it keeps the newest backup of each of
// the Daily most recent days that have one, of the Weekly most recent ISO
// weeks and of the Monthly most recent months (UTC); a backup kept for one
// period may also count for another. Only succeeded backups are counted;
// failed ones older than the newest kept backup are dropped, newer ones
// kept (they say what went wrong lately).
func Retained(backups []store.Backup, keep Keep) (kept, dropped []store.Backup) {
	good := make([]store.Backup, 0, len(backups))
	for _, b := range backups {
		if b.State == store.BackupSucceeded {
			good = append(good, b)
		}
	}
	slices.SortStableFunc(good, func(a, b store.Backup) int { return b.CreatedAt.Compare(a.CreatedAt) })
	keepIDs := map[int64]bool{}
	for _, period := range []struct {
		n      int
		bucket func(time.Time) string
	}{
		{keep.Daily, func(t time.Time) string { return t.Format(time.DateOnly) }},
		{keep.Weekly, func(t time.Time) string { y, w := t.ISOWeek(); return fmt.Sprintf("%d-W%02d", y, w) }},
		{keep.Monthly, func(t time.Time) string { return t.Format("2006-01") }},
	} {
		last, count := "", 0
		for _, b := range good {
			if count >= period.n {
				break
			}
			if k := period.bucket(b.CreatedAt.UTC()); k != last {
				keepIDs[b.ID] = true
				last = k
				count++
			}
		}
	}
	var newestKept time.Time
	for _, b := range good {
		if keepIDs[b.ID] {
			newestKept = b.CreatedAt
			break
		}
	}
	for _, b := range backups {
		switch {
		case keepIDs[b.ID], b.State == store.BackupRunning,
			b.State == store.BackupFailed && b.CreatedAt.After(newestKept):
			kept = append(kept, b)
		default:
			dropped = append(dropped, b)
		}
	}
	return kept, dropped
}

// applyRetention deletes the environment's scheduled backups that the
// schedule's retention no longer keeps: their files, then their rows.
// Backups of other kinds (manual, pre-restore, pre-delete, imported) are
// never touched.
func (p *Provisioner) applyRetention(ctx context.Context, env store.Environment, logf func(context.Context, string, ...any)) error {
	sched, err := p.store.BackupSchedule(ctx, env.ID)
	if err != nil {
		return err
	}
	all, err := p.store.ListBackups(ctx, env.Name, 0)
	if err != nil {
		return err
	}
	var scheduled []store.Backup
	for _, b := range all {
		if b.Kind == store.BackupScheduled {
			scheduled = append(scheduled, b)
		}
	}
	_, dropped := Retained(scheduled, Keep{Daily: sched.KeepDaily, Weekly: sched.KeepWeekly, Monthly: sched.KeepMonthly})
	for _, b := range dropped {
		if err := p.DeleteBackup(ctx, b); err != nil {
			return err
		}
		logf(ctx, "retention: removed %s", b.File)
	}
	return nil
}

// DeleteBackup removes a backup's archive and forgets it. A running backup
// cannot be deleted (store.ErrConflict).
func (p *Provisioner) DeleteBackup(ctx context.Context, b store.Backup) error {
	if b.State == store.BackupRunning {
		return fmt.Errorf("backup %d is being written: %w", b.ID, store.ErrConflict)
	}
	if err := os.Remove(p.BackupPath(b)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("remove %s: %w", b.File, err)
	}
	return p.store.DeleteBackup(ctx, b.ID)
}
