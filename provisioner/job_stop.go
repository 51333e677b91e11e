package provisioner

import (
	"context"
	"time"

	"pgdeck/store"
)

// stopKind stops the environment's PgBouncer and PostgreSQL and records that the operator
// wants it stopped (reconcile leaves it so).
var stopKind = JobKind{
	Kind:    KindStop,
	Lane:    store.LaneOps,
	Action:  true,
	Timeout: 5 * time.Minute,
	Check: func(env store.Environment) error {
		if !env.Deployed() {
			return invalid(env.Name + " is not deployed yet.")
		}
		if env.DesiredState == "stopped" {
			return invalid(env.Name + " is already stopped.")
		}
		return nil
	},
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		r.Step(ctx, "Stopping PostgreSQL", 30)
		if err := r.p.store.SetDesiredState(ctx, env.ID, "stopped"); err != nil {
			return err
		}
		return r.stopAll(ctx, env)
	},
}
