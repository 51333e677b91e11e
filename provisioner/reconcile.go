package provisioner

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// Reconcile runs at start: running jobs that no live instance owns (left by
// a process that died) are queued again (their steps are idempotent),
// environments that should run but do not (PostgreSQL or their PgBouncer)
// get a start job, and folders of
// environments that no longer exist are removed. Jobs another live pgdeck
// sharing the store is running are left alone.
func (p *Provisioner) Reconcile(ctx context.Context) error {
	if _, err := p.requeueOrphans(ctx, "resuming a job cut short by a restart",
		`pgdeck restarted during step "%s"; resuming the job`); err != nil {
		return err
	}
	failed, err := p.store.FailInterruptedBackups(ctx, "interrupted: pgdeck stopped while it was written", 0)
	if err != nil {
		return err
	}
	for _, b := range failed {
		p.log.Warn("reconcile: a backup was cut short; marked failed", "backup", b.File)
		p.removeStaleTemps(b.EnvName)
	}
	// No upload is under way at the start: what one left is removed.
	if p.cfg.BackupDir != "" {
		left, _ := filepath.Glob(filepath.Join(p.cfg.BackupDir, "*", ".upload-*"))
		for _, f := range left {
			os.Remove(f)
		}
	}
	envs, err := p.store.ListEnvironments(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, e := range envs {
		known[e.Name] = true
		if !e.Deployed() || e.DesiredState != "running" {
			continue
		}
		if _, err := p.store.ActiveJob(ctx, e.Name); err == nil {
			continue
		}
		st, err := p.rt.Status(ctx, primary(e.Name))
		if err != nil {
			p.log.Error("reconcile: status", "env", e.Name, "error", err)
			continue
		}
		if st.State == runtime.StateRunning {
			if e.PoolerPort == nil {
				continue
			}
			if st, err = p.rt.Status(ctx, pooler(e.Name)); err != nil || st.State == runtime.StateRunning {
				continue
			}
		}
		p.log.Warn("reconcile: environment should run but does not; starting it", "env", e.Name, "state", st.State, "reason", st.Reason)
		if _, err := p.queue(ctx, e, p.kinds[KindStart], nil, "pgdeck (reconcile)"); err != nil && !errors.Is(err, store.ErrBusy) {
			return err
		}
	}
	held, err := p.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("provisioner: reconcile: %w", err)
	}
	orphans := map[string]bool{}
	for _, id := range held {
		if !known[id.Env] {
			orphans[id.Env] = true
		}
	}
	for env := range orphans {
		if _, err := p.store.ActiveJob(ctx, env); err == nil {
			continue // a delete job will finish it
		}
		p.log.Warn("reconcile: removing the instances and files of an environment that no longer exists", "env", env)
		if err := p.removeAll(ctx, env); err != nil {
			p.log.Error("reconcile: remove orphan", "env", env, "error", err)
		}
	}
	return nil
}

// removeAll removes every instance of the environment and its own files.
func (p *Provisioner) removeAll(ctx context.Context, env string) error {
	return p.rt.RemoveEnv(ctx, env)
}
