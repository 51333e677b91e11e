package provisioner_test

import (
	"encoding/json"
	"maps"
	"testing"

	"pgdeck/provisioner"
	"pgdeck/store"
)

// TestDeployRecordsAppliedSettings: a deploy records the snapshot it
// applied, so nothing is pending after it; a save is pending until the
// next redeploy applies it, and the running server has it then.
func TestDeployRecordsAppliedSettings(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	env := h.deploy("applied")

	saved, err := h.st.DatabaseSettings(ctx, env.ID)
	if err != nil {
		t.Fatal(err)
	}
	var applied provisioner.DeploySettings
	if err := json.Unmarshal(saved.Applied, &applied); err != nil || saved.AppliedAt == nil {
		t.Fatalf("applied snapshot after the deploy: %s (at %v), %v", saved.Applied, saved.AppliedAt, err)
	}
	want, err := provisioner.ResolveSettings(env, saved)
	if err != nil {
		t.Fatal(err)
	}
	if !maps.Equal(applied.PostgreSQLConf, want.PostgreSQLConf) {
		t.Errorf("applied postgresql.conf = %v, want %v", applied.PostgreSQLConf, want.PostgreSQLConf)
	}
	if p, err := provisioner.PendingChanges(env, saved); err != nil || len(p) != 0 {
		t.Fatalf("pending right after the deploy: %v, %v", p, err)
	}

	saved, err = h.st.UpdateDatabaseSettings(ctx, env.ID, func(d *store.DatabaseSettings) error {
		d.Parameters["work_mem"] = "8MB"
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if p, err := provisioner.PendingChanges(env, saved); err != nil || len(p) != 1 || p[0].Name != "work_mem" || p[0].New != "8MB" {
		t.Fatalf("pending after saving work_mem = 8MB: %v, %v", p, err)
	}
	h.succeed("applied", provisioner.KindRedeploy)
	saved, err = h.st.DatabaseSettings(ctx, env.ID)
	if err != nil {
		t.Fatal(err)
	}
	if p, err := provisioner.PendingChanges(env, saved); err != nil || len(p) != 0 {
		t.Fatalf("pending after the redeploy: %v, %v", p, err)
	}
	var workMem string
	if err := h.connectAs(h.env("applied")).QueryRow(ctx, "SHOW work_mem").Scan(&workMem); err != nil || workMem != "8MB" {
		t.Fatalf("the server's work_mem after the redeploy = %q, %v; want 8MB", workMem, err)
	}
}
