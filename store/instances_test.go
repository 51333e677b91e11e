package store_test

import (
	"context"
	"errors"
	"testing"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

// TestUpgradeCarriesPortsIntoInstances: a store made before instances
// existed (its environments hold their port) keeps every environment's port,
// now as its primary instance, after the upgrade.
func TestUpgradeCarriesPortsIntoInstances(t *testing.T) {
	ctx := context.Background()
	url, conn := storeAtVersion(t, 5) // just before 006_instances
	if _, err := conn.Exec(ctx, `INSERT INTO environments (name, odoo_version, stage, plan, port, db_name, db_user, deployed_at)
		VALUES ('old-shop', '18.0', 'production', 'pro', 25500, 'old_shop', 'odoo_old_shop', now()),
		       ('never-deployed', '18.0', 'staging', 'pro', NULL, '', '', NULL)`); err != nil {
		t.Fatal(err)
	}

	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("open (upgrade) the old store: %v", err)
	}
	defer st.Close()
	e, err := st.EnvironmentByName(ctx, "old-shop")
	if err != nil {
		t.Fatal(err)
	}
	if e.Port == nil || *e.Port != 25500 || !e.Deployed() {
		t.Errorf("old-shop after the upgrade: port %v, deployed %v; want 25500 and deployed", e.Port, e.Deployed())
	}
	is, err := st.Instances(ctx, e.ID)
	if err != nil || len(is) != 1 || is[0].Role != store.InstancePrimary || is[0].Port == nil || *is[0].Port != 25500 {
		t.Errorf("old-shop's instances: %+v, %v; want its primary on 25500", is, err)
	}
	n, _ := st.EnvironmentByName(ctx, "never-deployed")
	if is, _ := st.Instances(ctx, n.ID); n.Port != nil || len(is) != 0 {
		t.Errorf("never-deployed after the upgrade: port %v, instances %+v; want none", n.Port, is)
	}
	used, err := st.UsedPorts(ctx)
	if err != nil || len(used) != 1 || !used[25500] {
		t.Errorf("used ports %v, %v", used, err)
	}
}

func TestInstancePorts(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	a, err := st.CreateEnvironment(ctx, store.Environment{Name: "alpha", OdooVersion: "18.0", Stage: "staging", Plan: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	b, err := st.CreateEnvironment(ctx, store.Environment{Name: "beta", OdooVersion: "18.0", Stage: "staging", Plan: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := st.SetPort(ctx, a.ID, 26000); err != nil || got != 26000 {
		t.Fatalf("SetPort = %d, %v", got, err)
	}
	// A recorded port is kept: the first allocation wins.
	if got, err := st.SetPort(ctx, a.ID, 26001); err != nil || got != 26000 {
		t.Errorf("SetPort again = %d, %v; want the recorded 26000", got, err)
	}
	if got, err := st.SetInstancePort(ctx, a.ID, store.InstancePooler, 26002); err != nil || got != 26002 {
		t.Errorf("pooler port = %d, %v", got, err)
	}
	if _, err := st.SetInstancePort(ctx, b.ID, store.InstancePrimary, 26002); !errors.Is(err, store.ErrConflict) {
		t.Errorf("a port another instance has: %v, want ErrConflict", err)
	}
	if _, err := st.SetInstancePort(ctx, a.ID, "sidecar", 26003); err == nil {
		t.Error("an unknown role was recorded")
	}
	if _, err := st.SetInstancePort(ctx, 999999, store.InstancePrimary, 26004); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an instance of a missing environment: %v, want ErrNotFound", err)
	}
	is, err := st.Instances(ctx, a.ID)
	if err != nil || len(is) != 2 || is[0].Role != store.InstancePrimary || is[1].Role != store.InstancePooler {
		t.Fatalf("instances %+v, %v; want primary then pooler", is, err)
	}
	if e, _ := st.EnvironmentByID(ctx, a.ID); e.Port == nil || *e.Port != 26000 || e.PoolerPort == nil || *e.PoolerPort != 26002 {
		t.Errorf("environment port %v, pooler port %v; want its primary's 26000 and its pooler's 26002", e.Port, e.PoolerPort)
	}
	if e, _ := st.EnvironmentByID(ctx, b.ID); e.PoolerPort != nil {
		t.Errorf("beta has no pooler, yet its pooler port is %v", *e.PoolerPort)
	}
	// Never deployed: ClearPort frees the primary's port.
	if err := st.ClearPort(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	if e, _ := st.EnvironmentByID(ctx, a.ID); e.Port != nil {
		t.Errorf("port after ClearPort: %v", *e.Port)
	}
	if err := st.DeleteInstance(ctx, a.ID, store.InstancePooler); err != nil {
		t.Fatal(err)
	}
	if used, _ := st.UsedPorts(ctx); len(used) != 0 {
		t.Errorf("used ports after clearing both: %v", used)
	}
	if es, _ := st.ListEnvironments(ctx); len(es) != 2 || es[0].PoolerPort != nil {
		t.Errorf("after its pooler was deleted: %+v; want alpha without a pooler port", es)
	}
	// Deleting the environment deletes its instances.
	if _, err := st.SetPort(ctx, b.ID, 26005); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteEnvironment(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if used, _ := st.UsedPorts(ctx); used[26005] {
		t.Error("a deleted environment's port is still used")
	}
}
