package provisioner

import (
	"context"
	"strconv"

	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// ResolveSettings turns an environment's saved settings into what a deploy
// applies: the primary's base configuration, the plan's recommendation
// (render.Recommend) with the operator's overrides on top, and PgBouncer's
// settings with the defaults filled in. PgBouncer and the read replica stay
// off on a plan that does not allow them, whatever was saved.
func ResolveSettings(env store.Environment, saved store.DatabaseSettings) (DeploySettings, error) {
	res, err := render.PlanResources(env.Plan)
	if err != nil {
		return DeploySettings{}, err
	}
	conf := render.PrimaryConf()
	for _, p := range render.Recommend(res) {
		conf[p.Name] = p.Value
	}
	for name, v := range saved.Parameters {
		if _, ok := render.StaticSetting(name); ok {
			conf[name] = v
		}
	}
	pool := EffectivePooler(saved.PgBouncer)
	if ok, _ := render.PlanAllowsPooler(env.Plan); !ok {
		pool.Enabled = false
	}
	replica := false
	if ok, _ := render.PlanAllowsReplica(env.Plan); ok && saved.ReadReplica {
		if major, _ := strconv.ParseFloat(env.OdooVersion, 64); major >= 18 {
			replica = true
			// wal_level replica, 10 WAL senders and 10 slots are
			// PostgreSQL 15's defaults: the primary streams without a
			// restart. A stuck replica's slot may hold back at most a
			// tenth of the plan's storage before it is given up.
			conf["max_slot_wal_keep_size"] = render.FormatBytes(max(res.Storage/10, 256*render.MiB))
		}
	}
	return DeploySettings{PostgreSQLConf: conf, PgBouncer: &pool, ReadReplica: replica}, nil
}

// MaxConnectionsOf returns the max_connections a configuration sets
// (PostgreSQL's default 100 when it sets none or an unreadable one).
func MaxConnectionsOf(conf map[string]string) int {
	if n, err := strconv.Atoi(conf["max_connections"]); err == nil && n > 0 {
		return n
	}
	return render.MaxConnections
}

// snapshotSettings takes the settings a deploy applies as they are saved now.
func snapshotSettings(ctx context.Context, p *Provisioner, env store.Environment) (any, error) {
	saved, err := p.store.DatabaseSettings(ctx, env.ID)
	if err != nil {
		return nil, err
	}
	s, err := ResolveSettings(env, saved)
	if err != nil {
		return nil, err
	}
	return DeployParams{Settings: &s}, nil
}
