// Package monitor checks the PostgreSQL of every deployed environment: one
// round at start, then one per tick, each check under its own timeout and
// at most Concurrency at once. It stores the latest result (changing the
// status only once several checks agree) and a short history.
package monitor

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
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

// desiredStopped is the desired state of an environment the operator stopped.
const desiredStopped = "stopped"

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
	return c
}

// Monitor checks the health of every deployed environment and stores it.
// Its methods are safe for concurrent use.
type Monitor struct {
	cfg Config
	st  *store.Store
	rt  runtime.Runtime
	box *secret.Box
	log *slog.Logger

	// connBase holds the connection settings shared by every probe.
	connBase *pgx.ConnConfig
	connErr  error

	// sem caps the checks running at once, across rounds.
	sem chan struct{}
	// checks counts the check goroutines, so that Run can wait for them.
	checks sync.WaitGroup

	checkDuration prometheus.Histogram
	skipped       prometheus.Counter

	mu        sync.Mutex
	inFlight  map[int64]bool
	envs      map[int64]*envState
	lastPrune time.Time
	// cancel and done belong to the running Run, nil when none runs.
	cancel context.CancelFunc
	done   chan struct{}
}

// envState is what the monitor remembers of one environment between checks.
type envState struct {
	// stored is the health row as last written; nil before the first check.
	stored *store.Health
	// candidate is a status observed but not yet confirmed, and count how
	// many consecutive checks observed it.
	candidate string
	count     int
}

// New returns a monitor over the environments in st, asking rt about the
// ones that do not answer and opening their passwords with box.
func New(cfg Config, st *store.Store, rt runtime.Runtime, box *secret.Box, log *slog.Logger) *Monitor {
	cfg = cfg.withDefaults()
	if log == nil {
		log = slog.Default()
	}
	m := &Monitor{
		cfg:      cfg,
		st:       st,
		rt:       rt,
		box:      box,
		log:      log.With("component", "monitor"),
		sem:      make(chan struct{}, cfg.Concurrency),
		inFlight: map[int64]bool{},
		envs:     map[int64]*envState{},
		checkDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "pgdeck_health_check_duration_seconds",
			Help:    "How long one health check of an environment's PostgreSQL took.",
			Buckets: prometheus.DefBuckets,
		}),
		skipped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "pgdeck_health_checks_skipped_total",
			Help: "Health checks skipped because the previous check of the environment was still running.",
		}),
	}
	// Parsed once: every probe copies it and fills in the environment's
	// address and credentials.
	m.connBase, m.connErr = pgx.ParseConfig("host=127.0.0.1 sslmode=disable application_name=pgdeck-monitor")
	if m.connErr == nil {
		// One query per connection: the simple protocol needs one round
		// trip and no prepared statement.
		m.connBase.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		m.connBase.StatementCacheCapacity = 0
		m.connBase.DescriptionCacheCapacity = 0
		// Ignore PGTARGETSESSIONATTRS and the like from the environment.
		m.connBase.ValidateConnect = nil
	}
	return m
}

// Run checks every deployed environment at once, then once per Interval,
// until ctx is cancelled or Stop is called; it then waits for the checks in
// flight and returns nil. Only one Run may be active at a time, and only one
// pgdeck instance sharing the store monitors: Run first takes the monitor's
// advisory lock (store.LockMonitor), trying again every Interval while
// another instance holds it, and keeps it until it returns.
func (m *Monitor) Run(ctx context.Context) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	m.mu.Lock()
	if m.cancel != nil {
		m.mu.Unlock()
		return errors.New("monitor: already running")
	}
	m.cancel, m.done = cancel, done
	m.mu.Unlock()
	var lock *store.SessionLock
	defer func() {
		cancel()
		m.checks.Wait()
		// Held until the last check has written its result, so that the
		// next leader's checks never overlap ours.
		lock.Release()
		m.mu.Lock()
		m.cancel, m.done = nil, nil
		m.mu.Unlock()
		close(done)
	}()

	for {
		if lock = m.lead(ctx); lock == nil {
			return nil
		}
		if !m.loop(ctx, lock) {
			m.log.Info("monitor stopped")
			return nil
		}
		m.log.Warn("lost the connection holding the monitor lock; taking it again")
		lock.Release()
	}
}

