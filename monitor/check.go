package monitor

import (
	"context"
	"errors"
	"fmt"
	"time"

	"pgdeck/store"
)

// check runs one probe on one environment under its own timeout and records
// the result. Nothing is recorded when ctx (the monitor) is cancelled.
func (m *Monitor) check(ctx context.Context, e store.Environment, p Probe, cs *state) {
	start := time.Now()
	cctx, cancel := context.WithTimeout(ctx, m.cfg.Timeout)
	obs := p.Check(cctx, e)
	timedOut := errors.Is(cctx.Err(), context.DeadlineExceeded)
	cancel()
	elapsed := time.Since(start)
	if ctx.Err() != nil {
		return
	}
	if timedOut && obs.Figures == nil {
		// Whatever the probe saw last, the check did not end in time.
		obs = Result{Status: store.HealthError, Reason: fmt.Sprintf("health check timed out after %s", m.cfg.Timeout)}
	}
	key := store.HealthKey{EnvironmentID: e.ID, Component: p.Component()}
	if obs.Absent {
		// Nothing was checked: no duration to count.
		m.forget(ctx, e, key, cs)
		return
	}
	m.checkDuration.Observe(elapsed.Seconds())
	m.record(ctx, e, key, cs, start, elapsed, obs)
}

// record stores one check as confirm decides, and the observation in the
// history.
func (m *Monitor) record(ctx context.Context, e store.Environment, key store.HealthKey, cs *state, at time.Time, elapsed time.Duration, obs Result) {
	m.mu.Lock()
	prev := cs.stored
	h, next := confirm(prev, cs.pending, obs, m.cfg.Confirm, at, elapsed)
	cs.pending = next
	m.mu.Unlock()
	h.EnvironmentID, h.Component = key.EnvironmentID, key.Component

	entry := store.HealthHistoryEntry{Component: key.Component, CheckedAt: at, Status: obs.Status, Reason: obs.Reason,
		DurationMS: h.DurationMS, Severity: obs.Severity}
	if obs.Figures != nil {
		entry.LagBytes, entry.LagSeconds = obs.Figures.LagBytes, obs.Figures.LagSeconds
	}
	// Once decided, the result is written even if the monitor is being
	// stopped: a write cut off by cancellation may still commit on the
	// server after Run has returned.
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	err := m.st.RecordHealth(wctx, h, entry)
	if errors.Is(err, store.ErrNotFound) {
		// Deleted while being checked; the next round forgets it.
		return
	}
	if err != nil {
		m.log.Warn("storing health failed", "env", e.Name, "check", key.Component, "error", err)
		return
	}
	m.mu.Lock()
	cs.stored = &h
	m.mu.Unlock()

	log := m.log.With("env", e.Name, "check", key.Component)
	switch {
	case prev == nil:
		log.Info("health", "status", h.Status, "reason", h.Reason)
	case prev.Status != h.Status:
		log.Info("health changed", "from", prev.Status, "status", h.Status, "reason", h.Reason)
	case obs.Status != h.Status:
		log.Debug("health differs, waiting for confirmation", "status", h.Status, "observed", obs.Status, "reason", obs.Reason)
	default:
		log.Debug("health", "status", h.Status, "duration_ms", h.DurationMS)
	}
}

// forget drops what is known of a component the environment no longer has.
func (m *Monitor) forget(ctx context.Context, e store.Environment, key store.HealthKey, cs *state) {
	m.mu.Lock()
	had := cs.stored != nil
	cs.stored, cs.pending = nil, pending{}
	m.mu.Unlock()
	if !had {
		return
	}
	wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), storeTimeout)
	defer cancel()
	if err := m.st.DeleteComponentHealth(wctx, key.EnvironmentID, key.Component); err != nil {
		m.log.Warn("forgetting health failed", "env", e.Name, "check", key.Component, "error", err)
		return
	}
	m.log.Info("health forgotten: the component is gone", "env", e.Name, "check", key.Component)
}
