package monitor

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// fakeProbe answers what the test sets, for one component.
type fakeProbe struct {
	component string
	mu        sync.Mutex
	result    Result
}

func (p *fakeProbe) Component() string { return p.component }

func (p *fakeProbe) Check(ctx context.Context, e store.Environment) Result {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.result
}

func (p *fakeProbe) set(r Result) {
	p.mu.Lock()
	p.result = r
	p.mu.Unlock()
}

// TestComponentsAreKeptApart runs a replica probe beside a pooler probe on
// one environment: each component gets its own health, history and
// confirmation, and a component that goes away is forgotten.
func TestComponentsAreKeptApart(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	env := f.addEnv("shop", testkit.FreePort(t))
	lagB, lagS := int64(120<<20), 2.0
	replica := &fakeProbe{component: store.ComponentReplica, result: Result{Status: store.HealthLagging,
		Severity: store.SeverityCritical, Reason: "120 MB behind", Figures: &Figures{LagBytes: &lagB, LagSeconds: &lagS}}}
	pooler := &fakeProbe{component: store.ComponentPooler, result: Result{Status: store.HealthDisabled}}
	m := f.monitor(Config{Timeout: 5 * time.Second, Confirm: 2})
	m.probes = []Probe{replica, pooler}

	tick(t, m)
	r, err := f.st.ComponentHealth(ctx, env.ID, store.ComponentReplica)
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != store.HealthLagging || r.Severity != store.SeverityCritical || r.LagBytes == nil || *r.LagBytes != lagB {
		t.Errorf("replica = %+v", r)
	}
	if p, err := f.st.ComponentHealth(ctx, env.ID, store.ComponentPooler); err != nil || p.Status != store.HealthDisabled {
		t.Errorf("pooler = %+v, %v", p, err)
	}
	if _, err := f.st.HealthOf(ctx, env.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the primary was not probed, yet HealthOf = %v", err)
	}

	// The replica goes offline: confirmed at the second check, with the
	// last lag kept, stale; the pooler is untouched.
	replica.set(Result{Status: store.HealthOffline, Reason: "not streaming"})
	tick(t, m)
	if r, _ := f.st.ComponentHealth(ctx, env.ID, store.ComponentReplica); r.Status != store.HealthLagging {
		t.Errorf("after one offline check: %s, want lagging until confirmed", r.Status)
	}
	tick(t, m)
	r, _ = f.st.ComponentHealth(ctx, env.ID, store.ComponentReplica)
	if r.Status != store.HealthOffline || r.Severity != "" || !r.Stale || r.LagBytes == nil || *r.LagBytes != lagB {
		t.Errorf("after two offline checks: %+v", r)
	}
	hist, err := f.st.ComponentHistory(ctx, env.ID, store.ComponentReplica, time.Now().Add(-time.Hour))
	if err != nil || len(hist) != 3 || hist[0].LagBytes == nil || hist[2].LagBytes != nil || hist[2].Status != store.HealthOffline {
		t.Errorf("replica history = %+v, %v", hist, err)
	}

	// Removed: its latest health goes.
	replica.set(Result{Absent: true})
	tick(t, m)
	if _, err := f.st.ComponentHealth(ctx, env.ID, store.ComponentReplica); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("removed replica's health = %v, want ErrNotFound", err)
	}
	if p, err := f.st.ComponentHealth(ctx, env.ID, store.ComponentPooler); err != nil || p.Status != store.HealthDisabled {
		t.Errorf("pooler after the replica went = %+v, %v", p, err)
	}
}

