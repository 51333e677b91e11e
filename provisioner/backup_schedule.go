package provisioner

import (
	"context"
	"errors"
	"time"

	"pgdeck/store"
)

// scheduleLoop queues, every ScheduleInterval, the scheduled backups that
// are due.
func (p *Provisioner) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.ScheduleInterval)
	defer t.Stop()
	for {
		if err := p.QueueDueBackups(ctx, time.Now()); err != nil && ctx.Err() == nil {
			p.log.Error("backup schedule", "error", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-p.stopping:
			return
		case <-t.C:
		}
	}
}

// QueueDueBackups queues a scheduled backup for each environment whose
// daily time has come on now's day (UTC) and that has none for that day.
// One still running from before is waited for (the backup is queued at a
// later call); an environment that is stopped or not deployed skips the day.
func (p *Provisioner) QueueDueBackups(ctx context.Context, now time.Time) error {
	due, err := p.store.DueSchedules(ctx, now)
	if err != nil {
		return err
	}
	for _, s := range due {
		env, err := p.store.EnvironmentByID(ctx, s.EnvironmentID)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return err
		}
		if err := backupCheck(env); err != nil {
			p.log.Info("scheduled backup skipped today", "env", env.Name, "reason", err)
			if _, err := p.store.MarkScheduleQueued(ctx, env.ID, now); err != nil {
				return err
			}
			continue
		}
		_, err = p.EnqueueWith(ctx, env, KindScheduledBackup, nil, "schedule")
		if errors.Is(err, store.ErrBusy) {
			continue
		}
		if err != nil {
			return err
		}
		if _, err := p.store.MarkScheduleQueued(ctx, env.ID, now); err != nil {
			return err
		}
	}
	return nil
}
