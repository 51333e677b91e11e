package provisioner_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// show returns a setting as the running server reports it, and when its
// postmaster started.
func (h *harness) show(e store.Environment, name string) (string, time.Time) {
	h.t.Helper()
	conn := h.connectAs(e)
	defer conn.Close(context.Background())
	var v string
	var started time.Time
	if err := conn.QueryRow(context.Background(), "SELECT current_setting($1), pg_postmaster_start_time()", name).Scan(&v, &started); err != nil {
		h.t.Fatalf("SHOW %s: %v", name, err)
	}
	return v, started
}

// save stores overrides as the operator's saved settings.
func (h *harness) save(e store.Environment, overrides map[string]string) {
	h.t.Helper()
	if _, err := h.st.UpdateDatabaseSettings(context.Background(), e.ID, func(d *store.DatabaseSettings) error {
		for k, v := range overrides {
			if v == "" {
				delete(d.Parameters, k)
			} else {
				d.Parameters[k] = v
			}
		}
		return nil
	}); err != nil {
		h.t.Fatal(err)
	}
}

// TestRedeployAppliesSettings: a deploy applies the plan's recommendation;
// saving changes nothing on the server; a redeploy applies a reload-only
// change without restarting the postmaster and restarts it for a
// restart-only one; what was applied is recorded.
func TestRedeployAppliesSettings(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("tune") // pro: 4GB, 2 CPUs
	if v, _ := h.show(e, "shared_buffers"); v != "1GB" {
		t.Errorf("shared_buffers after deploy = %s, want the pro plan's recommendation 1GB", v)
	}
	if v, _ := h.show(e, "max_connections"); v != "200" {
		t.Errorf("max_connections after deploy = %s, want 200", v)
	}
	wm, started := h.show(e, "work_mem")

	h.save(e, map[string]string{"work_mem": "24MB"})
	if v, _ := h.show(e, "work_mem"); v != wm {
		t.Fatalf("work_mem = %s after a save alone, want %s: saving touched the server", v, wm)
	}
	j := h.succeed("tune", provisioner.KindRedeploy)
	v, after := h.show(e, "work_mem")
	if v != "24MB" {
		t.Errorf("work_mem after redeploy = %s, want 24MB", v)
	}
	if !after.Equal(started) {
		t.Errorf("postmaster restarted (%v → %v) for a reload-only change", started, after)
	}
	if log := strings.Join(h.jobLog(j.ID), "\n"); !strings.Contains(log, "PostgreSQL was not restarted") {
		t.Errorf("redeploy log does not say it only reloaded:\n%s", log)
	}

	h.save(e, map[string]string{"shared_buffers": "512MB"})
	j = h.succeed("tune", provisioner.KindRedeploy)
	v, restarted := h.show(e, "shared_buffers")
	if v != "512MB" || !restarted.After(after) {
		t.Errorf("after a shared_buffers redeploy: %s, postmaster start %v → %v; want 512MB and a restart", v, after, restarted)
	}
	if log := strings.Join(h.jobLog(j.ID), "\n"); !strings.Contains(log, "restarting PostgreSQL: shared_buffers take a restart") {
		t.Errorf("redeploy log does not say why it restarted:\n%s", log)
	}
	if v, _ := h.show(e, "work_mem"); v != "24MB" {
		t.Errorf("work_mem after the second redeploy = %s, want 24MB still", v)
	}
	d, err := h.st.DatabaseSettings(t.Context(), e.ID)
	if err != nil {
		t.Fatal(err)
	}
	var applied provisioner.DeploySettings
	if err := json.Unmarshal(d.Applied, &applied); err != nil || applied.PostgreSQLConf["shared_buffers"] != "512MB" || applied.PostgreSQLConf["work_mem"] != "24MB" {
		t.Errorf("applied snapshot = %s, %v", d.Applied, err)
	}

	// Reset to the recommendation: a restart again, and the value is back.
	h.save(e, map[string]string{"shared_buffers": ""})
	h.succeed("tune", provisioner.KindRedeploy)
	if v, _ := h.show(e, "shared_buffers"); v != "1GB" {
		t.Errorf("shared_buffers after reset = %s, want 1GB", v)
	}
}

// TestRedeployRefusedSettingKeepsPrevious: a value the server refuses fails
// the redeploy with PostgreSQL's message and leaves the previous
// configuration running: before anything is applied for a reload-only
// setting, by starting again on the previous one when a restart fails.
func TestRedeployRefusedSettingKeepsPrevious(t *testing.T) {
	h := newHarness(t)
	e := h.deploy("refuse")
	wm, started := h.show(e, "work_mem")

	// The page refuses this unit; the store takes whatever it is given.
	h.save(e, map[string]string{"work_mem": "8 MiB"})
	j := h.run("refuse", provisioner.KindRedeploy)
	if j.State != store.JobFailed || !strings.Contains(j.Error, `invalid value for parameter "work_mem": "8 MiB"`) ||
		!strings.Contains(j.Error, "previous settings keep running") {
		t.Fatalf("redeploy with a bad work_mem: state %q, error %q; want failed with PostgreSQL's message", j.State, j.Error)
	}
	h.wantState("refuse", runtime.StateRunning)
	if v, now := h.show(e, "work_mem"); v != wm || !now.Equal(started) {
		t.Errorf("after the refused redeploy: work_mem %s, postmaster %v; want %s, not restarted", v, now, wm)
	}

	// A restart-only value PostgreSQL refuses when it starts.
	h.save(e, map[string]string{"work_mem": "", "max_worker_processes": "262000"})
	j = h.run("refuse", provisioner.KindRedeploy)
	if j.State != store.JobFailed || !strings.Contains(j.Error, "max_worker_processes") || !strings.Contains(j.Error, "previous settings are running again") {
		t.Fatalf("redeploy with a bad max_worker_processes: state %q, error %q", j.State, j.Error)
	}
	h.wantState("refuse", runtime.StateRunning)
	if v, _ := h.show(e, "max_worker_processes"); v != "8" {
		t.Errorf("max_worker_processes after the refused redeploy = %s, want 8", v)
	}
	// Fixed, the next redeploy succeeds.
	h.save(e, map[string]string{"max_worker_processes": ""})
	h.succeed("refuse", provisioner.KindRedeploy)
}
