package monitor

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pgdeck/store"
)

func TestRunningWithFigures(t *testing.T) {
	f := newFixture(t)
	env := f.addRunningEnv("shop")
	// Not deployed yet: not checked.
	draft, err := f.st.CreateEnvironment(context.Background(), store.Environment{Name: "draft", OdooVersion: "18.0", Stage: "staging", Plan: "starter"})
	if err != nil {
		t.Fatal(err)
	}
	m := f.monitor(Config{Timeout: 5 * time.Second})

	before := time.Now()
	tick(t, m)

	h := f.health(env)
	if h.Status != store.HealthRunning || h.Reason != "" {
		t.Fatalf("health = %s %q, want running", h.Status, h.Reason)
	}
	if !strings.HasPrefix(h.PGVersion, pgMajor(t, f)) {
		t.Errorf("pg_version = %q, want the server's version %s…", h.PGVersion, pgMajor(t, f))
	}
	if h.DBSizeBytes <= 0 {
		t.Errorf("db_size_bytes = %d, want > 0", h.DBSizeBytes)
	}
	if h.MaxConnections != testMaxConnections {
		t.Errorf("max_connections = %d, want %d", h.MaxConnections, testMaxConnections)
	}
	if h.Connections < 1 || h.Connections > testMaxConnections {
		t.Errorf("connections = %d, want at least the monitor's own", h.Connections)
	}
	if h.ServerStartedAt == nil || h.ServerStartedAt.After(time.Now()) {
		t.Errorf("server_started_at = %v", h.ServerStartedAt)
	}
	if h.Stale || h.FiguresAt == nil || !h.FiguresAt.Equal(h.CheckedAt) || h.CheckedAt.Before(before.Add(-time.Second)) {
		t.Errorf("stale %v, figures_at %v, checked_at %v", h.Stale, h.FiguresAt, h.CheckedAt)
	}
	if hist := f.history(env); len(hist) != 1 || hist[0].Status != store.HealthRunning {
		t.Errorf("history = %+v, want one running check", hist)
	}
	if _, err := f.st.HealthOf(context.Background(), draft.ID); err == nil {
		t.Error("an environment that was never deployed got a health row")
	}

	t.Run("figures follow every check", func(t *testing.T) {
		tick(t, m)
		h2 := f.health(env)
		if !h2.CheckedAt.After(h.CheckedAt) || !h2.FiguresAt.Equal(h2.CheckedAt) || h2.Stale {
			t.Errorf("second check: checked_at %v (first %v), figures_at %v, stale %v", h2.CheckedAt, h.CheckedAt, h2.FiguresAt, h2.Stale)
		}
		if len(f.history(env)) != 2 {
			t.Errorf("history has %d checks, want 2", len(f.history(env)))
		}
	})
}

// pgMajor returns the major version of the environment's cluster (its
// PG_VERSION file).
func pgMajor(t *testing.T, f *fixture) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(f.rt.InstanceDir(primary("shop")), "pgdata", "PG_VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(b)) + "."
}

func TestKilledPostmasterIsError(t *testing.T) {
	f := newFixture(t)
	env := f.addRunningEnv("shop")
	m := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2})
	tick(t, m)
	if h := f.health(env); h.Status != store.HealthRunning {
		t.Fatalf("before the kill: %s %q", h.Status, h.Reason)
	}
	running := f.health(env)

	pid := f.killPostmaster("shop")
	var h store.Health
	n := 0
	for n < 3 {
		n++
		tick(t, m)
		h = f.health(env)
		if h.Status == store.HealthError {
			break
		}
		if !h.Stale || !h.FiguresAt.Equal(*running.FiguresAt) || h.DBSizeBytes != running.DBSizeBytes {
			t.Errorf("unconfirmed failure: figures should be kept and marked stale, got %+v", h)
		}
	}
	if h.Status != store.HealthError {
		t.Fatalf("after killing postmaster %d and %d ticks: %s %q, want error", pid, n, h.Status, h.Reason)
	}
	if n < 2 {
		t.Errorf("status changed after %d check, want Confirm=2 checks", n)
	}
	if !strings.Contains(h.Reason, "postmaster") || !strings.Contains(h.Reason, "should be running") {
		t.Errorf("reason = %q, want it to say the postmaster is not running", h.Reason)
	}
	if !h.Stale || h.DBSizeBytes != running.DBSizeBytes || h.PGVersion != running.PGVersion {
		t.Errorf("figures after the kill: stale %v, size %d (was %d), version %q", h.Stale, h.DBSizeBytes, running.DBSizeBytes, h.PGVersion)
	}
	hist := f.history(env)
	if last := hist[len(hist)-1]; last.Status != store.HealthError || last.Reason != h.Reason {
		t.Errorf("last history entry = %+v", last)
	}
	t.Logf("after %d ticks: %s", n, h.Reason)
}

