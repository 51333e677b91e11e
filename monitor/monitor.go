// Package monitor checks every deployed environment: one round at start,
// then one per tick. A round runs each probe (one per component: the
// primary, the pooler and the replica) on each environment, every
// check under its own timeout and at most Concurrency at once. It stores
// each component's latest result (changing the status only once several
// checks agree, see confirm) and a short history.
//
// The files follow the concerns: loop.go (start, stop, leadership),
// round.go (one tick), check.go (one check and how it is recorded),
// confirm.go (the confirmation rule, a pure function), probe.go (the Probe
// interface) and one probe_*.go per component.
package monitor

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// Defaults for the zero values of Config.
const (
	DefaultInterval         = 5 * time.Second
	DefaultTimeout          = 3 * time.Second
	DefaultConfirm          = 2
	DefaultConcurrency      = 16
	DefaultHistoryRetention = 24 * time.Hour
)

// pruneEvery is how often old history is deleted, at most.
const pruneEvery = time.Minute

// storeTimeout bounds the writes of one check's result.
const storeTimeout = 5 * time.Second

// Config tunes the monitor; zero values take the defaults above.
type Config struct {
	// Interval is the time between two rounds of checks.
	Interval time.Duration
	// Timeout bounds one check (connect, query and, on failure, asking
	// the runtime).
	Timeout time.Duration
	// Confirm is how many consecutive checks must agree before the stored
	// status changes.
	Confirm int
	// Concurrency caps the checks that run at once.
	Concurrency int
	// HistoryRetention is how long checks stay in the history.
	HistoryRetention time.Duration
	// Replica grades a streaming replica's lag (zero figures take the
	// DefaultReplica… values).
	Replica ReplicaThresholds
}

func (c Config) withDefaults() Config {
	if c.Interval <= 0 {
		c.Interval = DefaultInterval
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Confirm <= 0 {
		c.Confirm = DefaultConfirm
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
	if c.HistoryRetention <= 0 {
		c.HistoryRetention = DefaultHistoryRetention
	}
	c.Replica = c.Replica.withDefaults()
	return c
}

// Monitor checks the health of every deployed environment and stores it.
// Its methods are safe for concurrent use.
type Monitor struct {
	cfg Config
	st  *store.Store
	log *slog.Logger
	// probes are run on every deployed environment, each round.
	probes []Probe
	// servers checks each server's engine first; nil when the runtime
	// has no servers.
	servers serverChecker
	// conns keeps the probes' connections between rounds.
	conns *conns

	// sem caps the checks running at once, across rounds.
	sem chan struct{}
	// checks counts the check goroutines, so that Run can wait for them.
	checks sync.WaitGroup

	checkDuration prometheus.Histogram
	skipped       prometheus.Counter

	mu sync.Mutex
	// inFlight and states are keyed by (environment, component).
	inFlight  map[store.HealthKey]bool
	states    map[store.HealthKey]*state
	lastPrune time.Time
	// cancel and done belong to the running Run, nil when none runs.
	cancel context.CancelFunc
	done   chan struct{}
}

// New returns a monitor over the environments in st, probing their
// primaries, poolers and replicas, asking rt where they are (and about
// instances that do not answer) and opening their passwords with box.
func New(cfg Config, st *store.Store, rt runtime.Runtime, box *secret.Box, log *slog.Logger) *Monitor {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	servers, _ := rt.(serverChecker)
	cs := newConns()
	return &Monitor{
		cfg:      cfg,
		servers:  servers,
		conns:    cs,
		st:       st,
		log:      log.With("component", "monitor"),
		probes:   []Probe{newPrimaryProbe(rt, box, cs), newPoolerProbe(rt, box), newReplicaProbe(rt, box, cfg.Replica, cs)},
		sem:      make(chan struct{}, cfg.Concurrency),
		inFlight: map[store.HealthKey]bool{},
		states:   map[store.HealthKey]*state{},
		checkDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgdeck_health_check_duration_seconds",
			Help:    "How long one health check of an environment's component (PostgreSQL, PgBouncer, replica) took.",
			Buckets: prometheus.DefBuckets,
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgdeck_health_checks_skipped_total",
			Help: "Health checks skipped because the previous check of the environment was still running.",
		}),
	}
}
