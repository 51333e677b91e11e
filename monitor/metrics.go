package monitor

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"pgdeck/store"
)

// scrapeTimeout bounds the store queries of one scrape.
const scrapeTimeout = 5 * time.Second

// NewRegistry returns a registry with pgdeck's metrics, for promhttp to
// serve at /metrics: environment health (the database's and, where there
// is one, PgBouncer's with its pool's figures and the replica's with its
// lag) and job counts read from st at scrape time, the check duration
// histogram and replica lag thresholds of m (nil when this process runs no
// monitor), and the Go and process collectors.
func NewRegistry(m *Monitor, st *store.Store) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreCollector(st),
	)
	if m != nil {
		reg.MustRegister(m.checkDuration, m.skipped, newThresholdCollector(m.cfg.Replica))
	}
	return reg
}

// thresholdCollector serves the replica lag thresholds the monitor grades
// with, so that alerts and dashboards can draw them.
type thresholdCollector struct {
	gauges []prometheus.Metric
}

func newThresholdCollector(t ReplicaThresholds) *thresholdCollector {
	gauge := func(name, help string, v float64) prometheus.Metric {
		return prometheus.MustNewConstMetric(prometheus.NewDesc(name, help, nil, nil), prometheus.GaugeValue, v)
	}
	return &thresholdCollector{gauges: []prometheus.Metric{
		gauge("pgdeck_replica_lag_warning_bytes", "Replica lag in bytes over which a replica is Lagging with severity warning.", float64(t.WarnBytes)),
		gauge("pgdeck_replica_lag_warning_seconds", "Replica lag in seconds over which a replica is Lagging with severity warning.", t.WarnLag.Seconds()),
		gauge("pgdeck_replica_lag_critical_bytes", "Replica lag in bytes over which a replica is Lagging with severity critical.", float64(t.CritBytes)),
		gauge("pgdeck_replica_lag_critical_seconds", "Replica lag in seconds over which a replica is Lagging with severity critical.", t.CritLag.Seconds()),
	}}
}

// Describe implements prometheus.Collector.
func (c *thresholdCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, g := range c.gauges {
		ch <- g.Desc()
	}
}

// Collect implements prometheus.Collector.
func (c *thresholdCollector) Collect(ch chan<- prometheus.Metric) {
	for _, g := range c.gauges {
		ch <- g
	}
}

// storeCollector reads environment health and job counts from the store
// at scrape time, so every pgdeck instance serves the same figures whichever
// one runs the monitor.
type storeCollector struct {
	st     *store.Store
	health *prometheus.Desc
	jobs   *prometheus.Desc
	// The pooler's status and, while its figures are fresh, its pool.
	pooler       *prometheus.Desc
	poolerGauges []poolerGauge
	// The replica's status and, while fresh, its lag and the WAL its
	// slot may still hold.
	replica, replicaLagBytes, replicaLagSeconds, replicaSafeWAL *prometheus.Desc
	// Each server's status.
	server *prometheus.Desc
}

// poolerGauge is one figure of an environment's pool, from its health
// details.
type poolerGauge struct {
	desc  *prometheus.Desc
	value func(store.PoolerDetails) float64
}

