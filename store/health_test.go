package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestHealth(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	shop := mustCreateEnvironment(t, st, "shop")
	blog := mustCreateEnvironment(t, st, "blog")

	// PostgreSQL keeps microseconds.
	now := time.Now().Truncate(time.Microsecond)
	started := now.Add(-time.Hour)

	t.Run("never checked is not found", func(t *testing.T) {
		if _, err := st.HealthOf(ctx, shop.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("HealthOf = %v, want ErrNotFound", err)
		}
		all, err := st.HealthAll(ctx)
		if err != nil || len(all) != 0 {
			t.Errorf("HealthAll = %v, %v; want empty", all, err)
		}
	})

	running := store.Health{
		EnvironmentID: shop.ID, Status: store.HealthRunning, CheckedAt: now, DurationMS: 12,
		FiguresAt: &now, PGVersion: "17.5", DBSizeBytes: 7_654_321, Connections: 3, MaxConnections: 100,
		ServerStartedAt: &started,
	}
	t.Run("upsert then read back", func(t *testing.T) {
		if err := st.UpsertHealth(ctx, running); err != nil {
			t.Fatal(err)
		}
		got, err := st.HealthOf(ctx, shop.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameHealth(got, running) {
			t.Errorf("HealthOf = %+v\nwant %+v", got, running)
		}
	})

	t.Run("upsert replaces", func(t *testing.T) {
		later := now.Add(5 * time.Second)
		stale := running
		stale.Status, stale.Reason, stale.CheckedAt, stale.Stale, stale.DurationMS = store.HealthError, "health check timed out after 3s", later, true, 3000
		if err := st.UpsertHealth(ctx, stale); err != nil {
			t.Fatal(err)
		}
		got, err := st.HealthOf(ctx, shop.ID)
		if err != nil {
			t.Fatal(err)
		}
		if !sameHealth(got, stale) {
			t.Errorf("HealthOf = %+v\nwant %+v", got, stale)
		}
	})

	t.Run("health of every environment", func(t *testing.T) {
		stopped := store.Health{EnvironmentID: blog.ID, Status: store.HealthStopped, CheckedAt: now}
		if err := st.UpsertHealth(ctx, stopped); err != nil {
			t.Fatal(err)
		}
		all, err := st.HealthAll(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != 2 || all[shop.ID].Status != store.HealthError || all[blog.ID].Status != store.HealthStopped {
			t.Errorf("HealthAll = %+v", all)
		}
		if all[blog.ID].FiguresAt != nil || all[blog.ID].ServerStartedAt != nil {
			t.Errorf("stopped environment without figures got %+v", all[blog.ID])
		}
	})

	t.Run("unknown environment is not found", func(t *testing.T) {
		err := st.UpsertHealth(ctx, store.Health{EnvironmentID: 999_999, Status: store.HealthRunning, CheckedAt: now})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UpsertHealth = %v, want ErrNotFound", err)
		}
		err = st.AddHealthHistory(ctx, 999_999, store.HealthHistoryEntry{CheckedAt: now, Status: store.HealthRunning, DurationMS: 1})
		if !errors.Is(err, store.ErrNotFound) {
			t.Errorf("AddHealthHistory = %v, want ErrNotFound", err)
		}
	})

	t.Run("invalid status is refused", func(t *testing.T) {
		if err := st.UpsertHealth(ctx, store.Health{EnvironmentID: shop.ID, Status: "Running", CheckedAt: now}); err == nil {
			t.Error("UpsertHealth accepted status \"Running\"")
		}
	})

	t.Run("deleting the environment deletes its health", func(t *testing.T) {
		gone := mustCreateEnvironment(t, st, "gone")
		if err := st.UpsertHealth(ctx, store.Health{EnvironmentID: gone.ID, Status: store.HealthRunning, CheckedAt: now}); err != nil {
			t.Fatal(err)
		}
		if err := st.AddHealthHistory(ctx, gone.ID, store.HealthHistoryEntry{CheckedAt: now, Status: store.HealthRunning, DurationMS: 1}); err != nil {
			t.Fatal(err)
		}
		if err := st.DeleteEnvironment(ctx, gone.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := st.HealthOf(ctx, gone.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("HealthOf deleted environment = %v, want ErrNotFound", err)
		}
		hist, err := st.HealthHistory(ctx, gone.ID, time.Time{})
		if err != nil || len(hist) != 0 {
			t.Errorf("HealthHistory of deleted environment = %v, %v", hist, err)
		}
	})
}

func TestHealthHistory(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	shop := mustCreateEnvironment(t, st, "shop")
	other := mustCreateEnvironment(t, st, "other")
	now := time.Now().Truncate(time.Microsecond)

	// Added out of order: the history comes back oldest first.
	checks := []store.HealthHistoryEntry{
		{CheckedAt: now.Add(-10 * time.Second), Status: store.HealthRunning, DurationMS: 4},
		{CheckedAt: now.Add(-48 * time.Hour), Status: store.HealthRunning, DurationMS: 5},
		{CheckedAt: now, Status: store.HealthError, Reason: "connection refused", DurationMS: 6},
		{CheckedAt: now.Add(-25 * time.Hour), Status: store.HealthStopped, DurationMS: 7},
	}
	for _, c := range checks {
		if err := st.AddHealthHistory(ctx, shop.ID, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.AddHealthHistory(ctx, other.ID, store.HealthHistoryEntry{CheckedAt: now.Add(-30 * time.Hour), Status: store.HealthRunning, DurationMS: 1}); err != nil {
		t.Fatal(err)
	}

	hist, err := st.HealthHistory(ctx, shop.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantOrder := []int{5, 7, 4, 6} // by DurationMS, oldest first
	if len(hist) != len(wantOrder) {
		t.Fatalf("HealthHistory returned %d entries, want %d: %+v", len(hist), len(wantOrder), hist)
	}
	for i, d := range wantOrder {
		if hist[i].DurationMS != d {
			t.Errorf("entry %d: duration %d, want %d (%+v)", i, hist[i].DurationMS, d, hist)
		}
	}
	if last := hist[3]; last.Status != store.HealthError || last.Reason != "connection refused" || !last.CheckedAt.Equal(now) {
		t.Errorf("last entry = %+v", last)
	}

	recent, err := st.HealthHistory(ctx, shop.ID, now.Add(-time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(recent) != 2 {
		t.Errorf("HealthHistory since a minute ago = %+v, want 2 entries", recent)
	}

	n, err := st.PruneHealthHistory(ctx, now.Add(-24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Errorf("PruneHealthHistory deleted %d, want 3 (two of shop, one of other)", n)
	}
	hist, err = st.HealthHistory(ctx, shop.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) != 2 {
		t.Errorf("after pruning, HealthHistory = %+v, want the 2 recent entries", hist)
	}
	if n, err := st.PruneHealthHistory(ctx, now.Add(-24*time.Hour)); err != nil || n != 0 {
		t.Errorf("second prune = %d, %v; want 0", n, err)
	}
}

// sameHealth compares two health rows, times by instant.
func sameHealth(a, b store.Health) bool {
	eqTime := func(x, y *time.Time) bool {
		if x == nil || y == nil {
			return x == nil && y == nil
		}
		return x.Equal(*y)
	}
	return a.EnvironmentID == b.EnvironmentID && a.Status == b.Status && a.Reason == b.Reason &&
		a.CheckedAt.Equal(b.CheckedAt) && a.DurationMS == b.DurationMS && a.Stale == b.Stale &&
		eqTime(a.FiguresAt, b.FiguresAt) && a.PGVersion == b.PGVersion && a.DBSizeBytes == b.DBSizeBytes &&
		a.Connections == b.Connections && a.MaxConnections == b.MaxConnections &&
		eqTime(a.ServerStartedAt, b.ServerStartedAt)
}