// lead waits until this instance holds the monitor lock, trying every
// Interval; nil when ctx ends first.
func (m *Monitor) lead(ctx context.Context) *store.SessionLock {
	waiting := false
	t := time.NewTicker(m.cfg.Interval)
	defer t.Stop()
	for {
		lock, err := m.st.TryLock(ctx, store.LockMonitor)
		if err == nil {
			if waiting {
				m.log.Info("taking over the monitor")
			}
			return lock
		}
		if ctx.Err() != nil {
			return nil
		}
		switch {
		case !errors.Is(err, store.ErrLockHeld):
			m.log.Warn("taking the monitor lock failed", "error", err)
		case !waiting:
			m.log.Info("another pgdeck instance runs the monitor; waiting to take over")
			waiting = true
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// loop runs a round at once, then one per Interval, while this instance
// holds the monitor lock; it returns true when the lock's connection failed
// (the lock may be lost) and false when ctx ended.
func (m *Monitor) loop(ctx context.Context, lock *store.SessionLock) bool {
	m.log.Info("monitor started", "interval", m.cfg.Interval.String(), "timeout", m.cfg.Timeout.String(),
		"concurrency", m.cfg.Concurrency, "confirm", m.cfg.Confirm)
	ticker := time.NewTicker(m.cfg.Interval)
	defer ticker.Stop()
	for {
		if err := m.Tick(ctx); err != nil && ctx.Err() == nil {
			m.log.Warn("health round failed", "error", err)
		}
		select {
		case <-ctx.Done():
			return false
		case <-ticker.C:
		}
		// The lock lives as long as its session: a broken connection means
		// another instance may be monitoring already.
		actx, cancel := context.WithTimeout(ctx, storeTimeout)
		err := lock.Alive(actx)
		cancel()
		if err != nil {
			if ctx.Err() != nil {
				return false
			}
			m.log.Warn("monitor lock check failed", "error", err)
			return true
		}
	}
}

// Stop ends a running Run and waits until it has returned. Calling it when
// no Run is active, or twice, does nothing.
func (m *Monitor) Stop() {
	m.mu.Lock()
	cancel, done := m.cancel, m.done
	m.mu.Unlock()
	if cancel == nil {
		return
	}
	cancel()
	<-done
}

// Tick runs one round: it starts a check of every deployed environment
// whose previous check has ended (one still in flight is skipped, not
// queued) and returns when they have all ended, or after Timeout plus a
// short grace for writing results, leaving slower checks (those that waited
// for a free slot) to finish in the background. Checks record their own
// failures; the error is about listing the environments.
func (m *Monitor) Tick(ctx context.Context) error {
	// The round's own store queries are bounded too: a hung control-plane
	// database must not hold the round forever.
	sctx, cancel := context.WithTimeout(ctx, storeTimeout)
	defer cancel()
	envs, err := m.st.ListEnvironments(sctx)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	deployed := envs[:0:0]
	for _, e := range envs {
		if e.Deployed() {
			deployed = append(deployed, e)
		}
	}
	seed, err := m.seed(sctx, deployed)
	if err != nil {
		return err
	}

	var round sync.WaitGroup
	started, skipped := 0, 0
	for _, e := range deployed {
		es, ok := m.claim(e.ID, seed)
		if !ok {
			skipped++
			m.skipped.Inc()
			m.log.Debug("previous check still running, skipped", "env", e.Name)
			continue
		}
		started++
		round.Add(1)
		m.checks.Add(1)
		go func() {
			defer m.checks.Done()
			defer round.Done()
			defer m.release(e.ID)
			select {
			case m.sem <- struct{}{}:
			case <-ctx.Done():
				return
			}
			defer func() { <-m.sem }()
			m.check(ctx, e, es)
		}()
	}

	m.prune(sctx)

	ended := make(chan struct{})
	go func() {
		round.Wait()
		close(ended)
	}()
	wait := time.NewTimer(m.cfg.Timeout + m.grace())
	defer wait.Stop()
	select {
	case <-ended:
	case <-wait.C:
		m.log.Warn("checks still running at the end of the round; the next round skips them",
			"started", started, "timeout", m.cfg.Timeout.String())
	case <-ctx.Done():
	}
	if skipped > 0 {
		m.log.Info("skipped checks still running from an earlier round", "skipped", skipped)
	}
	return nil
}

// grace is how long a round waits past Timeout for results to be written:
// half the timeout, at most a second.
func (m *Monitor) grace() time.Duration {
	return min(m.cfg.Timeout/2, time.Second)
}

// seed reads the stored health when some environment has no state in
// memory yet (first round, or a new environment), and forgets environments
// that are gone.
func (m *Monitor) seed(ctx context.Context, deployed []store.Environment) (map[int64]store.Health, error) {
	present := make(map[int64]bool, len(deployed))
	need := false
	m.mu.Lock()
	for _, e := range deployed {
		present[e.ID] = true
		if m.envs[e.ID] == nil {
			need = true
		}
	}
	for id := range m.envs {
		if !present[id] && !m.inFlight[id] {
			delete(m.envs, id)
		}
	}
	m.mu.Unlock()
	if !need {
		return nil, nil
	}
	seed, err := m.st.HealthAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return seed, nil
}

// claim marks an environment's check in flight and returns its state, or
// false when a check of it is already in flight.
func (m *Monitor) claim(id int64, seed map[int64]store.Health) (*envState, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inFlight[id] {
		return nil, false
	}
	m.inFlight[id] = true
	es := m.envs[id]
	if es == nil {
		es = &envState{}
		if h, ok := seed[id]; ok {
			es.stored = &h
		}
		m.envs[id] = es
	}
	return es, true
}

func (m *Monitor) release(id int64) {
	m.mu.Lock()
	delete(m.inFlight, id)
	m.mu.Unlock()
}

// prune deletes history older than HistoryRetention, at most once per
// pruneEvery.
func (m *Monitor) prune(ctx context.Context) {
	m.mu.Lock()
	due := time.Since(m.lastPrune) >= pruneEvery
	if due {
		m.lastPrune = time.Now()
	}
	m.mu.Unlock()
	if !due {
		return
	}
	n, err := m.st.PruneHealthHistory(ctx, time.Now().Add(-m.cfg.HistoryRetention))
	if err != nil {
		if ctx.Err() == nil {
			m.log.Warn("pruning health history failed", "error", err)
		}
		return
	}
	if n > 0 {
		m.log.Debug("pruned health history", "deleted", n)
	}
}

// figures are what a successful probe reads from the server.
type figures struct {
	version        string
	dbSize         int64
	connections    int
	maxConnections int
	startedAt      time.Time
}

// observation is the outcome of one check, before confirmation.
type observation struct {
	status string
	reason string
	// figures is nil when the server could not be read.
	figures *figures
}

// check observes one environment under its own timeout and records the
// result. Nothing is recorded when ctx (the monitor) is cancelled.
func (m *Monitor) check(ctx context.Context, e store.Environment, es *envState) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	obs := m.observe(cctx, e)
	cancel()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return
	}
	m.checkDuration.Observe(elapsed.Seconds())
	m.record(ctx, e, es, start, elapsed, obs)
}

// observe probes the server; when that fails it asks the runtime why.
func (m *Monitor) observe(ctx context.Context, e store.Environment) observation {
	f, err := m.probe(ctx, e)
	if err == nil {
		return observation{status: store.HealthRunning, figures: &f}
	}
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return m.timedOut()
	}
	st, serr := m.rt.Status(ctx, runtime.InstanceID{Env: e.Name, Role: runtime.RolePrimary})
	if errors.Is(ctx.Err(), context.DeadlineExceeded) {
		return m.timedOut()
	}
	if serr != nil {
		return observation{status: store.HealthError, reason: fmt.Sprintf("%v; the runtime cannot tell why: %v", err, serr)}
	}
	stopped := e.DesiredState == desiredStopped
	switch st.State {
	case runtime.StateStopped:
		if stopped {
			return observation{status: store.HealthStopped}
		}
		return observation{status: store.HealthError, reason: "should be running but is not: it is stopped"}
	case runtime.StateMissing:
		if stopped {
			return observation{status: store.HealthStopped}
		}
		return observation{status: store.HealthError, reason: "should be running but is not: its instance does not exist"}
	case runtime.StateBroken:
		if stopped {
			return observation{status: store.HealthError, reason: st.Reason}
		}
		return observation{status: store.HealthError, reason: "should be running but is not: " + st.Reason}
	default:
		// The runtime sees it running, yet it does not answer us: wrong
		// password, pg_hba, database missing, too many connections, …
		return observation{status: store.HealthError, reason: fmt.Sprintf("runs but does not answer: %v", err)}
	}
}