func TestStopped(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	shop := f.addRunningEnv("shop")
	// Stopped by the operator before the monitor ever saw it: stored at once.
	idle := f.addRunningEnv("idle")
	if err := f.st.SetDesiredState(ctx, idle.ID, "stopped"); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Stop(ctx, primary("idle")); err != nil {
		t.Fatal(err)
	}
	// Stopped cleanly although it should run: an error.
	down := f.addRunningEnv("down")
	if err := f.rt.Stop(ctx, primary("down")); err != nil {
		t.Fatal(err)
	}

	m := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2})
	tick(t, m)
	if h := f.health(idle); h.Status != store.HealthStopped || h.Reason != "" {
		t.Errorf("idle: %s %q, want stopped", h.Status, h.Reason)
	}
	if h := f.health(down); h.Status != store.HealthError || !strings.Contains(h.Reason, "should be running but is not") {
		t.Errorf("down: %s %q, want error: should be running but is not", h.Status, h.Reason)
	}
	if h := f.health(shop); h.Status != store.HealthRunning {
		t.Fatalf("shop: %s %q, want running", h.Status, h.Reason)
	}

	// The operator stops shop: stopped once two checks agree.
	if err := f.st.SetDesiredState(ctx, shop.ID, "stopped"); err != nil {
		t.Fatal(err)
	}
	if err := f.rt.Stop(ctx, primary("shop")); err != nil {
		t.Fatal(err)
	}
	tick(t, m)
	if h := f.health(shop); h.Status != store.HealthRunning {
		t.Errorf("after one check: %s, want running until confirmed", h.Status)
	}
	tick(t, m)
	h := f.health(shop)
	if h.Status != store.HealthStopped || h.Reason != "" {
		t.Errorf("after two checks: %s %q, want stopped", h.Status, h.Reason)
	}
	if !h.Stale || h.FiguresAt == nil || h.MaxConnections != testMaxConnections {
		t.Errorf("stopped keeps the last figures, stale: %+v", h)
	}
}

func TestNoFlapping(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	env := f.addRunningEnv("shop")
	id := primary("shop")
	m := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2})

	steps := []struct {
		up       bool
		observed string
		stored   string
	}{
		{true, store.HealthRunning, store.HealthRunning},
		{false, store.HealthError, store.HealthRunning}, // one failure: not confirmed
		{true, store.HealthRunning, store.HealthRunning},
		{false, store.HealthError, store.HealthRunning}, // the count started again
		{true, store.HealthRunning, store.HealthRunning},
		{false, store.HealthError, store.HealthRunning},
		{false, store.HealthError, store.HealthError}, // two in a row: confirmed
		{true, store.HealthRunning, store.HealthError},
		{true, store.HealthRunning, store.HealthRunning},
	}
	for i, s := range steps {
		var err error
		if s.up {
			err = f.rt.Start(ctx, id)
		} else {
			err = f.rt.Stop(ctx, id)
		}
		if err != nil {
			t.Fatal(err)
		}
		tick(t, m)
		h := f.health(env)
		hist := f.history(env)
		last := hist[len(hist)-1]
		if last.Status != s.observed || h.Status != s.stored {
			t.Errorf("check %d (server up %v): observed %s, stored %s (%q); want observed %s, stored %s",
				i+1, s.up, last.Status, h.Status, h.Reason, s.observed, s.stored)
		}
		if h.Status == store.HealthRunning && h.Reason != "" {
			t.Errorf("check %d: running with reason %q", i+1, h.Reason)
		}
	}
	if n := len(f.history(env)); n != len(steps) {
		t.Errorf("history has %d checks, want %d", n, len(steps))
	}
}

