package provisioner

import (
	"context"
	"fmt"
	"reflect"
	"time"

	"pgdeck/provisioner/backup"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// DeleteParams are a delete's parameters.
type DeleteParams struct {
	// SkipBackup deletes without the pre-delete backup (an environment
	// whose database cannot be read any more); the data is then lost.
	SkipBackup bool `json:"skip_backup,omitempty"`
}

// deleteKind takes a pre-delete backup, then removes every instance and
// folder of the environment, then its row. Users start it through its own
// confirmation, not as an action.
var deleteKind = JobKind{
	Kind:    KindDelete,
	Lane:    store.LaneOps,
	Timeout: 12 * time.Hour,
	Params:  reflect.TypeOf(DeleteParams{}),
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		p, err := ParamsOf[DeleteParams](r)
		if err != nil {
			return err
		}
		if env.Deployed() && !p.SkipBackup {
			if err := r.preDeleteBackup(ctx, env); err != nil {
				return fmt.Errorf("the backup before the delete failed, nothing was deleted: %w", err)
			}
		}
		r.Step(ctx, "Stopping and removing PostgreSQL", 92)
		if err := r.p.removeAll(ctx, env.Name); err != nil {
			return err
		}
		r.Step(ctx, "Forgetting the environment", 98)
		return r.p.store.DeleteEnvironment(ctx, env.ID)
	},
	// A delete cut short after the row went (which set the job's
	// environment_id to NULL): finish the folder.
	Gone: func(ctx context.Context, r *JobRun) error {
		return r.p.removeAll(ctx, r.job.EnvName)
	},
}

// preDeleteBackup keeps the environment's data in a pre-delete backup, kept
// apart and never pruned; a stopped environment's primary is started for
// it (it is removed right after).
func (r *JobRun) preDeleteBackup(ctx context.Context, env store.Environment) error {
	if done, err := r.p.store.ListBackups(ctx, env.Name, 0); err == nil {
		for _, b := range done {
			if b.Kind == store.BackupPreDelete && b.State == store.BackupSucceeded && b.JobID != nil && *b.JobID == r.job.ID {
				return nil // an earlier attempt of this delete took it
			}
		}
	}
	st, err := r.p.rt.Status(ctx, primary(env.Name))
	if err != nil {
		return err
	}
	if st.State == runtime.StateMissing {
		// An earlier attempt of this delete removed the instance already
		// (its backup came first): there is nothing left to keep.
		r.Logf(ctx, "%s's PostgreSQL is already removed: no backup to take", env.Name)
		return nil
	}
	if st.State != runtime.StateRunning {
		r.Step(ctx, "Starting PostgreSQL for the backup before the delete", 2)
		if err := r.p.rt.Start(ctx, primary(env.Name)); err != nil {
			return err
		}
	}
	b, err := r.takeBackup(ctx, env, store.BackupPreDelete, backup.FormatZip, 5, 90)
	if err != nil {
		return err
	}
	r.Logf(ctx, "%s's data is kept in %s", env.Name, r.p.BackupPath(b))
	return nil
}
