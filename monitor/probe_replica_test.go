package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// TestReplicaProbe runs the monitor over an environment with a real
// streaming replica (made by hand, see addReplica) and one without: in sync
// it is Online with no lag, also on a primary idle for longer than the time
// thresholds; with replay paused and WAL written it is Lagging, warning
// then critical; resumed it is Online; killed it is Offline within two
// ticks; with its slot dropped it is an Error naming the slot. The
// environment without a replica has no replica health.
func TestReplicaProbe(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	shop := f.addReplica(f.addMonitorRole(f.addRunningEnv("shop"), testMonitorPassword))
	plain := f.addEnv("plain", testkit.FreePort(t))
	// Left from a replica since removed.
	if err := f.st.UpsertHealth(ctx, store.Health{EnvironmentID: plain.ID, Component: store.ComponentReplica,
		Status: store.HealthOnline, Severity: store.SeverityOK, CheckedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	const mb = 1 << 20
	// Small thresholds: the time ones are passed by an idle second or two,
	// the byte ones by a few thousand rows.
	m := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2,
		Replica: ReplicaThresholds{WarnBytes: mb, WarnLag: time.Second, CritBytes: 4 * mb, CritLag: 2 * time.Second}})
	rid := replica(shop.Name)

	replicaHealth := func() (store.Health, store.ReplicaDetails) {
		t.Helper()
		h, err := f.st.ComponentHealth(ctx, shop.ID, store.ComponentReplica)
		if err != nil {
			t.Fatalf("replica health of shop: %v", err)
		}
		var d store.ReplicaDetails
		if !store.DecodeDetails(h.Details, &d) {
			t.Fatalf("replica details %s do not decode", h.Details)
		}
		return h, d
	}
	show := func(h store.Health, d store.ReplicaDetails) string {
		return fmt.Sprintf("%s/%s %q lag %v B %v s stale %v %+v", h.Status, h.Severity, h.Reason, deref(h.LagBytes), deref(h.LagSeconds), h.Stale, d)
	}

	tick(t, m)
	h, d := replicaHealth()
	if h.Status != store.HealthOnline || h.Severity != store.SeverityOK || h.LagBytes == nil || h.LagSeconds == nil {
		t.Fatalf("streaming replica: %s, want online/ok with its lag", show(h, d))
	}
	if d.ReceiverStatus != "streaming" || d.WALStatus != "reserved" || d.SafeWALBytes == nil || *d.SafeWALBytes <= 0 {
		t.Errorf("streaming replica's details: %+v, want streaming, reserved and a safe WAL size", d)
	}
	if h.PGVersion == "" || h.ServerStartedAt == nil {
		t.Errorf("the replica's version and start are not read: %s", show(h, d))
	}
	if _, err := f.st.ComponentHealth(ctx, plain.ID, store.ComponentReplica); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an environment without a replica has replica health: %v, want ErrNotFound", err)
	}

	t.Run("an idle primary reads 0 s, past the time thresholds", func(t *testing.T) {
		// Longer than CritLag since the last write: now() minus the last
		// replayed transaction's time would read critical.
		time.Sleep(2500 * time.Millisecond)
		// A record the primary writes on its own (a running-xacts
		// snapshot) may be caught on its way: look again a few times.
		var h store.Health
		var d store.ReplicaDetails
		for range 5 {
			tick(t, m)
			if h, d = replicaHealth(); h.LagBytes != nil && *h.LagBytes == 0 {
				break
			}
			time.Sleep(200 * time.Millisecond)
		}
		if h.Status != store.HealthOnline || h.Severity != store.SeverityOK || deref(h.LagBytes) != int64(0) || deref(h.LagSeconds) != 0.0 {
			t.Errorf("idle: %s, want online/ok, 0 B and 0 s", show(h, d))
		}

		g := replicaMetrics(t, m)
		want := map[string]float64{
			"pgdeck_replica_health/shop/online": 1, "pgdeck_replica_health/shop/lagging": 0,
			"pgdeck_replica_health/shop/offline": 0, "pgdeck_replica_health/shop/error": 0,
			"pgdeck_replica_lag_bytes/shop": 0, "pgdeck_replica_lag_seconds/shop": 0,
			"pgdeck_replica_lag_warning_bytes": mb, "pgdeck_replica_lag_critical_bytes": 4 * mb,
			"pgdeck_replica_lag_warning_seconds": 1, "pgdeck_replica_lag_critical_seconds": 2,
		}
		for k, v := range want {
			if got, ok := g[k]; !ok || got != v {
				t.Errorf("%s = %v (present %v), want %v", k, got, ok, v)
			}
		}
		if v, ok := g["pgdeck_replica_safe_wal_bytes/shop"]; !ok || v <= 0 {
			t.Errorf("pgdeck_replica_safe_wal_bytes{env=shop} = %v (present %v), want > 0", v, ok)
		}
		for k := range g {
			if strings.Contains(k, "/plain") {
				t.Errorf("%s: an environment without a replica has replica metrics", k)
			}
		}
	})

	t.Run("paused replay lags: warning, then critical; resumed it is online", func(t *testing.T) {
		// Time thresholds out of reach: the bytes grade it here.
		mb2 := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2,
			Replica: ReplicaThresholds{WarnBytes: mb, WarnLag: time.Hour, CritBytes: 4 * mb, CritLag: 2 * time.Hour}})
		f.psql(rid, "SELECT pg_wal_replay_pause();")
		resumed := false
		defer func() {
			if !resumed {
				f.psql(rid, "SELECT pg_wal_replay_resume();")
			}
		}()
		// About 1.1 kB of WAL per row.
		f.psql(primary(shop.Name), "CREATE TABLE filler (s text);\nINSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 1500);")
		tick(t, mb2)
		if h, d := replicaHealth(); h.Status != store.HealthOnline {
			t.Errorf("after one lagging check: %s, want online until confirmed", show(h, d))
		}
		tick(t, mb2)
		h, d := replicaHealth()
		if h.Status != store.HealthLagging || h.Severity != store.SeverityWarning || h.LagBytes == nil || *h.LagBytes <= mb || *h.LagBytes > 4*mb {
			t.Errorf("1.5 MB behind: %s, want lagging/warning between 1 and 4 MB", show(h, d))
		}
		if !strings.Contains(h.Reason, "over the warning threshold of 1 MB") || !strings.Contains(h.Reason, "replay is paused") {
			t.Errorf("reason %q, want the threshold and the pause", h.Reason)
		}

		f.psql(primary(shop.Name), "INSERT INTO filler SELECT repeat('x', 1000) FROM generate_series(1, 3500);")
		tick(t, mb2)
		if h, d := replicaHealth(); h.Status != store.HealthLagging || h.Severity != store.SeverityCritical || *h.LagBytes <= 4*mb {
			t.Errorf("5 MB behind: %s, want lagging/critical at once (same status)", show(h, d))
		}
		if g := replicaMetrics(t, mb2); g["pgdeck_replica_health/shop/lagging"] != 1 || g["pgdeck_replica_lag_bytes/shop"] <= 4*mb {
			t.Errorf("metrics while lagging: %v", g)
		}
		// With the small time thresholds, paused replay is also late in
		// time: replay_lag keeps growing while the position stands still.
		// (as of the replica's last reply: wal_receiver_status_interval).
		p := newReplicaProbe(f.runtime(), f.box, m.cfg.Replica, newConns())
		testkit.Eventually(t, "paused replay is seconds behind", 10*time.Second, func() (bool, string) {
			cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
			defer cancel()
			r := p.Check(cctx, shop)
			return r.Figures != nil && r.Figures.LagSeconds != nil && *r.Figures.LagSeconds > 2 && r.Severity == store.SeverityCritical,
				fmt.Sprintf("%s/%s %q", r.Status, r.Severity, r.Reason)
		})

		f.psql(rid, "SELECT pg_wal_replay_resume();")
		resumed = true
		testkit.Eventually(t, "the resumed replica catches up", 20*time.Second, func() (bool, string) {
			tick(t, mb2)
			h, d := replicaHealth()
			return h.Status == store.HealthOnline && h.Severity == store.SeverityOK, show(h, d)
		})
	})

	t.Run("a killed replica is offline within two ticks", func(t *testing.T) {
		f.killInstance(rid)
		tick(t, m)
		if h, d := replicaHealth(); h.Status == store.HealthOffline {
			t.Errorf("after one failed check: %s, want the last status until confirmed", show(h, d))
		}
		tick(t, m)
		h, d := replicaHealth()
		if h.Status != store.HealthOffline || h.Severity != store.SeverityCritical || !strings.HasPrefix(h.Reason, "not running: ") {
			t.Errorf("after two failed checks: %s, want offline/critical, not running", show(h, d))
		}
		if h.LagSeconds != nil || h.LagBytes != nil || h.Stale {
			t.Errorf("a killed replica has a lag: %s, want none (never a false 0)", show(h, d))
		}
		g := replicaMetrics(t, m)
		if _, ok := g["pgdeck_replica_lag_seconds/shop"]; ok || g["pgdeck_replica_health/shop/offline"] != 1 {
			t.Errorf("metrics of a killed replica: %v; want offline and no lag", g)
		}

		if err := f.rt.Start(ctx, rid); err != nil {
			t.Fatal(err)
		}
		f.waitStreaming(shop)
		tick(t, m)
		tick(t, m)
		if h, d := replicaHealth(); h.Status != store.HealthOnline {
			t.Errorf("started again: %s, want online", show(h, d))
		}
	})

	t.Run("a dropped slot is an error naming it", func(t *testing.T) {
		if err := f.rt.Stop(ctx, rid); err != nil {
			t.Fatal(err)
		}
		// The walsender may outlive the standby's shutdown for a moment.
		testkit.Eventually(t, "the slot is dropped", 10*time.Second, func() (bool, string) {
			out, err := f.rt.Exec(ctx, primary(shop.Name), nil, "psql", "-X", "-At", "-d", "postgres", "-c",
				fmt.Sprintf("SELECT pg_drop_replication_slot('%s')", runtime.ReplicaSlot))
			return err == nil, string(out)
		})
		if err := f.rt.Start(ctx, rid); err != nil {
			t.Fatal(err)
		}
		tick(t, m)
		tick(t, m)
		h, d := replicaHealth()
		want := fmt.Sprintf("the primary has no replication slot %q", runtime.ReplicaSlot)
		if h.Status != store.HealthError || h.Severity != store.SeverityCritical || !strings.Contains(h.Reason, want) || !strings.Contains(d.Detail, want) {
			t.Errorf("slot dropped: %s, want error %q", show(h, d), want)
		}
		// The replica's log says so too, once its WAL receiver has tried.
		testkit.Eventually(t, "the replica's log line is read", 15*time.Second, func() (bool, string) {
			tick(t, m)
			h, d := replicaHealth()
			return strings.Contains(d.LogLine, fmt.Sprintf("replication slot %q does not exist", runtime.ReplicaSlot)), show(h, d)
		})
		if g := replicaMetrics(t, m); g["pgdeck_replica_health/shop/error"] != 1 {
			t.Errorf("metrics of a broken replica: %v", g)
		}
	})
}

// replicaMetrics gathers the pgdeck_replica_* metrics, by "name/env" (and
// "/status" for the health; the thresholds by name alone).
func replicaMetrics(t *testing.T, m *Monitor) map[string]float64 {
	t.Helper()
	mfs, err := NewRegistry(m, m.st).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "pgdeck_replica_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			k := mf.GetName()
			if env := label(mt, "env"); env != "" {
				k += "/" + env
			}
			if s := label(mt, "status"); s != "" {
				k += "/" + s
			}
			out[k] = gaugeValue(mt)
		}
	}
	return out
}