func TestTimeoutKeepsFiguresAndDoesNotHoldOthers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	good := f.addRunningEnv("good")
	hang := newHangServer(t)
	slow := f.addEnv("slow", hang.port)

	// What an earlier, successful check of slow stored.
	earlier := time.Now().Add(-time.Minute).Truncate(time.Microsecond)
	started := earlier.Add(-time.Hour)
	seeded := store.Health{
		EnvironmentID: slow.ID, Status: store.HealthRunning, CheckedAt: earlier, DurationMS: 9,
		FiguresAt: &earlier, PGVersion: "15.9", DBSizeBytes: 123_456_789, Connections: 7, MaxConnections: 100,
		ServerStartedAt: &started,
	}
	if err := f.st.UpsertHealth(ctx, seeded); err != nil {
		t.Fatal(err)
	}

	const timeout = 2 * time.Second
	m := f.monitor(Config{Timeout: timeout, Confirm: 1})
	begin := time.Now()
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	// A hang guard only: the round is bounded by the timeout.
	if took := time.Since(begin); took > 10*timeout {
		t.Fatalf("Tick took %v with a %v timeout", took, timeout)
	}
	// The round waited for both checks (the slow one ends with its timeout).
	m.checks.Wait()

	g := f.health(good)
	if g.Status != store.HealthRunning || g.FiguresAt == nil || g.Stale {
		t.Errorf("good: %s %q stale %v, want running with fresh figures", g.Status, g.Reason, g.Stale)
	}
	s := f.health(slow)
	if s.Status != store.HealthError || s.Reason != "health check timed out after 2s" {
		t.Errorf("slow: %s %q, want error: health check timed out after 2s", s.Status, s.Reason)
	}
	if !s.Stale || !s.FiguresAt.Equal(earlier) || s.DBSizeBytes != seeded.DBSizeBytes || s.PGVersion != seeded.PGVersion ||
		s.Connections != seeded.Connections || s.MaxConnections != seeded.MaxConnections || !s.ServerStartedAt.Equal(started) {
		t.Errorf("slow: the last figures should be kept, marked stale; got %+v", s)
	}
	if !s.CheckedAt.After(earlier) {
		t.Errorf("slow: checked_at %v not updated", s.CheckedAt)
	}
	if s.DurationMS < int(timeout.Milliseconds()) {
		t.Errorf("slow: duration %d ms, want the full timeout", s.DurationMS)
	}
	// The good check ended before the slow one gave up: it was not queued
	// behind it.
	goodEnd := g.CheckedAt.Add(time.Duration(g.DurationMS) * time.Millisecond)
	slowEnd := s.CheckedAt.Add(time.Duration(s.DurationMS) * time.Millisecond)
	if !goodEnd.Before(slowEnd) {
		t.Errorf("good check ended at %v, after the slow one timed out at %v", goodEnd, slowEnd)
	}
	if n := hang.accepted.Load(); n != 1 {
		t.Errorf("the hanging server accepted %d connections, want 1", n)
	}
}

func TestInFlightCheckIsSkipped(t *testing.T) {
	f := newFixture(t)
	a, b := newHangServer(t), newHangServer(t)
	envA, envB := f.addEnv("hang-a", a.port), f.addEnv("hang-b", b.port)

	// One slot: the second check waits for the first to time out, and is
	// still running when the round gives up waiting (Timeout + grace).
	const timeout = time.Second
	m := f.monitor(Config{Timeout: timeout, Concurrency: 1, Confirm: 1})
	ctx := context.Background()
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	m.mu.Lock()
	inFlight := len(m.inFlight)
	m.mu.Unlock()
	if inFlight != 1 {
		t.Fatalf("after the first round, %d checks in flight, want 1", inFlight)
	}
	// The second round skips the check in flight and starts the other.
	if err := m.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	m.checks.Wait()

	na, nb := a.accepted.Load(), b.accepted.Load()
	if na+nb != 3 || min(na, nb) != 1 {
		t.Errorf("probes: hang-a %d, hang-b %d; want 1 for the environment in flight and 2 for the other", na, nb)
	}
	ha, hb := len(f.history(envA)), len(f.history(envB))
	if int64(ha) != na || int64(hb) != nb {
		t.Errorf("history: hang-a %d, hang-b %d checks; want %d and %d", ha, hb, na, nb)
	}
	if got := counterValue(t, m, "pgdeck_health_checks_skipped_total"); got != 1 {
		t.Errorf("skipped counter = %v, want 1", got)
	}
}

func TestHistoryIsPruned(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	env := f.addRunningEnv("shop")
	old := time.Now().Add(-25 * time.Hour)
	if err := f.st.AddHealthHistory(ctx, env.ID, store.HealthHistoryEntry{CheckedAt: old, Status: store.HealthRunning, DurationMS: 3}); err != nil {
		t.Fatal(err)
	}
	m := f.monitor(Config{Timeout: 5 * time.Second, HistoryRetention: 24 * time.Hour})
	tick(t, m)
	hist := f.history(env)
	if len(hist) != 1 || hist[0].CheckedAt.Before(time.Now().Add(-time.Hour)) {
		t.Errorf("history = %+v, want only the new check", hist)
	}
}
