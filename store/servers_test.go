package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

// TestUpgradePutsEnvironmentsOnTheBuiltinServer: environments made before
// servers existed live on the built-in server after the upgrade.
func TestUpgradePutsEnvironmentsOnTheBuiltinServer(t *testing.T) {
	ctx := context.Background()
	url, conn := storeAtVersion(t, 9) // just before 010_servers
	if _, err := conn.Exec(ctx, `INSERT INTO environments (name, odoo_version, stage, plan, db_name, db_user)
		VALUES ('old-shop', '18.0', 'production', 'pro', 'old_shop', 'odoo_old_shop')`); err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatalf("open (upgrade) the old store: %v", err)
	}
	defer st.Close()
	e, err := st.EnvironmentByName(ctx, "old-shop")
	if err != nil || e.Server != store.BuiltinServer {
		t.Fatalf("old-shop after the upgrade: server %q, %v; want %q", e.Server, err, store.BuiltinServer)
	}
	svs, err := st.ListServers(ctx)
	if err != nil || len(svs) != 1 || !svs[0].Builtin || svs[0].Runtime != store.ServerLocal {
		t.Fatalf("servers after the upgrade: %+v, %v; want the built-in local one", svs, err)
	}
}

// TestServers: register, list, status, environments placed on a server,
// and a server with environments that cannot be deleted.
func TestServers(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)

	b, err := st.EnsureBuiltinServer(ctx, store.Server{Runtime: store.ServerDocker, DockerHost: "unix:///run/a.sock", MemoryBytes: 8 << 30, CPUs: 4})
	if err != nil || b.Name != store.BuiltinServer || b.Runtime != store.ServerDocker || b.DockerHost != "unix:///run/a.sock" || b.CPUs != 4 {
		t.Fatalf("EnsureBuiltinServer: %+v, %v", b, err)
	}
	in := store.Server{Name: "edge-1", Runtime: store.ServerDocker, DockerHost: "tcp://10.0.0.5:2376",
		TLSCA: []byte("sealed-ca"), TLSCert: []byte("sealed-cert"), TLSKey: []byte("sealed-key"), MemoryBytes: 16 << 30, CPUs: 8, StorageBytes: 100 << 30}
	sv, err := st.CreateServer(ctx, in)
	if err != nil {
		t.Fatal(err)
	}
	if sv.Status != store.ServerUnknown || string(sv.TLSKey) != "sealed-key" || sv.StorageBytes != 100<<30 {
		t.Errorf("created server: %+v", sv)
	}
	if _, err := st.CreateServer(ctx, in); !errors.Is(err, store.ErrConflict) {
		t.Errorf("the same name again: %v, want ErrConflict", err)
	}
	svs, err := st.ListServers(ctx)
	if err != nil || len(svs) != 2 || svs[0].Name != store.BuiltinServer || svs[1].Name != "edge-1" {
		t.Fatalf("ListServers: %+v, %v; want local then edge-1", svs, err)
	}

	at := time.Now().Truncate(time.Millisecond)
	if err := st.SetServerStatus(ctx, "edge-1", store.ServerOffline, "connection refused", at); err != nil {
		t.Fatal(err)
	}
	if got, err := st.GetServer(ctx, "edge-1"); err != nil || got.Status != store.ServerOffline || got.Reason != "connection refused" || got.CheckedAt == nil || !got.CheckedAt.Equal(at) {
		t.Errorf("after SetServerStatus: %+v, %v", got, err)
	}
	// The built-in server's status survives the next start.
	st.SetServerStatus(ctx, store.BuiltinServer, store.ServerOnline, "", at) //nolint:errcheck
	if b, err := st.EnsureBuiltinServer(ctx, store.Server{Runtime: store.ServerLocal}); err != nil || b.Status != store.ServerOnline || b.Runtime != store.ServerLocal {
		t.Errorf("EnsureBuiltinServer again: %+v, %v", b, err)
	}

	e, err := st.CreateEnvironment(ctx, store.Environment{Name: "shop", OdooVersion: "18.0", Stage: "production", Plan: "pro", Server: "edge-1"})
	if err != nil || e.Server != "edge-1" {
		t.Fatalf("CreateEnvironment on edge-1: %+v, %v", e, err)
	}
	if got, err := st.EnvironmentServer(ctx, "shop"); err != nil || got != "edge-1" {
		t.Errorf("EnvironmentServer: %q, %v", got, err)
	}
	if _, err := st.EnvironmentServer(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("EnvironmentServer of no environment: %v, want ErrNotFound", err)
	}
	if d, err := st.CreateEnvironment(ctx, store.Environment{Name: "dev", OdooVersion: "18.0", Stage: "development", Plan: "starter"}); err != nil || d.Server != store.BuiltinServer {
		t.Errorf("CreateEnvironment without a server: %+v, %v; want the built-in one", d, err)
	}
	if _, err := st.CreateEnvironment(ctx, store.Environment{Name: "lost", OdooVersion: "18.0", Stage: "development", Plan: "starter", Server: "gone"}); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("CreateEnvironment on a server that does not exist: %v, want ErrNotFound", err)
	}

	if err := st.DeleteServer(ctx, "edge-1"); !errors.Is(err, store.ErrServerInUse) {
		t.Fatalf("delete a server with an environment: %v, want ErrServerInUse", err)
	}
	if err := st.DeleteEnvironment(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	if err := st.DeleteServer(ctx, "edge-1"); err != nil {
		t.Fatalf("delete an empty server: %v", err)
	}
	if err := st.DeleteServer(ctx, "edge-1"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("delete it again: %v, want ErrNotFound", err)
	}
}

// TestCreateEnvironmentPlacedOneAtATime: creations that race for a
// server's last room are placed one at a time; only one gets it.
func TestCreateEnvironmentPlacedOneAtATime(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	if _, err := st.CreateServer(ctx, store.Server{Name: "edge", Runtime: store.ServerDocker, DockerHost: "unix:///run/edge.sock"}); err != nil {
		t.Fatal(err)
	}
	errFull := errors.New("edge is full")
	// Room for one environment: the placement reads what is there, and
	// takes its time, as a real one asking the servers would.
	place := func(ctx context.Context) (string, error) {
		envs, err := st.ListEnvironments(ctx)
		if err != nil {
			return "", err
		}
		time.Sleep(50 * time.Millisecond)
		if len(envs) > 0 {
			return "", errFull
		}
		return "edge", nil
	}
	const n = 6
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := st.CreateEnvironmentPlaced(ctx, store.Environment{Name: fmt.Sprintf("race-%d", i), OdooVersion: "18.0", Stage: "staging", Plan: "starter"}, place)
			errs <- err
		}()
	}
	created := 0
	for range n {
		switch err := <-errs; {
		case err == nil:
			created++
		case !errors.Is(err, errFull):
			t.Errorf("a creation failed otherwise: %v", err)
		}
	}
	envs, _ := st.ListEnvironments(ctx)
	if created != 1 || len(envs) != 1 || envs[0].Server != "edge" {
		t.Errorf("%d created, %d stored (%+v); want exactly one on edge", created, len(envs), envs)
	}
}
