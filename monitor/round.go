package monitor

import (
	"context"
	"fmt"
	"sync"
	"time"

	"pgdeck/store"
)

// Tick runs one round: it starts a check of every component of every
// deployed environment whose previous check has ended (one still in flight
// is skipped, not queued) and returns when they have all ended, or after
// Timeout plus a short grace for writing results, leaving slower checks
// (those that waited for a free slot) to finish in the background. Checks
// record their own failures; the error is about listing the environments.
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
	// An environment on a server that does not answer is not probed: each
	// of its components shows Error with the server's reason.
	offline := m.checkServers(ctx)

	var round sync.WaitGroup
	started, skipped := 0, 0
	for _, e := range deployed {
		for _, p := range m.probes {
			key := store.HealthKey{EnvironmentID: e.ID, Component: p.Component()}
			cs, ok := m.claim(key, seed)
			if !ok {
				skipped++
				m.skipped.Inc()
				m.log.Debug("previous check still running, skipped", "env", e.Name, "check", key.Component)
				continue
			}
			started++
			round.Add(1)
			m.checks.Add(1)
			go func() {
				defer m.checks.Done()
				defer round.Done()
				defer m.release(key)
				if pp, ok := p.(presence); ok && !pp.Present(e) {
					m.forget(ctx, e, key, cs)
					return
				}
				if reason, down := offline[e.Server]; down {
					m.record(ctx, e, key, cs, time.Now(), 0, offlineResult(e.Server, reason))
					return
				}
				select {
				case m.sem <- struct{}{}:
				case <-ctx.Done():
					return
				}
				defer func() { <-m.sem }()
				m.check(ctx, e, p, cs)
			}()
		}
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

// seed reads the stored health when some component has no state in memory
// yet (first round, or a new environment), and forgets environments that
// are gone.
func (m *Monitor) seed(ctx context.Context, deployed []store.Environment) (map[store.HealthKey]store.Health, error) {
	present := make(map[int64]bool, len(deployed))
	need := false
	m.mu.Lock()
	for _, e := range deployed {
		present[e.ID] = true
		for _, p := range m.probes {
			if m.states[store.HealthKey{EnvironmentID: e.ID, Component: p.Component()}] == nil {
				need = true
			}
		}
	}
	for key := range m.states {
		if !present[key.EnvironmentID] && !m.inFlight[key] {
			delete(m.states, key)
		}
	}
	m.mu.Unlock()
	// Connections of environments gone or no longer deployed, and those
	// unused for a few rounds, are closed.
	m.conns.retain(func(env int64) bool { return present[env] }, time.Now().Add(-3*m.cfg.Interval-m.cfg.Timeout))
	if !need {
		return nil, nil
	}
	seed, err := m.st.HealthAllComponents(ctx)
	if err != nil {
		return nil, fmt.Errorf("monitor: %w", err)
	}
	return seed, nil
}

// claim marks a component's check in flight and returns its state, or
// false when a check of it is already in flight.
func (m *Monitor) claim(key store.HealthKey, seed map[store.HealthKey]store.Health) (*state, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.inFlight[key] {
		return nil, false
	}
	m.inFlight[key] = true
	cs := m.states[key]
	if cs == nil {
		cs = &state{}
		if h, ok := seed[key]; ok {
			cs.stored = &h
		}
		m.states[key] = cs
	}
	return cs, true
}

func (m *Monitor) release(key store.HealthKey) {
	m.mu.Lock()
	delete(m.inFlight, key)
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
