package store_test

import (
	"context"
	"errors"
	"testing"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

// mustCreateEnvironment creates a development starter environment on Odoo 18.0.
func mustCreateEnvironment(t *testing.T, st *store.Store, name string) store.Environment {
	t.Helper()
	e, err := st.CreateEnvironment(context.Background(), store.Environment{Name: name, OdooVersion: "18.0", Stage: "development", Plan: "starter"})
	if err != nil {
		t.Fatalf("CreateEnvironment(%q): %v", name, err)
	}
	return e
}

func TestEnvironments(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	e, err := st.CreateEnvironment(ctx, store.Environment{Name: "shop-prod", OdooVersion: "17.0", Stage: "production", Plan: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	if e.ID == 0 || e.Name != "shop-prod" || e.OdooVersion != "17.0" || e.Stage != "production" || e.Plan != "pro" {
		t.Errorf("CreateEnvironment returned %+v", e)
	}
	if e.DesiredState != "running" {
		t.Errorf("new environment desired state = %q, want running", e.DesiredState)
	}
	if e.CreatedAt.IsZero() || e.Deployed() || e.Port != nil {
		t.Errorf("new environment: created %v, deployed %v, port %v", e.CreatedAt, e.Deployed(), e.Port)
	}

	t.Run("duplicate name is a conflict", func(t *testing.T) {
		_, err := st.CreateEnvironment(ctx, store.Environment{Name: "shop-prod", OdooVersion: "18.0", Stage: "staging", Plan: "starter"})
		if !errors.Is(err, store.ErrConflict) {
			t.Errorf("err = %v, want ErrConflict", err)
		}
	})

	t.Run("list is ordered by name", func(t *testing.T) {
		for _, n := range []string{"zeta", "alpha", "mid-one"} {
			mustCreateEnvironment(t, st, n)
		}
		envs, err := st.ListEnvironments(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range envs {
			names = append(names, e.Name)
		}
		want := []string{"alpha", "mid-one", "shop-prod", "zeta"}
		if len(names) != len(want) {
			t.Fatalf("ListEnvironments = %v, want %v", names, want)
		}
		for i := range want {
			if names[i] != want[i] {
				t.Fatalf("ListEnvironments = %v, want %v", names, want)
			}
		}
	})

	t.Run("by name and by id", func(t *testing.T) {
		got, err := st.EnvironmentByName(ctx, "shop-prod")
		if err != nil || got.ID != e.ID || got.Plan != "pro" {
			t.Errorf("EnvironmentByName = %+v, %v", got, err)
		}
		got, err = st.EnvironmentByID(ctx, e.ID)
		if err != nil || got.Name != "shop-prod" {
			t.Errorf("EnvironmentByID = %+v, %v", got, err)
		}
		if _, err := st.EnvironmentByName(ctx, "nope"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EnvironmentByName(nope) err = %v, want ErrNotFound", err)
		}
		if _, err := st.EnvironmentByID(ctx, e.ID+1000); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("EnvironmentByID(unknown) err = %v, want ErrNotFound", err)
		}
	})

	t.Run("stage and plan are checked by the database", func(t *testing.T) {
		for _, bad := range []store.Environment{
			{Name: "bad-stage", OdooVersion: "18.0", Stage: "qa", Plan: "starter"},
			{Name: "bad-plan", OdooVersion: "18.0", Stage: "staging", Plan: "gold"},
		} {
			if _, err := st.CreateEnvironment(ctx, bad); err == nil {
				t.Errorf("CreateEnvironment(%+v) succeeded", bad)
			}
		}
	})
}

func TestEnvironmentPortsAndState(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	a := mustCreateEnvironment(t, st, "env-a")
	b := mustCreateEnvironment(t, st, "env-b")

	got, err := st.SetPort(ctx, a.ID, 25432)
	if err != nil || got != 25432 {
		t.Fatalf("SetPort(a) = %d, %v", got, err)
	}
	// A port once recorded is kept.
	if got, err := st.SetPort(ctx, a.ID, 25433); err != nil || got != 25432 {
		t.Errorf("second SetPort(a) = %d, %v; want the recorded 25432", got, err)
	}
	if _, err := st.SetPort(ctx, b.ID, 25432); !errors.Is(err, store.ErrConflict) {
		t.Errorf("SetPort(b) to a's port: err = %v, want ErrConflict", err)
	}
	used, err := st.UsedPorts(ctx)
	if err != nil || !used[25432] || len(used) != 1 {
		t.Errorf("UsedPorts = %v, %v", used, err)
	}

	if err := st.SetDesiredState(ctx, a.ID, "stopped"); err != nil {
		t.Fatal(err)
	}
	if err := st.MarkDeployed(ctx, a.ID); err != nil {
		t.Fatal(err)
	}
	a, err = st.EnvironmentByID(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if a.DesiredState != "stopped" || !a.Deployed() {
		t.Errorf("after SetDesiredState and MarkDeployed: %+v", a)
	}

	if err := st.DeleteEnvironment(ctx, b.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := st.EnvironmentByName(ctx, "env-b"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("deleted environment still found: %v", err)
	}
}