// TestPrimaryProbeLogsInAsTheMonitoringRole: with a monitoring role
// recorded, the probe reads the figures as that role (Odoo's password is
// wrong here, so only it can succeed); with a monitoring role that the
// server refuses (a redeploy cut short), it falls back to Odoo's role.
func TestPrimaryProbeLogsInAsTheMonitoringRole(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	port := f.addCluster("shop")
	env := f.addEnv("shop", port)
	// Only the monitoring role can log in: Odoo's stored password is wrong.
	if _, err := f.st.Pool.Exec(ctx, "UPDATE environments SET db_password = $2 WHERE id = $1", env.ID, f.box.Seal("wrong")); err != nil {
		t.Fatal(err)
	}
	env = f.addMonitorRole(env, testMonitorPassword)
	probe := newPrimaryProbe(f.runtime(), f.box, newConns())
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r := probe.Check(cctx, env)
	if r.Status != store.HealthRunning || r.Figures == nil || r.Figures.DBSizeBytes <= 0 || r.Figures.MaxConnections != testMaxConnections {
		t.Fatalf("as the monitoring role: %+v (%v)", r, r.Figures)
	}

	t.Run("falls back to Odoo's role", func(t *testing.T) {
		g, err := f.st.EnvironmentByID(ctx, env.ID)
		if err != nil {
			t.Fatal(err)
		}
		g.DBPassword, g.MonitorPassword = f.box.Seal(testPassword), f.box.Seal("not-the-monitor-password")
		r := probe.Check(cctx, g)
		if r.Status != store.HealthRunning || r.Figures == nil {
			t.Errorf("with the monitoring role refused: %s %q, want running as Odoo's role", r.Status, r.Reason)
		}
	})

	t.Run("reads the replication views", func(t *testing.T) {
		conn, err := probe.connect(cctx, "127.0.0.1", port, credentials(env)[0])
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		var user string
		var n int
		if err := conn.QueryRow(cctx, "SELECT current_user, (SELECT count(*) FROM pg_stat_replication)::int").Scan(&user, &n); err != nil || user != testMonitorUser {
			t.Errorf("as %q: %v", user, err)
		}
		if _, err := probe.connect(cctx, "127.0.0.1", port, login{user: testMonitorUser, sealed: env.MonitorPassword, db: testDB}); err == nil {
			t.Error("the monitoring role reached the environment's database; pg_hba should refuse it")
		}
	})
}

// TestPrimaryDetailsCarryAppliedSettings: a check of a deployed environment
// stores, in the primary's details, the running server's pg_settings rows of
// the parameters pgdeck tunes.
func TestPrimaryDetailsCarryAppliedSettings(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	env := f.addMonitorRole(f.addRunningEnv("shop"), testMonitorPassword)
	m := f.monitor(Config{Timeout: 5 * time.Second})
	tick(t, m)

	h := f.health(env)
	var d store.PrimaryDetails
	if h.Status != store.HealthRunning || !store.DecodeDetails(h.Details, &d) {
		t.Fatalf("primary = %s %q, details %s", h.Status, h.Reason, h.Details)
	}
	out, err := f.rt.Exec(ctx, primary(env.Name), nil, "psql", "-X", "-At", "-d", "postgres", "-c", "SHOW shared_buffers")
	if err != nil {
		t.Fatalf("SHOW shared_buffers: %v: %s", err, out)
	}
	shown := strings.TrimSpace(string(out))
	sb, ok := d.Settings["shared_buffers"]
	if !ok || sb.Value != shown || sb.Context != "postmaster" || sb.Unit != "8kB" || sb.VarType != "integer" || sb.Setting != "2048" || sb.PendingRestart {
		t.Errorf("shared_buffers = %+v (present %v), want %q (SHOW), 2048 × 8kB, postmaster", sb, ok, shown)
	}
	if mc := d.Settings["max_connections"]; mc.Value != fmt.Sprint(testMaxConnections) || mc.MinVal != "1" {
		t.Errorf("max_connections = %+v, want %d", mc, testMaxConnections)
	}
	for _, name := range render.TunedParameters() {
		if _, ok := d.Settings[name]; !ok {
			t.Errorf("no setting %s in the primary's details", name)
		}
	}
	if len(d.Settings) != len(render.TunedParameters()) {
		t.Errorf("%d settings, want the %d tuned parameters", len(d.Settings), len(render.TunedParameters()))
	}
}