func (m *Monitor) timedOut() observation {
	return observation{status: store.HealthError, reason: fmt.Sprintf("health check timed out after %s", m.cfg.Timeout)}
}

// probe connects over TCP as the environment's own role and reads the
// figures in one query.
func (m *Monitor) probe(ctx context.Context, e store.Environment) (figures, error) {
	var f figures
	if m.connErr != nil {
		return f, fmt.Errorf("connection settings: %w", m.connErr)
	}
	if e.Port == nil {
		return f, errors.New("no port recorded")
	}
	password, err := m.box.Open(e.DBPassword)
	if err != nil {
		return f, fmt.Errorf("cannot open the stored password: %w", err)
	}
	cfg := m.connBase.Copy()
	cfg.Host = "127.0.0.1"
	cfg.Port = uint16(*e.Port)
	cfg.User = e.DBUser
	cfg.Password = password
	cfg.Database = e.DBName
	cfg.Fallbacks = nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return f, fmt.Errorf("cannot connect: %w", err)
	}
	defer conn.Close(ctx)
	// Client backends only: they are what max_connections limits.
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'),
			pg_database_size(current_database()),
			(SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend')::int,
			current_setting('max_connections')::int,
			pg_postmaster_start_time()`).
		Scan(&f.version, &f.dbSize, &f.connections, &f.maxConnections, &f.startedAt)
	if err != nil {
		return f, fmt.Errorf("query: %w", err)
	}
	return f, nil
}

// record stores one check: the status changes only after Confirm
// consecutive checks agree (the first check ever is stored at once), while
// checked_at and the figures follow every check; a check that could not
// read the figures keeps the last ones, marked stale.
func (m *Monitor) record(ctx context.Context, e store.Environment, es *envState, at time.Time, elapsed time.Duration, obs observation) {
	h := store.Health{
		EnvironmentID: e.ID,
		CheckedAt:     at,
		DurationMS:    int(elapsed.Milliseconds()),
	}
	m.mu.Lock()
	prev := es.stored
	var from string
	switch {
	case prev == nil:
		h.Status, h.Reason = obs.status, obs.reason
	case obs.status == prev.Status:
		h.Status, h.Reason = obs.status, obs.reason
		es.candidate, es.count = "", 0
	default:
		if obs.status == es.candidate {
			es.count++
		} else {
			es.candidate, es.count = obs.status, 1
		}
		if es.count >= m.cfg.Confirm {
			from = prev.Status
			h.Status, h.Reason = obs.status, obs.reason
			es.candidate, es.count = "", 0
		} else {
			h.Status, h.Reason = prev.Status, prev.Reason
		}
	}
	m.mu.Unlock()

	if f := obs.figures; f != nil {
		started := f.startedAt
		h.FiguresAt, h.PGVersion, h.DBSizeBytes = &at, f.version, f.dbSize
		h.Connections, h.MaxConnections, h.ServerStartedAt = f.connections, f.maxConnections, &started
	} else if prev != nil {
		h.FiguresAt, h.PGVersion, h.DBSizeBytes = prev.FiguresAt, prev.PGVersion, prev.DBSizeBytes
		h.Connections, h.MaxConnections, h.ServerStartedAt = prev.Connections, prev.MaxConnections, prev.ServerStartedAt
		h.Stale = prev.FiguresAt != nil
	}

	// Once decided, the result is written even if the monitor is being
	// stopped: a write cut off by cancellation may still commit on the
	// server after Run has returned.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	err := m.st.UpsertHealth(wctx, h)
	if err == nil {
		err = m.st.AddHealthHistory(wctx, e.ID, at, obs.status, obs.reason, h.DurationMS)
	}
	if errors.Is(err, store.ErrNotFound) {
		// Deleted while being checked; the next round forgets it.
		return
	}
	if err != nil {
		m.log.Warn("storing health failed", "env", e.Name, "error", err)
		return
	}
	m.mu.Lock()
	es.stored = &h
	m.mu.Unlock()

	switch {
	case prev == nil:
		m.log.Info("database health", "env", e.Name, "status", h.Status, "reason", h.Reason)
	case from != "":
		m.log.Info("database health changed", "env", e.Name, "from", from, "status", h.Status, "reason", h.Reason)
	case obs.status != h.Status:
		m.log.Debug("database health differs, waiting for confirmation", "env", e.Name,
			"status", h.Status, "observed", obs.status, "reason", obs.reason)
	default:
		m.log.Debug("database health", "env", e.Name, "status", h.Status, "duration_ms", h.DurationMS)
	}
}
