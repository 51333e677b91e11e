package provisioner

import (
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// PendingChange is one difference between what the last deploy applied
// and what a redeploy would apply now.
type PendingChange struct {
	// Name is a postgresql.conf parameter (shared_buffers) or a PgBouncer
	// field (pgbouncer.enabled, pgbouncer.pool_size, …).
	Name string
	// Old is the applied value ("" when the last deploy did not set it),
	// New what a redeploy applies.
	Old, New string
	// Restart says whether the change takes a restart of PostgreSQL (a
	// postmaster parameter); the others take a reload.
	Restart bool
}

// PendingChanges lists what waits for a redeploy: ResolveSettings of the
// saved settings against the applied snapshot, parameters in the panel's
// order (TunedParameters, then any other by name), then PgBouncer's
// fields, then read_replica.enabled. Values are compared by meaning (128MB
// is 131072kB). An environment deployed before snapshots were recorded is
// taken to run what empty settings resolve to (the plan's recommendation,
// PgBouncer and the replica off); one not deployed yet has nothing
// pending, as its first deploy applies everything.
func PendingChanges(env store.Environment, saved store.DatabaseSettings) ([]PendingChange, error) {
	if !env.Deployed() {
		return nil, nil
	}
	want, err := ResolveSettings(env, saved)
	if err != nil {
		return nil, err
	}
	applied, err := AppliedSettings(env, saved)
	if err != nil {
		return nil, err
	}

	var out []PendingChange
	names := render.TunedParameters()
	var others []string
	for name := range maps.Keys(want.PostgreSQLConf) {
		if !slices.Contains(names, name) {
			others = append(others, name)
		}
	}
	for name := range maps.Keys(applied.PostgreSQLConf) {
		if _, ok := want.PostgreSQLConf[name]; !ok && !slices.Contains(names, name) {
			others = append(others, name)
		}
	}
	slices.Sort(others)
	for _, name := range append(names, others...) {
		old, hadOld := applied.PostgreSQLConf[name]
		cur, hasCur := want.PostgreSQLConf[name]
		if !hadOld && !hasCur || hadOld && hasCur && SameValue(name, old, cur) {
			continue
		}
		s, _ := render.StaticSetting(name)
		out = append(out, PendingChange{Name: name, Old: old, New: cur, Restart: render.NeedsRestart(s.Context)})
	}

	oldPool, newPool := poolerOf(applied), poolerOf(want)
	onOff := map[bool]string{true: "on", false: "off"}
	if oldPool.Enabled != newPool.Enabled {
		out = append(out, PendingChange{Name: "pgbouncer.enabled", Old: onOff[oldPool.Enabled], New: onOff[newPool.Enabled]})
	}
	// The pool's figures matter only where a pooler will run.
	if newPool.Enabled {
		for _, f := range []struct {
			name     string
			old, new string
		}{
			{"pgbouncer.pool_size", strconv.Itoa(oldPool.PoolSize), strconv.Itoa(newPool.PoolSize)},
			{"pgbouncer.pool_mode", oldPool.PoolMode, newPool.PoolMode},
			{"pgbouncer.max_client_conn", strconv.Itoa(oldPool.MaxClientConn), strconv.Itoa(newPool.MaxClientConn)},
		} {
			if f.old != f.new {
				out = append(out, PendingChange{Name: f.name, Old: f.old, New: f.new})
			}
		}
	}
	if applied.ReadReplica != want.ReadReplica {
		out = append(out, PendingChange{Name: "read_replica.enabled", Old: onOff[applied.ReadReplica], New: onOff[want.ReadReplica]})
	}
	return out, nil
}

// AppliedSettings returns what the last deploy or redeploy of env applied:
// the snapshot it recorded, or, for an environment deployed before
// snapshots were recorded, what every deploy wrote then (render.PrimaryConf,
// PgBouncer off): the plan's recommendation is then pending, as it is.
func AppliedSettings(env store.Environment, saved store.DatabaseSettings) (DeploySettings, error) {
	if len(saved.Applied) == 0 || string(saved.Applied) == "null" {
		pool := render.DefaultPoolerSettings()
		return DeploySettings{PostgreSQLConf: render.PrimaryConf(), PgBouncer: &pool}, nil
	}
	var d DeploySettings
	if err := json.Unmarshal(saved.Applied, &d); err != nil {
		return DeploySettings{}, fmt.Errorf("provisioner: applied settings of %s: %w", env.Name, err)
	}
	if d.PostgreSQLConf == nil {
		d.PostgreSQLConf = map[string]string{}
	}
	return d, nil
}

// poolerOf is a snapshot's PgBouncer settings; a snapshot without any
// (taken before pooling existed) ran no pooler.
func poolerOf(d DeploySettings) render.PoolerSettings {
	if d.PgBouncer == nil {
		return render.DefaultPoolerSettings()
	}
	return *d.PgBouncer
}

// SameValue says whether two values of a parameter mean the same to
// PostgreSQL: 128MB and 131072kB, 0.90 and 0.9. Values of a parameter
// pgdeck does not tune, or that do not parse, are compared as text.
func SameValue(name, a, b string) bool {
	if a == b {
		return true
	}
	s, ok := render.StaticSetting(name)
	if !ok {
		return false
	}
	ca, na, errA := render.ParseValue(s, a)
	cb, nb, errB := render.ParseValue(s, b)
	if errA != nil || errB != nil {
		return false
	}
	switch s.VarType {
	case "integer", "real":
		return na == nb
	}
	return ca == cb
}