func newStoreCollector(st *store.Store) *storeCollector {
	gauge := func(name, help string, value func(store.PoolerDetails) float64) poolerGauge {
		return poolerGauge{desc: prometheus.NewDesc(name, help, []string{"env"}, nil), value: value}
	}
	return &storeCollector{
		st: st,
		health: prometheus.NewDesc("pgdeck_environment_health",
			"Database health of each environment: 1 for its current status, 0 for the others.",
			[]string{"env", "status"}, nil),
		jobs: prometheus.NewDesc("pgdeck_jobs",
			"Jobs in each state.",
			[]string{"state"}, nil),
		pooler: prometheus.NewDesc("pgdeck_pooler_health",
			"PgBouncer health of each environment that has one: 1 for its current status, 0 for the others.",
			[]string{"env", "status"}, nil),
		poolerGauges: []poolerGauge{
			gauge("pgdeck_pooler_clients_active", "Client connections of the environment's pool linked to a server or idle (SHOW POOLS cl_active).",
				func(d store.PoolerDetails) float64 { return float64(d.ClActive) }),
			gauge("pgdeck_pooler_clients_waiting", "Client connections of the environment's pool waiting for a server connection (SHOW POOLS cl_waiting).",
				func(d store.PoolerDetails) float64 { return float64(d.ClWaiting) }),
			gauge("pgdeck_pooler_servers_active", "Server connections of the environment's pool linked to a client (SHOW POOLS sv_active).",
				func(d store.PoolerDetails) float64 { return float64(d.SvActive) }),
			gauge("pgdeck_pooler_servers_idle", "Server connections of the environment's pool idle and ready for a client (SHOW POOLS sv_idle).",
				func(d store.PoolerDetails) float64 { return float64(d.SvIdle) }),
			gauge("pgdeck_pooler_max_wait_seconds", "How long the oldest waiting client of the environment's pool has waited.",
				func(d store.PoolerDetails) float64 { return d.MaxWaitSeconds }),
			gauge("pgdeck_pooler_avg_query_seconds", "Average query duration in the environment's database through PgBouncer (SHOW STATS avg_query_time).",
				func(d store.PoolerDetails) float64 { return float64(d.AvgQueryMicros) / 1e6 }),
		},
		replica: prometheus.NewDesc("pgdeck_replica_health",
			"Read replica health of each environment that has one: 1 for its current status, 0 for the others.",
			[]string{"env", "status"}, nil),
		replicaLagBytes: prometheus.NewDesc("pgdeck_replica_lag_bytes",
			"WAL the environment's primary wrote that its replica has not replayed yet.",
			[]string{"env"}, nil),
		replicaLagSeconds: prometheus.NewDesc("pgdeck_replica_lag_seconds",
			"How far behind the primary the environment's streaming replica replays; 0 when it has replayed everything, even on an idle primary.",
			[]string{"env"}, nil),
		server: prometheus.NewDesc("pgdeck_server_status",
			"Status of each server environments live on: 1 for its current status, 0 for the others.",
			[]string{"server", "status"}, nil),
		replicaSafeWAL: prometheus.NewDesc("pgdeck_replica_safe_wal_bytes",
			"WAL the primary may still write before the replica's slot is lost (pg_replication_slots.safe_wal_size); absent when unlimited.",
			[]string{"env"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.health
	ch <- c.jobs
	ch <- c.pooler
	for _, g := range c.poolerGauges {
		ch <- g.desc
	}
	ch <- c.replica
	ch <- c.replicaLagBytes
	ch <- c.replicaLagSeconds
	ch <- c.replicaSafeWAL
	ch <- c.server
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	c.collectHealth(ctx, ch)
	c.collectServers(ctx, ch)
	counts, err := c.st.CountJobsByState(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.jobs, err)
		return
	}
	for state, n := range counts {
		ch <- prometheus.MustNewConstMetric(c.jobs, prometheus.GaugeValue, float64(n), state)
	}
}

func (c *storeCollector) collectHealth(ctx context.Context, ch chan<- prometheus.Metric) {
	envs, err := c.st.ListEnvironments(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.health, err)
		return
	}
	all, err := c.st.HealthAllComponents(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.health, err)
		return
	}
	statuses := func(desc *prometheus.Desc, env, current string, all ...string) {
		for _, s := range all {
			v := 0.0
			if current == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(desc, prometheus.GaugeValue, v, env, s)
		}
	}
	for _, e := range envs {
		if h, ok := all[store.HealthKey{EnvironmentID: e.ID, Component: store.ComponentPrimary}]; ok {
			statuses(c.health, e.Name, h.Status, store.HealthRunning, store.HealthStopped, store.HealthError)
		}
		if h, ok := all[store.HealthKey{EnvironmentID: e.ID, Component: store.ComponentReplica}]; ok {
			statuses(c.replica, e.Name, h.Status, store.HealthOnline, store.HealthLagging, store.HealthOffline, store.HealthError)
			c.collectReplica(ch, e.Name, h)
		}
		h, ok := all[store.HealthKey{EnvironmentID: e.ID, Component: store.ComponentPooler}]
		if !ok {
			continue
		}
		statuses(c.pooler, e.Name, h.Status, store.HealthRunning, store.HealthStopped, store.HealthError, store.HealthDisabled)
		// Figures the last check could not read are not current: leave
		// them out rather than repeat them.
		var d store.PoolerDetails
		if h.Stale || !store.DecodeDetails(h.Details, &d) {
			continue
		}
		for _, g := range c.poolerGauges {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, g.value(d), e.Name)
		}
	}
}

// collectReplica sends a replica's lag and safe WAL size, when the last
// check read them (stale figures are not current, and a replica that does
// not stream has no time lag).
func (c *storeCollector) collectReplica(ch chan<- prometheus.Metric, env string, h store.Health) {
	if h.Stale {
		return
	}
	if h.LagBytes != nil {
		ch <- prometheus.MustNewConstMetric(c.replicaLagBytes, prometheus.GaugeValue, float64(*h.LagBytes), env)
	}
	if h.LagSeconds != nil {
		ch <- prometheus.MustNewConstMetric(c.replicaLagSeconds, prometheus.GaugeValue, *h.LagSeconds, env)
	}
	var d store.ReplicaDetails
	if store.DecodeDetails(h.Details, &d) && d.SafeWALBytes != nil {
		ch <- prometheus.MustNewConstMetric(c.replicaSafeWAL, prometheus.GaugeValue, float64(*d.SafeWALBytes), env)
	}
}

func (c *storeCollector) collectServers(ctx context.Context, ch chan<- prometheus.Metric) {
	svs, err := c.st.ListServers(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.server, err)
		return
	}
	for _, sv := range svs {
		for _, s := range []string{store.ServerOnline, store.ServerOffline, store.ServerUnknown} {
			v := 0.0
			if sv.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.server, prometheus.GaugeValue, v, sv.Name, s)
		}
	}
}
