package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"testing"
	"time"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestHealthPerComponent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	shop := mustCreateEnvironment(t, st, "shop")
	now := time.Now().Truncate(time.Microsecond)
	lagBytes, lagSeconds := int64(60<<20), 3.5

	primary := store.Health{EnvironmentID: shop.ID, Status: store.HealthRunning, CheckedAt: now}
	replica := store.Health{EnvironmentID: shop.ID, Component: store.ComponentReplica, Status: store.HealthLagging,
		Severity: store.SeverityWarning, Reason: "over 50 MB behind", CheckedAt: now, LagBytes: &lagBytes, LagSeconds: &lagSeconds}
	pooler := store.Health{EnvironmentID: shop.ID, Component: store.ComponentPooler, Status: store.HealthDisabled,
		CheckedAt: now, Details: json.RawMessage(`{"cl_waiting": 0}`)}
	for _, h := range []store.Health{primary, replica, pooler} {
		if err := st.UpsertHealth(ctx, h); err != nil {
			t.Fatal(err)
		}
	}

	t.Run("each component has its own row", func(t *testing.T) {
		got, err := st.HealthOf(ctx, shop.ID)
		if err != nil || got.Component != store.ComponentPrimary || got.Status != store.HealthRunning || got.LagBytes != nil {
			t.Errorf("HealthOf = %+v, %v; want the primary", got, err)
		}
		r, err := st.ComponentHealth(ctx, shop.ID, store.ComponentReplica)
		if err != nil {
			t.Fatal(err)
		}
		if r.Status != store.HealthLagging || r.Severity != store.SeverityWarning || r.Reason != replica.Reason ||
			r.LagBytes == nil || *r.LagBytes != lagBytes || r.LagSeconds == nil || *r.LagSeconds != lagSeconds {
			t.Errorf("replica = %+v", r)
		}
		p, err := st.ComponentHealth(ctx, shop.ID, store.ComponentPooler)
		if err != nil {
			t.Fatal(err)
		}
		var details map[string]int
		if err := json.Unmarshal(p.Details, &details); err != nil || p.Status != store.HealthDisabled || details["cl_waiting"] != 0 || len(details) != 1 {
			t.Errorf("pooler = %+v (details %s, %v)", p, p.Details, err)
		}
		if r.Details == nil || string(r.Details) != "{}" {
			t.Errorf("replica details = %q, want an empty object", r.Details)
		}
	})

	t.Run("HealthAll reads primaries, HealthAllComponents every component", func(t *testing.T) {
		all, err := st.HealthAll(ctx)
		if err != nil || len(all) != 1 || all[shop.ID].Component != store.ComponentPrimary {
			t.Errorf("HealthAll = %+v, %v; want the primary only", all, err)
		}
		every, err := st.HealthAllComponents(ctx)
		if err != nil || len(every) != 3 || every[store.HealthKey{EnvironmentID: shop.ID, Component: store.ComponentReplica}].Status != store.HealthLagging {
			t.Errorf("HealthAllComponents = %+v, %v", every, err)
		}
	})

	t.Run("statuses belong to their component", func(t *testing.T) {
		for _, h := range []store.Health{
			{Component: store.ComponentPrimary, Status: store.HealthDisabled},
			{Component: store.ComponentPrimary, Status: store.HealthOnline},
			{Component: store.ComponentReplica, Status: store.HealthRunning},
			{Component: store.ComponentPooler, Status: store.HealthLagging},
			{Component: "standby", Status: store.HealthRunning},
			{Component: store.ComponentReplica, Status: store.HealthOnline, Severity: "bad"},
		} {
			h.EnvironmentID, h.CheckedAt = shop.ID, now
			if err := st.UpsertHealth(ctx, h); err == nil {
				t.Errorf("UpsertHealth accepted %s %q severity %q", h.Component, h.Status, h.Severity)
			}
		}
	})

	t.Run("record writes latest and history in one statement", func(t *testing.T) {
		later := now.Add(5 * time.Second)
		bytes, secs := int64(200<<20), 40.0
		h := replica
		h.CheckedAt, h.Severity, h.LagBytes, h.LagSeconds = later, store.SeverityCritical, &bytes, &secs
		obs := store.HealthHistoryEntry{Component: store.ComponentReplica, CheckedAt: later, Status: store.HealthLagging,
			Severity: store.SeverityCritical, DurationMS: 4, LagBytes: &bytes, LagSeconds: &secs}
		if err := st.RecordHealth(ctx, h, obs); err != nil {
			t.Fatal(err)
		}
		r, err := st.ComponentHealth(ctx, shop.ID, store.ComponentReplica)
		if err != nil || r.Severity != store.SeverityCritical || *r.LagBytes != bytes || !r.CheckedAt.Equal(later) {
			t.Errorf("replica after RecordHealth = %+v, %v", r, err)
		}
		hist, err := st.ComponentHistory(ctx, shop.ID, store.ComponentReplica, now.Add(-time.Hour))
		if err != nil || len(hist) != 1 {
			t.Fatalf("replica history = %+v, %v; want one check", hist, err)
		}
		if e := hist[0]; e.Component != store.ComponentReplica || e.Severity != store.SeverityCritical ||
			e.LagBytes == nil || *e.LagBytes != bytes || e.LagSeconds == nil || *e.LagSeconds != secs || e.DurationMS != 4 {
			t.Errorf("replica history entry = %+v", e)
		}
		if p, err := st.HealthHistory(ctx, shop.ID, time.Time{}); err != nil || len(p) != 0 {
			t.Errorf("primary history = %+v, %v; want none", p, err)
		}

		gone := store.Health{EnvironmentID: 999_999, Status: store.HealthRunning, CheckedAt: now}
		err = st.RecordHealth(ctx, gone, store.HealthHistoryEntry{CheckedAt: now, Status: store.HealthRunning})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RecordHealth of an unknown environment = %v, want ErrNotFound", err)
		}
	})

	t.Run("a component's health can be forgotten", func(t *testing.T) {
		if err := st.DeleteComponentHealth(ctx, shop.ID, store.ComponentPooler); err != nil {
			t.Fatal(err)
		}
		if _, err := st.ComponentHealth(ctx, shop.ID, store.ComponentPooler); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("pooler after delete: %v, want ErrNotFound", err)
		}
		if _, err := st.HealthOf(ctx, shop.ID); err != nil {
			t.Errorf("the primary went with the pooler: %v", err)
		}
	})
}

