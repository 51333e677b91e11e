package local_test

import (
	"os"
	"path/filepath"
	"testing"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/provisioner/runtime/runtimetest"
)

func newRuntime(t *testing.T) *local.Runtime {
	t.Helper()
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("PostgreSQL server binaries are required: %v", err)
	}
	rt, err := local.New(local.Config{Root: filepath.Join(t.TempDir(), "envs"), BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return newRuntime(t) }, func(t *testing.T) int { return testkit.FreePort(t) })
}

func TestLayoutAndWriteFile(t *testing.T) {
	rt := newRuntime(t)
	ctx := t.Context()
	id := runtime.InstanceID{Env: "layout", Role: runtime.RolePrimary}
	t.Cleanup(func() { rt.Remove(t.Context(), id) })
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: testkit.FreePort(t)}); err != nil {
		t.Fatal(err)
	}
	dir := rt.InstanceDir(id)
	for _, p := range []string{"pgdata/PG_VERSION", "run", "postgresql.log"} {
		if _, err := os.Stat(filepath.Join(dir, p)); err != nil {
			t.Errorf("instance folder lacks %s: %v", p, err)
		}
	}
	if err := rt.WriteFile(ctx, id, "pgbouncer/pgbouncer.ini", []byte("[pgbouncer]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	target := filepath.Join(dir, "pgbouncer", "pgbouncer.ini")
	b, err := os.ReadFile(target)
	if err != nil || string(b) != "[pgbouncer]\n" {
		t.Fatalf("written file = %q, %v", b, err)
	}
	fi, _ := os.Stat(target)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v, want 0600", fi.Mode().Perm())
	}
	// A symlink inside the instance folder must not lead WriteFile out of it.
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	if err := rt.WriteFile(ctx, id, "link/escape.txt", []byte("x"), 0o600); err == nil {
		t.Error("WriteFile followed a symlink out of the instance folder")
	}
}

func TestLongPathsUseShortSocketFolder(t *testing.T) {
	bin, err := pgexec.FindBinDir("")
	if err != nil {
		t.Fatal(err)
	}
	deep := filepath.Join(t.TempDir(), "a-rather-long-folder-name-like-a-ci-checkout", "data", "envs")
	rt, err := local.New(local.Config{Root: deep, BinDir: bin})
	if err != nil {
		t.Fatal(err)
	}
	id := runtime.InstanceID{Env: "an-environment-name-that-is-quite-long-for-a-socket", Role: runtime.RolePrimary}
	t.Cleanup(func() { rt.Remove(t.Context(), id) })
	ctx := t.Context()
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: testkit.FreePort(t)}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	st, err := rt.Status(ctx, id)
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("status = %+v, %v", st, err)
	}
	c, err := rt.Cluster(id)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.Remove(ctx, id); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(c.SocketDir); !os.IsNotExist(err) {
		t.Errorf("short socket folder %s left after remove: %v", c.SocketDir, err)
	}
}
