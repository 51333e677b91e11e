package provisioner_test

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
	"time"

	"pgdeck/internal/dockertest"
	"pgdeck/monitor"
	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/fleet"
	"pgdeck/store"
)

// TestServerOverTLS: a Docker host reached as a remote one is, over tcp
// with TLS client certificates (dockerd --tlsverify on 127.0.0.1):
// certificates the engine or pgdeck cannot trust are refused beside the
// TLS field and nothing is stored; the right ones register it Online with
// the certificates sealed in the store (and the same engine at its unix
// socket is refused: one engine, one server); an environment placed there runs
// and answers, the monitor sees both; a pgdeck started again reaches the
// engine with the certificates it unseals from the store.
func TestServerOverTLS(t *testing.T) {
	a := dockertest.Engine(t)
	b := dockertest.EngineTLS(t)
	h := newServersHarnessOn(t, store.Server{}, a, b)
	ctx := t.Context()

	untrusted, err := dockertest.UntrustedTLS()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		what  string
		files dockertest.TLSFiles
		field string
		want  string
	}{
		// pgdeck does not trust the engine's certificate.
		{"another authority's CA", dockertest.TLSFiles{CA: untrusted.CA, Cert: b.TLS.Cert, Key: b.TLS.Key}, "tls", "certificate"},
		// The engine does not take pgdeck's certificate.
		{"a client certificate the engine does not know", dockertest.TLSFiles{CA: b.TLS.CA, Cert: untrusted.Cert, Key: untrusted.Key}, "tls", "certificate"},
		// A key that is not the certificate's.
		{"a key of another certificate", dockertest.TLSFiles{CA: b.TLS.CA, Cert: b.TLS.Cert, Key: untrusted.Key}, "tls", "private key does not match"},
	} {
		in := provisioner.ServerInput{Name: "remote", DockerHost: b.TCP, CA: c.files.CA, Cert: c.files.Cert, Key: c.files.Key}
		_, err := h.p.RegisterServer(ctx, in)
		t.Logf("with %s: %s", c.what, fieldErr(err, c.field))
		if msg := fieldErr(err, c.field); !strings.Contains(msg, c.want) {
			t.Errorf("register with %s: %v; want a %s message saying %q", c.what, err, c.field, c.want)
		}
	}
	if svs, _ := h.st.ListServers(ctx); len(svs) != 1 {
		t.Fatalf("refused registrations left servers: %+v", svs)
	}

	sv, err := h.p.RegisterServer(ctx, provisioner.ServerInput{Name: "remote", DockerHost: b.TCP, CA: b.TLS.CA, Cert: b.TLS.Cert, Key: b.TLS.Key})
	if err != nil {
		t.Fatalf("register the TLS engine: %v", err)
	}
	if sv.Status != store.ServerOnline || sv.CPUs == 0 || sv.MemoryBytes == 0 {
		t.Errorf("registered: %+v; want online with memory and CPUs read from the engine", sv)
	}
	// The same engine at its other endpoint (its unix socket) is the
	// same server.
	if _, err := h.p.RegisterServer(ctx, provisioner.ServerInput{Name: "remote-again", DockerHost: b.Host}); !strings.Contains(fieldErr(err, "docker_host"), "already server remote, at another endpoint") {
		t.Errorf("the TLS engine again at its unix socket: %v", err)
	}
	// Sealed like passwords: no PEM text in the row.
	var ca, cert, key []byte
	if err := h.st.Pool.QueryRow(ctx, "SELECT tls_ca, tls_cert, tls_key FROM servers WHERE name = 'remote'").Scan(&ca, &cert, &key); err != nil {
		t.Fatal(err)
	}
	for _, col := range [][]byte{ca, cert, key} {
		if len(col) == 0 || bytes.Contains(col, []byte("-----BEGIN")) || bytes.Contains(col, b.TLS.Key[30:60]) {
			t.Fatalf("a TLS column is stored as %q; want it sealed", col)
		}
	}

	// An environment on it: containers on that engine, published on the
	// endpoint's address, answering.
	e := h.createOn("far", render.PlanStarter, "remote")
	if e.Server != "remote" {
		t.Fatalf("far is on %q, want remote", e.Server)
	}
	if on := containersOn(t, b, "far"); len(on) == 0 || len(containersOn(t, a, "far")) != 0 {
		t.Fatalf("far's containers: %v on the TLS engine, %v on the built-in one; want them on the TLS engine only", on, containersOn(t, a, "far"))
	}
	c := h.connectAs(e)
	if _, err := c.Exec(ctx, "CREATE TABLE probe (x int); INSERT INTO probe VALUES (7)"); err != nil {
		t.Fatal(err)
	}
	c.Close(ctx)

	m := monitor.New(monitor.Config{Interval: time.Hour, Timeout: 5 * time.Second, Confirm: 2}, h.st, h.fleet, h.box, slog.Default())
	for range 2 {
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if hl, err := h.st.HealthOf(ctx, e.ID); err != nil || hl.Status != store.HealthRunning {
		t.Fatalf("far's health: %+v, %v; want running", hl, err)
	}
	if got, err := h.st.GetServer(ctx, "remote"); err != nil || got.Status != store.ServerOnline {
		t.Fatalf("remote: %+v, %v; want online", got, err)
	}

	// pgdeck started again: the servers are opened from the store, the
	// certificates unsealed.
	log := slog.New(slog.NewTextHandler(t.Output(), nil))
	again := provisioner.NewServers(provisioner.ServersConfig{Builtin: h.builtin, Image: h.image, Root: h.root}, h.st, h.box, log)
	t.Cleanup(again.Close)
	st, err := fleet.New(again, log).Status(ctx, runtime.InstanceID{Env: "far", Role: runtime.RolePrimary})
	if err != nil || st.State != runtime.StateRunning {
		t.Fatalf("far's primary seen by a pgdeck started again: %+v, %v; want running", st, err)
	}

	h.succeed("far", provisioner.KindDelete)
	if on := containersOn(t, b, "far"); len(on) != 0 {
		t.Errorf("far's containers after its delete: %v", on)
	}
	if err := h.p.RemoveServer(ctx, "remote"); err != nil {
		t.Fatalf("remove the empty server: %v", err)
	}
}
