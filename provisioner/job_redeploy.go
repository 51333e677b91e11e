package provisioner

import (
	"context"
	"reflect"
	"time"

	"pgdeck/store"
)

// redeployKind re-applies the deploy's steps to a deployed environment with
// the settings saved when it was queued: PostgreSQL is reloaded, and
// restarted only when a changed setting takes a restart (see
// applyConf); PgBouncer is started, reloaded or removed.
var redeployKind = JobKind{
	Kind:    KindRedeploy,
	Lane:    store.LaneOps,
	Action:  true,
	Timeout: 10 * time.Minute,
	Check: func(env store.Environment) error {
		if !env.Deployed() {
			return invalid(env.Name + " is not deployed yet; use Deploy.")
		}
		return nil
	},
	Params:   reflect.TypeFor[DeployParams](),
	Snapshot: snapshotSettings,
	Run: func(ctx context.Context, r *JobRun, env store.Environment) error {
		return r.deploy(ctx, env)
	},
}
