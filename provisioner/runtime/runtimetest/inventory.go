package runtimetest

import (
	"os"
	"slices"
	"strings"
	"testing"

	"pgdeck/provisioner/runtime"
)

// testInventory: List shows what the runtime holds (not what a store
// says), addresses come from the runtime, and an environment's own files
// live in its scope and go with RemoveEnv.
func testInventory(t *testing.T, rt runtime.Runtime, port int) {
	ctx := t.Context()
	id := primary("suite-inv")
	t.Cleanup(func() { rt.RemoveEnv(ctx, id.Env) })

	list := func() []runtime.InstanceID {
		t.Helper()
		ids, err := rt.List(ctx)
		if err != nil {
			t.Fatalf("list: %v", err)
		}
		return ids
	}
	if slices.Contains(list(), id) {
		t.Fatalf("List shows %s before it was created", id)
	}
	if _, p := rt.Address(id); p != 0 {
		t.Errorf("Address of a missing instance: port %d, want 0", p)
	}
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: port}); err != nil {
		t.Fatal(err)
	}
	if !slices.Contains(list(), id) {
		t.Errorf("List = %v, want it to hold %s", list(), id)
	}
	if host, p := rt.Address(id); host == "" || p != port {
		t.Errorf("Address = %s:%d, want the allocated port %d", host, p, port)
	}
	if host, p := rt.PeerAddress(id); host == "" || p == 0 {
		t.Errorf("PeerAddress = %s:%d", host, p)
	}
	if n := rt.ClientNetwork(id.Env); !strings.Contains(n, "/") {
		t.Errorf("ClientNetwork = %q, want an address with a mask", n)
	}
	for _, bad := range []runtime.Spec{
		{ID: primary("suite-inv-b"), Port: port + 1, Init: runtime.Init{Kind: "clone"}},
		{ID: primary("suite-inv-p"), Port: port + 1, Program: "redis"},
	} {
		if err := rt.Create(ctx, bad); err == nil {
			rt.RemoveEnv(ctx, bad.ID.Env)
			t.Errorf("Create accepted init %q / program %q", bad.Init.Kind, bad.Program)
		}
	}

	// Environment-level files: where Odoo finds them, in the runtime's scope.
	if err := rt.MakeEnvDir(ctx, id.Env, "filestore", runtime.Owner{}); err != nil {
		t.Fatal(err)
	}
	if err := rt.WriteEnvFile(ctx, id.Env, "odoo.conf", []byte("[options]\n"), 0o600, runtime.Owner{}); err != nil {
		t.Fatal(err)
	}
	conf := rt.EnvPath(id.Env, "odoo.conf")
	if b, err := os.ReadFile(conf); err != nil || string(b) != "[options]\n" {
		t.Errorf("odoo.conf at %s: %q, %v", conf, b, err)
	}
	if fi, err := os.Stat(conf); err != nil || fi.Mode().Perm() != 0o600 {
		t.Errorf("odoo.conf mode: %v, %v; want 0600", fi, err)
	}
	if fi, err := os.Stat(rt.EnvPath(id.Env, "filestore")); err != nil || !fi.IsDir() {
		t.Errorf("filestore: %v, %v", fi, err)
	}
	for _, rel := range []string{"../other/odoo.conf", "/etc/passwd", "primary/pgdata/pg_hba.conf"} {
		if err := rt.WriteEnvFile(ctx, id.Env, rel, []byte("x"), 0o600, runtime.Owner{}); err == nil {
			t.Errorf("WriteEnvFile accepted %q", rel)
		}
	}
	if err := rt.WriteEnvFile(ctx, "../x", "odoo.conf", []byte("x"), 0o600, runtime.Owner{}); err == nil {
		t.Error("WriteEnvFile accepted the environment ../x")
	}

	if err := rt.RemoveEnv(ctx, id.Env); err != nil {
		t.Fatal(err)
	}
	if slices.Contains(list(), id) {
		t.Errorf("List still shows %s after RemoveEnv", id)
	}
	if _, err := os.Stat(conf); !os.IsNotExist(err) {
		t.Errorf("odoo.conf after RemoveEnv: %v", err)
	}
	if !portFree(port) {
		t.Errorf("port %d still taken after RemoveEnv", port)
	}
}
