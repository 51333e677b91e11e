package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"sync"
	"testing"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

// TestDatabaseSettings: nothing saved reads as empty; an update saves what
// it changed and leaves the applied snapshot alone; a refused change saves
// nothing; parallel updates of one environment all land.
func TestDatabaseSettings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	env := mustCreateEnvironment(t, st, "shop")

	d, err := st.DatabaseSettings(ctx, env.ID)
	if err != nil || len(d.Parameters) != 0 || d.PgBouncer.Enabled || d.Applied != nil {
		t.Fatalf("DatabaseSettings of a new environment = %+v, %v; want empty", d, err)
	}
	if err := st.SetAppliedSettings(ctx, env.ID, json.RawMessage(`{"postgresql_conf": {"work_mem": "4MB"}}`)); err != nil {
		t.Fatal(err)
	}
	d, err = st.UpdateDatabaseSettings(ctx, env.ID, func(d *store.DatabaseSettings) error {
		d.Parameters["work_mem"] = "8MB"
		d.PgBouncer = store.PoolerSettings{Enabled: true, PoolSize: 30, PoolMode: "transaction", MaxClientConn: 200}
		return nil
	})
	if err != nil || d.Parameters["work_mem"] != "8MB" || d.PgBouncer.PoolSize != 30 || d.Applied == nil || d.AppliedAt == nil {
		t.Fatalf("UpdateDatabaseSettings = %+v, %v", d, err)
	}
	refused := errors.New("refused")
	if _, err := st.UpdateDatabaseSettings(ctx, env.ID, func(d *store.DatabaseSettings) error {
		d.Parameters["work_mem"] = "1GB"
		return refused
	}); !errors.Is(err, refused) {
		t.Fatalf("a refused change returned %v, want its own error", err)
	}
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Go(func() {
			if _, err := st.UpdateDatabaseSettings(ctx, env.ID, func(d *store.DatabaseSettings) error {
				d.Parameters[string(rune('a'+i))] = "1"
				return nil
			}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	d, err = st.DatabaseSettings(ctx, env.ID)
	if err != nil || d.Parameters["work_mem"] != "8MB" || len(d.Parameters) != 9 {
		t.Fatalf("after parallel updates: %v, %v; want work_mem 8MB and 8 more", d.Parameters, err)
	}
	if _, err := st.UpdateDatabaseSettings(ctx, 999999, func(*store.DatabaseSettings) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("update of a missing environment: %v, want ErrNotFound", err)
	}
}
