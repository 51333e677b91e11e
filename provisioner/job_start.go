package provisioner

import (
	"context"
	"time"

	"pgdeck/store"
)

// startKind starts a stopped environment's PostgreSQL and PgBouncer (also queued by
// reconcile for an environment that should run but does not).
var startKind = JobKind{
	Kind:    KindStart,
	Lane:    store.LaneOps,
	Action:  true,
	Timeout: 5 * time.Minute,
	Check: func(env store.Environment) error {
		if !env.Deployed() {
			return invalid(env.Name + " is not deployed yet; use Deploy.")
		}
		if env.DesiredState == "running" {
			return invalid(env.Name + " is already running; use Restart if its health shows Error.")
		}
		return nil
	},
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		r.Step(ctx, "Starting PostgreSQL", 30)
		if err := r.p.store.SetDesiredState(ctx, env.ID, "running"); err != nil {
			return err
		}
		return r.startAll(ctx, env)
	},
}
