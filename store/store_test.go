package store_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestOpenAppliesEveryMigration(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	if store.LatestVersion() < 1 {
		t.Fatalf("LatestVersion() = %d, want at least 1 (migrations are embedded)", store.LatestVersion())
	}
	v, err := st.SchemaVersion(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v != store.LatestVersion() {
		t.Errorf("SchemaVersion = %d, want LatestVersion %d", v, store.LatestVersion())
	}
	var n int
	if err := st.Pool.QueryRow(ctx, "SELECT count(*) FROM schema_migrations").Scan(&n); err != nil {
		t.Fatal(err)
	}
	// Versions may have gaps (branches number their migrations apart):
	// one row per embedded file.
	files, err := filepath.Glob(filepath.Join("migrations", "*.sql"))
	if err != nil || len(files) == 0 {
		t.Fatalf("migrations/*.sql: %v, %d files", err, len(files))
	}
	if n != len(files) {
		t.Errorf("schema_migrations has %d rows, want one per migration (%d)", n, len(files))
	}
	// The tables the application needs are there.
	for _, table := range []string{"users", "sessions", "api_tokens", "audit_log", "environments", "jobs", "job_logs"} {
		var exists bool
		if err := st.Pool.QueryRow(ctx, "SELECT to_regclass($1) IS NOT NULL", table).Scan(&exists); err != nil {
			t.Fatal(err)
		}
		if !exists {
			t.Errorf("table %s is missing after migration", table)
		}
	}
	if err := st.Ping(ctx); err != nil {
		t.Errorf("Ping on an open store: %v", err)
	}
}

func TestMigrateTwiceIsANoOp(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	type row struct {
		version   int
		name      string
		appliedAt time.Time
	}
	read := func() []row {
		t.Helper()
		rows, err := st.Pool.Query(ctx, "SELECT version, name, applied_at FROM schema_migrations ORDER BY version")
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		var out []row
		for rows.Next() {
			var r row
			if err := rows.Scan(&r.version, &r.name, &r.appliedAt); err != nil {
				t.Fatal(err)
			}
			out = append(out, r)
		}
		if err := rows.Err(); err != nil {
			t.Fatal(err)
		}
		return out
	}
	before := read()
	for i := range 2 {
		if err := st.Migrate(ctx); err != nil {
			t.Fatalf("Migrate #%d on a migrated database: %v", i+1, err)
		}
	}
	after := read()
	if fmt.Sprint(before) != fmt.Sprint(after) {
		t.Errorf("Migrate changed schema_migrations:\nbefore %v\nafter  %v", before, after)
	}
	// Data survives a re-migration.
	if _, err := st.CreateUser(ctx, "keep@example.com", "x", store.RoleAdmin); err != nil {
		t.Fatal(err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if n, err := st.CountUsers(ctx); err != nil || n != 1 {
		t.Errorf("CountUsers after Migrate = %d, %v; want 1", n, err)
	}
}

func TestOpenRefusesANewerSchema(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	url := storetest.URL(t)
	st, err := store.Open(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	newer := store.LatestVersion() + 1
	_, err = st.Pool.Exec(ctx, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", newer, "from_the_future.sql")
	if err != nil {
		t.Fatal(err)
	}

	// The running store refuses to migrate it…
	err = st.Migrate(ctx)
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Migrate on a newer schema: err = %v, want ErrSchemaTooNew", err)
	}
	st.Close()

	// …and a new Open refuses to serve it, saying which versions.
	st2, err := store.Open(ctx, url)
	if err == nil {
		st2.Close()
		t.Fatal("Open on a schema newer than this binary succeeded")
	}
	if !errors.Is(err, store.ErrSchemaTooNew) {
		t.Errorf("Open: err = %v, want ErrSchemaTooNew", err)
	}
	for _, want := range []string{fmt.Sprintf("version %d", newer), fmt.Sprintf("up to %d", store.LatestVersion()), "newer pgdeck"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("Open error %q does not mention %q", err, want)
		}
	}
}

func TestErrorsAreWrapped(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	_, err := st.EnvironmentByName(ctx, "missing-env")
	if !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("err = %v, want ErrNotFound", err)
	}
	if !strings.Contains(err.Error(), `"missing-env"`) {
		t.Errorf("error %q does not say what was looked up", err)
	}
}
