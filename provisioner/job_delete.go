package provisioner

import (
	"context"
	"time"

	"pgdeck/store"
)

// deleteKind removes every instance and folder of the environment, then its
// row. Users start it through its own confirmation, not as an action.
var deleteKind = JobKind{
	Kind:    KindDelete,
	Lane:    store.LaneOps,
	Timeout: 10 * time.Minute,
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		r.Step(ctx, "Stopping and removing PostgreSQL", 20)
		if err := r.p.removeAll(ctx, env.Name); err != nil {
			return err
		}
		r.Step(ctx, "Forgetting the environment", 90)
		return r.p.store.DeleteEnvironment(ctx, env.ID)
	},
	// A delete cut short after the row went (which set the job's
	// environment_id to NULL): finish the folder.
	Gone: func(ctx context.Context, r *JobRun) error {
		return r.p.removeAll(ctx, r.job.EnvName)
	},
}
