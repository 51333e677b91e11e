package monitor

import (
	"context"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/store"
)

// TestConnectionKeptBetweenRounds: the primary probe keeps the monitoring
// role's connection from one round to the next (one session, the same
// backend), and a kept connection that broke meanwhile never shows as a
// fault: the check opens a new one and reports what it sees.
func TestConnectionKeptBetweenRounds(t *testing.T) {
	f := newFixture(t)
	e := f.addMonitorRole(f.addRunningEnv("shop"), testMonitorPassword)
	m := f.monitor(Config{Timeout: 5 * time.Second})
	t.Cleanup(m.conns.closeAll)
	// The monitor's sessions on a cluster, by backend pid.
	sessions := func(name string) string {
		t.Helper()
		return f.psql(primary(name), "SELECT coalesce(string_agg(pid::text || ' ' || usename || ' ' || datname, ','), '') FROM pg_stat_activity WHERE application_name = 'pgdeck-monitor'")
	}
	// A closed connection's backend leaves a moment later.
	noneOn := func(name string) {
		t.Helper()
		testkit.Eventually(t, "no monitor session on "+name, 5*time.Second, func() (bool, string) {
			got := sessions(name)
			return got == "", "sessions: " + got
		})
	}
	noErrors := func() {
		t.Helper()
		for _, c := range f.history(e) {
			if c.Status != store.HealthRunning {
				t.Fatalf("a check recorded %s %q; want every check running", c.Status, c.Reason)
			}
		}
		if h := f.health(e); h.Status != store.HealthRunning {
			t.Fatalf("health = %s %q, want running", h.Status, h.Reason)
		}
	}

	tick(t, m)
	first := sessions("shop")
	if first == "" || first != sessions("shop") {
		t.Fatalf("monitor sessions after a round: %q, want one", first)
	}
	tick(t, m)
	tick(t, m)
	if got := sessions("shop"); got != first {
		t.Fatalf("monitor sessions after three rounds: %q, want the first round's %q kept", got, first)
	}
	if got := m.conns.len(); got != 1 {
		t.Fatalf("%d connections kept, want 1", got)
	}
	noErrors()

	t.Run("a session ended between rounds is replaced", func(t *testing.T) {
		f.psql(primary("shop"), "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'pgdeck-monitor'")
		tick(t, m)
		got := sessions("shop")
		if got == "" || got == first {
			t.Fatalf("monitor sessions after the round: %q (the ended one was %q), want a new one", got, first)
		}
		noErrors()
	})

	t.Run("a server restarted between rounds is Running at the next check", func(t *testing.T) {
		before := f.health(e).ServerStartedAt
		ctx := context.Background()
		if err := f.rt.Stop(ctx, primary("shop")); err != nil {
			t.Fatal(err)
		}
		if err := f.rt.Start(ctx, primary("shop")); err != nil {
			t.Fatal(err)
		}
		tick(t, m)
		after := f.health(e).ServerStartedAt
		if before == nil || after == nil || !after.After(*before) {
			t.Fatalf("server_started_at %v → %v, want the restart's", before, after)
		}
		if sessions("shop") == "" {
			t.Fatal("no monitor session kept after the restart")
		}
		noErrors()
	})

	t.Run("Odoo's role on its own database is not kept", func(t *testing.T) {
		// No monitoring role recorded: the probe logs in as Odoo's role
		// to the environment's database, which others may need alone.
		other := f.addRunningEnv("other")
		tick(t, m)
		if h := f.health(other); h.Status != store.HealthRunning {
			t.Fatalf("health = %s %q, want running", h.Status, h.Reason)
		}
		noneOn("other")
	})

	t.Run("an environment gone has its connection closed", func(t *testing.T) {
		if err := f.st.DeleteEnvironment(context.Background(), e.ID); err != nil {
			t.Fatal(err)
		}
		tick(t, m)
		noneOn("shop")
		if got := m.conns.len(); got != 0 {
			t.Fatalf("%d connections kept, want 0", got)
		}
	})
}
