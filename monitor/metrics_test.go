package monitor

import (
	"context"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
)

func TestMetrics(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	shop := f.addRunningEnv("shop")
	if _, err := f.st.CreateJob(ctx, shop.ID, shop.Name, "redeploy", "test"); err != nil {
		t.Fatal(err)
	}
	m := f.monitor(Config{Timeout: 5 * time.Second})
	tick(t, m)

	reg := NewRegistry(m, f.st)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]*dto.MetricFamily{}
	for _, mf := range mfs {
		byName[mf.GetName()] = mf
	}
	for _, name := range []string{"go_goroutines", "process_cpu_seconds_total"} {
		if byName[name] == nil {
			t.Errorf("no %s: the Go and process collectors are missing", name)
		}
	}

	health := map[string]float64{}
	for _, mt := range byName["pgdeck_environment_health"].GetMetric() {
		health[label(mt, "env")+"/"+label(mt, "status")] = mt.GetGauge().GetValue()
	}
	want := map[string]float64{"shop/running": 1, "shop/stopped": 0, "shop/error": 0}
	for k, v := range want {
		if got, ok := health[k]; !ok || got != v {
			t.Errorf("pgdeck_environment_health{%s} = %v (present %v), want %v", k, got, ok, v)
		}
	}
	if len(health) != len(want) {
		t.Errorf("pgdeck_environment_health has %v", health)
	}

	jobs := map[string]float64{}
	for _, mt := range byName["pgdeck_jobs"].GetMetric() {
		jobs[label(mt, "state")] = mt.GetGauge().GetValue()
	}
	if jobs["queued"] != 1 || jobs["running"] != 0 || len(jobs) != 4 {
		t.Errorf("pgdeck_jobs = %v, want queued 1 and the other states 0", jobs)
	}

	// The built-in server, not checked by a monitor without servers:
	// unknown.
	servers := map[string]float64{}
	for _, mt := range byName["pgdeck_server_status"].GetMetric() {
		servers[label(mt, "server")+"/"+label(mt, "status")] = mt.GetGauge().GetValue()
	}
	if servers["local/unknown"] != 1 || servers["local/online"] != 0 || servers["local/offline"] != 0 || len(servers) != 3 {
		t.Errorf("pgdeck_server_status = %v, want the built-in server unknown", servers)
	}

	hist := byName["pgdeck_health_check_duration_seconds"].GetMetric()
	if len(hist) != 1 || hist[0].GetHistogram().GetSampleCount() != 1 || hist[0].GetHistogram().GetSampleSum() <= 0 {
		t.Errorf("pgdeck_health_check_duration_seconds = %v, want one sample", hist)
	}

	// A registry without a monitor (a pgdeck instance that does not run
	// it) still serves health and jobs.
	if _, err := NewRegistry(nil, f.st).Gather(); err != nil {
		t.Error(err)
	}
}

func label(m *dto.Metric, name string) string {
	for _, l := range m.GetLabel() {
		if l.GetName() == name {
			return l.GetValue()
		}
	}
	return ""
}

func counterValue(t *testing.T, m *Monitor, name string) float64 {
	t.Helper()
	mfs, err := NewRegistry(m, m.st).Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("no metric %s", name)
	return 0
}