// TestHealthMigrationKeepsRows applies the migrations before per-component
// health, stores a health row and history as pgdeck did then, and checks
// that opening the store carries them over as the primary's.
func TestHealthMigrationKeepsRows(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url, conn := storeAtVersion(t, 2)
	var id int64
	if err := conn.QueryRow(ctx, `INSERT INTO environments (name, odoo_version, stage, plan, deployed_at)
		VALUES ('shop', '18.0', 'staging', 'starter', now()) RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO health (environment_id, status, reason, checked_at, stale, db_size_bytes)
		VALUES ($1, 'error', 'connection refused', now(), true, 4242)`, id); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO health_history (environment_id, checked_at, status, duration_ms)
		VALUES ($1, now(), 'error', 7)`, id); err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	h, err := st.HealthOf(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if h.Component != store.ComponentPrimary || h.Status != store.HealthError || h.Reason != "connection refused" ||
		!h.Stale || h.DBSizeBytes != 4242 || h.Severity != "" || h.LagBytes != nil {
		t.Errorf("carried-over health = %+v", h)
	}
	hist, err := st.HealthHistory(ctx, id, time.Time{})
	if err != nil || len(hist) != 1 || hist[0].Component != store.ComponentPrimary || hist[0].DurationMS != 7 {
		t.Errorf("carried-over history = %+v, %v", hist, err)
	}
	e, err := st.EnvironmentByID(ctx, id)
	if err != nil || e.MonitorUser != "" || e.MonitorPassword != nil {
		t.Errorf("environment after migration = %+v, %v; want no monitoring role yet", e, err)
	}
}

func TestMonitorCredentials(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	e := mustCreateEnvironment(t, st, "shop")
	got, err := st.SetMonitorCredentials(ctx, e.ID, "pgdeck_monitor", []byte("sealed-1"))
	if err != nil || got.MonitorUser != "pgdeck_monitor" || string(got.MonitorPassword) != "sealed-1" {
		t.Fatalf("SetMonitorCredentials = %+v, %v", got, err)
	}
	// A redeploy keeps what was recorded.
	got, err = st.SetMonitorCredentials(ctx, e.ID, "other", []byte("sealed-2"))
	if err != nil || got.MonitorUser != "pgdeck_monitor" || string(got.MonitorPassword) != "sealed-1" {
		t.Errorf("second SetMonitorCredentials = %+v, %v; want the first kept", got, err)
	}
	if _, err := st.SetMonitorCredentials(ctx, 999_999, "x", []byte("y")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("unknown environment: %v, want ErrNotFound", err)
	}
}
