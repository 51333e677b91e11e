package monitor

import (
	"context"
	"errors"
	"time"

	"pgdeck/store"
)

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
		m.conns.closeAll()
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
		// Another instance may lead meanwhile: hold nothing open.
		m.checks.Wait()
		m.conns.closeAll()
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
