package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// TestPoolerProbe runs the monitor over an environment with a real
// PgBouncer in front of its cluster and one without a pooler: the pooler's
// figures are read from the console, a killed PgBouncer is an Error within
// two ticks (the confirmation rule), a started one Running again, and the
// environment without a pooler has no pooler health (a stale row is
// forgotten).
func TestPoolerProbe(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	shop := f.addMonitorRole(f.addRunningEnv("shop"), testMonitorPassword)
	shop, pooler := f.addPooler(shop)
	plain := f.addEnv("plain", testkit.FreePort(t))
	// Left from a pooler since removed.
	if err := f.st.UpsertHealth(ctx, store.Health{EnvironmentID: plain.ID, Component: store.ComponentPooler,
		Status: store.HealthRunning, CheckedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	m := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2})

	poolerHealth := func(e store.Environment) (store.Health, store.PoolerDetails) {
		t.Helper()
		h, err := f.st.ComponentHealth(ctx, e.ID, store.ComponentPooler)
		if err != nil {
			t.Fatalf("pooler health of %s: %v", e.Name, err)
		}
		var d store.PoolerDetails
		if len(h.Details) > 2 && !store.DecodeDetails(h.Details, &d) {
			t.Fatalf("pooler details %s do not decode", h.Details)
		}
		return h, d
	}

	tick(t, m)
	h, d := poolerHealth(shop)
	if h.Status != store.HealthRunning || h.Stale || h.FiguresAt == nil {
		t.Fatalf("pooler = %+v, want running with figures", h)
	}
	// No client yet: no pool row, which is no fault.
	want := store.PoolerDetails{Database: testDB, PoolMode: render.PoolModeTransaction, PoolSize: testPoolSize, MaxClientConn: testMaxClientConn}
	if d.Database != want.Database || d.PoolMode != want.PoolMode || d.PoolSize != want.PoolSize || d.MaxClientConn != want.MaxClientConn {
		t.Errorf("pooler details = %+v, want the ini's %+v", d, want)
	}
	if _, err := f.st.ComponentHealth(ctx, plain.ID, store.ComponentPooler); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an environment without a pooler has pooler health: %v, want ErrNotFound", err)
	}

	t.Run("clients holding transactions are counted", func(t *testing.T) {
		for i := range 3 {
			cfg, err := pgx.ParseConfig(fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s dbname=%s sslmode=disable",
				pooler.port, testUser, testPassword, testDB))
			if err != nil {
				t.Fatal(err)
			}
			// Transaction pooling carries no prepared statement.
			cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
			c, err := pgx.ConnectConfig(ctx, cfg)
			if err != nil {
				t.Fatalf("client %d through PgBouncer: %v", i, err)
			}
			defer c.Close(ctx)
			if _, err := c.Exec(ctx, "BEGIN; SELECT 1"); err != nil {
				t.Fatal(err)
			}
		}
		tick(t, m)
		h, d := poolerHealth(shop)
		if h.Status != store.HealthRunning || d.ClActive < 3 || d.SvActive < 3 || d.PoolSize != testPoolSize {
			t.Errorf("with 3 clients in a transaction: %s %+v; want cl_active and sv_active >= 3", h.Status, d)
		}

		gauges := poolerMetrics(t, m)
		if gauges["pgdeck_pooler_health/shop/running"] != 1 || gauges["pgdeck_pooler_health/shop/error"] != 0 {
			t.Errorf("pgdeck_pooler_health of shop: %v", gauges)
		}
		if v, ok := gauges["pgdeck_pooler_clients_active/shop"]; !ok || v < 3 {
			t.Errorf("pgdeck_pooler_clients_active{env=shop} = %v (present %v), want >= 3", v, ok)
		}
		for _, name := range []string{"clients_waiting", "servers_active", "servers_idle", "max_wait_seconds", "avg_query_seconds"} {
			if _, ok := gauges["pgdeck_pooler_"+name+"/shop"]; !ok {
				t.Errorf("no pgdeck_pooler_%s for shop", name)
			}
		}
		for k := range gauges {
			if strings.Contains(k, "/plain") {
				t.Errorf("%s: an environment without a pooler has pooler metrics", k)
			}
		}
	})

	t.Run("a killed PgBouncer is an Error within two ticks", func(t *testing.T) {
		pooler.kill(t)
		tick(t, m)
		if h, _ := poolerHealth(shop); h.Status != store.HealthRunning {
			t.Errorf("after one failed check: %s, want running until confirmed", h.Status)
		}
		tick(t, m)
		h, d := poolerHealth(shop)
		reason := fmt.Sprintf("connect to PgBouncer at 127.0.0.1:%d: connection refused", pooler.port)
		if h.Status != store.HealthError || h.Reason != reason {
			t.Errorf("after two failed checks: %s %q, want error %q", h.Status, h.Reason, reason)
		}
		if !h.Stale || d.PoolSize != testPoolSize {
			t.Errorf("the last figures are not kept, marked stale: stale %v, %+v", h.Stale, d)
		}
		gauges := poolerMetrics(t, m)
		if _, ok := gauges["pgdeck_pooler_clients_active/shop"]; ok || gauges["pgdeck_pooler_health/shop/error"] != 1 {
			t.Errorf("metrics of a down pooler: %v; want error and no stale figures", gauges)
		}
	})

	t.Run("a stopped environment's PgBouncer is Stopped", func(t *testing.T) {
		if err := f.st.SetDesiredState(ctx, shop.ID, desiredStopped); err != nil {
			t.Fatal(err)
		}
		defer f.st.SetDesiredState(ctx, shop.ID, "running")
		tick(t, m)
		tick(t, m)
		if h, _ := poolerHealth(shop); h.Status != store.HealthStopped || h.Reason != "" {
			t.Errorf("stopped on purpose: %s %q, want stopped", h.Status, h.Reason)
		}
	})

	t.Run("started again it is Running", func(t *testing.T) {
		pooler.start(t)
		tick(t, m)
		tick(t, m)
		h, d := poolerHealth(shop)
		if h.Status != store.HealthRunning || h.Reason != "" || h.Stale || d.PoolSize != testPoolSize {
			t.Errorf("after a restart: %s %q stale %v %+v, want running with fresh figures", h.Status, h.Reason, h.Stale, d)
		}
	})

	t.Run("the console refuses a wrong password", func(t *testing.T) {
		p := newPoolerProbe(f.runtime(), f.box)
		e := shop
		e.MonitorPassword = f.box.Seal("not-the-password")
		cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
		r := p.Check(cctx, e)
		prefix := fmt.Sprintf("connect to PgBouncer at 127.0.0.1:%d: ", pooler.port)
		if r.Status != store.HealthError || !strings.HasPrefix(r.Reason, prefix) || len(r.Reason) == len(prefix) || r.Figures != nil {
			t.Errorf("wrong password: %s %q, want an error starting %q with PgBouncer's message", r.Status, r.Reason, prefix)
		}
		e.DesiredState = desiredStopped
		if r := p.Check(cctx, e); r.Status != store.HealthError {
			t.Errorf("a console that answers is not stopped, yet: %s %q", r.Status, r.Reason)
		}
	})
}

// poolerMetrics gathers the pgdeck_pooler_* metrics, by "name/env" (and
// "/status" for the health).
func poolerMetrics(t *testing.T, m *Monitor) map[string]float64 {
	t.Helper()
	mfs, err := NewRegistry(m, m.st).Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		if !strings.HasPrefix(mf.GetName(), "pgdeck_pooler_") {
			continue
		}
		for _, mt := range mf.GetMetric() {
			k := mf.GetName() + "/" + label(mt, "env")
			if s := label(mt, "status"); s != "" {
				k += "/" + s
			}
			out[k] = gaugeValue(mt)
		}
	}
	return out
}

func gaugeValue(m *dto.Metric) float64 { return m.GetGauge().GetValue() }
