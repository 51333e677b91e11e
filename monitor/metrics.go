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
// serve at /metrics: environment health and job counts read from st at
// scrape time, the check duration histogram of m (nil when this process
// runs no monitor), and the Go and process collectors.
func NewRegistry(m *Monitor, st *store.Store) *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		newStoreCollector(st),
	)
	if m != nil {
		reg.MustRegister(m.checkDuration, m.skipped)
	}
	return reg
}

// storeCollector reads environment health and job counts from the store
// at scrape time, so every pgdeck instance serves the same figures whichever
// one runs the monitor.
type storeCollector struct {
	st     *store.Store
	health *prometheus.Desc
	jobs   *prometheus.Desc
}

func newStoreCollector(st *store.Store) *storeCollector {
	return &storeCollector{
		st: st,
		health: prometheus.NewDesc("pgdeck_environment_health",
			"Database health of each environment: 1 for its current status, 0 for the others.",
			[]string{"env", "status"}, nil),
		jobs: prometheus.NewDesc("pgdeck_jobs",
			"Jobs in each state.",
			[]string{"state"}, nil),
	}
}

// Describe implements prometheus.Collector.
func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.health
	ch <- c.jobs
}

// Collect implements prometheus.Collector.
func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), scrapeTimeout)
	defer cancel()
	c.collectHealth(ctx, ch)
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
	all, err := c.st.HealthAll(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.health, err)
		return
	}
	for _, e := range envs {
		h, ok := all[e.ID]
		if !ok {
			continue
		}
		for _, s := range [...]string{store.HealthRunning, store.HealthStopped, store.HealthError} {
			v := 0.0
			if h.Status == s {
				v = 1
			}
			ch <- prometheus.MustNewConstMetric(c.health, prometheus.GaugeValue, v, e.Name, s)
		}
	}
}
