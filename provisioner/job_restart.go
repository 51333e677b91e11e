package provisioner

import (
	"context"
	"time"

	"pgdeck/store"
)

// restartKind stops and starts a running environment's PostgreSQL and
// PgBouncer (which brings back one that was killed).
var restartKind = JobKind{
	Kind:    KindRestart,
	Lane:    store.LaneOps,
	Action:  true,
	Timeout: 10 * time.Minute,
	Check: func(env store.Environment) error {
		if !env.Deployed() {
			return invalid(env.Name + " is not deployed yet; use Deploy.")
		}
		if env.DesiredState == "stopped" {
			return invalid(env.Name + " is stopped; use Start.")
		}
		return nil
	},
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		r.Step(ctx, "Stopping PostgreSQL", 20)
		if err := r.stopAll(ctx, env); err != nil {
			return err
		}
		r.Step(ctx, "Starting PostgreSQL", 60)
		if err := r.p.store.SetDesiredState(ctx, env.ID, "running"); err != nil {
			return err
		}
		return r.startAll(ctx, env)
	},
}
