package provisioner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/monitor"
	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/fleet"
	"pgdeck/store"
)

// serversHarness is a harness over two private Docker engines: A is the
// built-in server (PGDECK_RUNTIME=docker), B is registered as a server.
type serversHarness struct {
	*harness
	a, b    *dockertest.Daemon
	image   string
	servers *provisioner.Servers
	fleet   *fleet.Fleet
	// builtin is the built-in server's own runtime (A's).
	builtin runtime.Runtime
}

func newServersHarness(t *testing.T, builtin store.Server) *serversHarness {
	t.Helper()
	a := dockertest.Engine(t)
	return newServersHarnessOn(t, builtin, a, dockertest.Engine(t))
}

// newServersHarnessOn is newServersHarness on engines the test started.
func newServersHarnessOn(t *testing.T, builtin store.Server, a, b *dockertest.Daemon) *serversHarness {
	t.Helper()
	h := newDockerHarnessOn(t, a)
	image := dockertest.Image(t, a)
	dockertest.Image(t, b)
	rt := h.rt
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	// As serve.go does: this host's runtime is the built-in server, the
	// fleet sends each call to the environment's server.
	builtin.Runtime, builtin.DockerHost = store.ServerDocker, a.Host
	if _, err := h.st.EnsureBuiltinServer(t.Context(), builtin); err != nil {
		t.Fatal(err)
	}
	servers := provisioner.NewServers(provisioner.ServersConfig{Builtin: rt, Image: image, Root: h.root}, h.st, h.box, log)
	t.Cleanup(servers.Close)
	fl := fleet.New(servers, log)
	h.rt = fl
	h.p = provisioner.New(provisioner.Config{
		PortLow: h.lo, PortHigh: h.hi, Workers: 2, PollInterval: 50 * time.Millisecond,
		BackupDir: h.backups, PgRestore: h.pgRestore,
		Capacity: render.Resources{Memory: builtin.MemoryBytes, CPUs: builtin.CPUs, Storage: builtin.StorageBytes},
	}, h.st, fl, h.box, log, provisioner.WithServers(servers))
	return &serversHarness{harness: h, a: a, b: b, image: image, servers: servers, fleet: fl, builtin: rt}
}

// createOn creates an environment where PlaceEnvironment puts it (choice
// "" lets pgdeck choose) and deploys it.
func (h *serversHarness) createOn(name, plan, choice string) store.Environment {
	h.t.Helper()
	server, err := h.p.PlaceEnvironment(h.t.Context(), plan, choice)
	if err != nil {
		h.t.Fatalf("place %s: %v", name, err)
	}
	if _, err := h.st.CreateEnvironment(h.t.Context(), store.Environment{Name: name, OdooVersion: "18.0", Stage: "staging", Plan: plan, Server: server}); err != nil {
		h.t.Fatal(err)
	}
	h.succeed(name, provisioner.KindDeploy)
	return h.env(name)
}

// containersOn returns the names of pgdeck's containers of env on an engine.
func containersOn(t *testing.T, d *dockertest.Daemon, env string) []string {
	t.Helper()
	cli, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer cli.Close()
	cs, err := cli.ContainerList(t.Context(), container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", "pgdeck.env="+env))})
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, c := range cs {
		out = append(out, strings.TrimPrefix(c.Names[0], "/"))
	}
	return out
}

// fieldErr returns the message of field in a *ServerInvalidError, "" when
// err is not one or has none for it.
func fieldErr(err error, field string) string {
	var se *provisioner.ServerInvalidError
	if !errors.As(err, &se) {
		return ""
	}
	return se.Fields[field]
}

// TestServersOnTwoEngines: a second Docker engine registered as a server;
// new environments are placed on both by free capacity (and where the
// operator chooses); the monitor shows a stopped engine Offline and its
// environments Error, and both come back by themselves when it returns;
// a server with environments cannot be removed.
func TestServersOnTwoEngines(t *testing.T) {
	h := newServersHarness(t, store.Server{MemoryBytes: 2 * render.GiB, CPUs: 8})
	ctx := t.Context()

	// Registrations that cannot work change nothing and say why.
	for _, c := range []struct {
		in          provisioner.ServerInput
		field, want string
	}{
		{provisioner.ServerInput{Name: "local", DockerHost: h.b.Host}, "name", "this host's own server"},
		{provisioner.ServerInput{Name: "Bad Name", DockerHost: h.b.Host}, "name", "lower-case"},
		{provisioner.ServerInput{Name: "nowhere", DockerHost: "unix://" + filepath.Join(t.TempDir(), "none.sock")}, "docker_host", "does not answer"},
		{provisioner.ServerInput{Name: "web", DockerHost: "http://10.0.0.5:2375"}, "docker_host", "unix socket or tcp"},
		{provisioner.ServerInput{Name: "plain-tcp", DockerHost: "tcp://127.0.0.1:2375"}, "tls", "needs TLS"},
		{provisioner.ServerInput{Name: "bad-pem", DockerHost: "tcp://127.0.0.1:2376", CA: []byte("x"), Cert: []byte("y"), Key: []byte("z")}, "tls", "tls"},
		{provisioner.ServerInput{Name: "socket-tls", DockerHost: h.b.Host, Key: []byte("k")}, "tls", "takes no TLS"},
		{provisioner.ServerInput{Name: "engine-a", DockerHost: h.a.Host}, "docker_host", "already server local"},
	} {
		_, err := h.p.RegisterServer(ctx, c.in)
		if msg := fieldErr(err, c.field); !strings.Contains(msg, c.want) {
			t.Errorf("register %+v: %v; want a %s message saying %q", c.in.Name, err, c.field, c.want)
		}
	}
	if svs, _ := h.st.ListServers(ctx); len(svs) != 1 {
		t.Fatalf("refused registrations left servers: %+v", svs)
	}

	// B has more room (3 GiB) than the built-in server A (2 GiB).
	b, err := h.p.RegisterServer(ctx, provisioner.ServerInput{Name: "srv-b", DockerHost: h.b.Host, MemoryBytes: 3 * render.GiB})
	if err != nil {
		t.Fatalf("register the second engine: %v", err)
	}
	if b.Status != store.ServerOnline || b.CPUs == 0 || b.MemoryBytes != 3*render.GiB {
		t.Errorf("registered: %+v; want online, CPUs read from the engine, the memory given", b)
	}
	if _, err := h.p.RegisterServer(ctx, provisioner.ServerInput{Name: "srv-b", DockerHost: h.b.Host}); !strings.Contains(fieldErr(err, "name"), "already exists") {
		t.Errorf("the same name again: %v", err)
	}
	if _, err := h.p.RegisterServer(ctx, provisioner.ServerInput{Name: "srv-b2", DockerHost: h.b.Host}); !strings.Contains(fieldErr(err, "docker_host"), "already server srv-b") {
		t.Errorf("the same engine under another name: %v", err)
	}

	// Placement: the roomiest server that fits; a choice is checked.
	one := h.createOn("one", render.PlanStarter, "") // B: 3 GiB free against 2
	two := h.createOn("two", render.PlanStarter, "") // then 2 against 2: the built-in one first
	if one.Server != "srv-b" || two.Server != store.BuiltinServer {
		t.Fatalf("placed one on %q and two on %q; want srv-b and local", one.Server, two.Server)
	}
	if on := containersOn(t, h.b, "one"); len(on) == 0 || len(containersOn(t, h.a, "one")) != 0 {
		t.Errorf("one's containers: %v on B, %v on A; want them on B only", on, containersOn(t, h.a, "one"))
	}
	if on := containersOn(t, h.a, "two"); len(on) == 0 || len(containersOn(t, h.b, "two")) != 0 {
		t.Errorf("two's containers: %v on A, %v on B; want them on A only", on, containersOn(t, h.b, "two"))
	}
	if _, err := h.p.PlaceEnvironment(ctx, render.PlanPro, "srv-b"); !strings.Contains(fieldErr(err, "server"), "cannot hold a Pro environment: not enough memory") {
		t.Errorf("a Pro environment on srv-b (2 GiB left): %v", err)
	}
	if _, err := h.p.PlaceEnvironment(ctx, render.PlanStarter, "nope"); !strings.Contains(fieldErr(err, "server"), "no server nope") {
		t.Errorf("a server that does not exist: %v", err)
	}
	for _, e := range []store.Environment{one, two} {
		c := h.connectAs(e)
		if _, err := c.Exec(ctx, "CREATE TABLE IF NOT EXISTS probe (x int); INSERT INTO probe VALUES (1)"); err != nil {
			t.Fatalf("%s: %v", e.Name, err)
		}
		c.Close(ctx)
	}

	// The monitor: both servers online, both environments running.
	m := monitor.New(monitor.Config{Interval: time.Hour, Timeout: 5 * time.Second, Confirm: 2}, h.st, h.fleet, h.box, slog.Default())
	health := func(e store.Environment) store.Health {
		t.Helper()
		hl, err := h.st.HealthOf(ctx, e.ID)
		if err != nil {
			t.Fatalf("health of %s: %v", e.Name, err)
		}
		return hl
	}
	server := func(name string) store.Server {
		t.Helper()
		sv, err := h.st.GetServer(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return sv
	}
	tick := func() {
		t.Helper()
		if err := m.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	tick()
	for _, e := range []store.Environment{one, two} {
		if hl := health(e); hl.Status != store.HealthRunning {
			t.Fatalf("%s: %+v, want running", e.Name, hl)
		}
	}
	if a, b := server(store.BuiltinServer), server("srv-b"); a.Status != store.ServerOnline || b.Status != store.ServerOnline || b.CheckedAt == nil {
		t.Fatalf("servers: %+v / %+v, want both online", a, b)
	}

	// B stops: Offline with the reason; its environment Error within two
	// ticks, the other one untouched; nothing new is placed on B.
	if err := h.b.Stop(); err != nil {
		t.Fatal(err)
	}
	tick()
	if sv := server("srv-b"); sv.Status != store.ServerOffline || sv.Reason == "" {
		t.Fatalf("srv-b after its engine stopped: %+v, want offline with a reason", sv)
	}
	tick()
	if hl := health(one); hl.Status != store.HealthError || !strings.Contains(hl.Reason, "server srv-b is offline") {
		t.Fatalf("one after two ticks with srv-b offline: %+v, want error naming the server", hl)
	}
	if hl := health(two); hl.Status != store.HealthRunning {
		t.Errorf("two (on the built-in server): %+v, want running", hl)
	}
	if got, err := h.p.PlaceEnvironment(ctx, render.PlanStarter, ""); err != nil || got != store.BuiltinServer {
		t.Errorf("placement while srv-b is offline: %q, %v; want local", got, err)
	}
	if _, err := h.p.PlaceEnvironment(ctx, render.PlanStarter, "srv-b"); !strings.Contains(fieldErr(err, "server"), "is offline") {
		t.Errorf("choosing the offline server: %v", err)
	}

	// B comes back: its containers start by themselves (unless-stopped)
	// and the statuses recover without an action.
	if err := h.b.StartAgain(); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "one running again after srv-b returned", 2*time.Minute, func() (bool, string) {
		tick()
		hl := health(one)
		return hl.Status == store.HealthRunning && server("srv-b").Status == store.ServerOnline, fmt.Sprintf("%+v / %+v", hl, server("srv-b"))
	})
	if jobs, err := h.st.ListJobs(ctx, "one", 100); err == nil {
		for _, j := range jobs {
			if j.Kind != string(provisioner.KindDeploy) {
				t.Errorf("a job was run to bring one back: %s", j.Kind)
			}
		}
	}
	c := h.connectAs(one)
	var n int
	if err := c.QueryRow(ctx, "SELECT count(*) FROM probe").Scan(&n); err != nil || n != 1 {
		t.Errorf("one's row after its engine restarted: %d, %v", n, err)
	}
	c.Close(ctx)

	// Removal: not while an environment lives there; the built-in never.
	if err := h.p.RemoveServer(ctx, "srv-b"); !errors.Is(err, store.ErrServerInUse) {
		t.Errorf("remove srv-b with one on it: %v, want ErrServerInUse", err)
	}
	if err := h.p.RemoveServer(ctx, store.BuiltinServer); !errors.Is(err, provisioner.ErrBuiltinServer) {
		t.Errorf("remove the built-in server: %v", err)
	}
	h.succeed("one", provisioner.KindDelete)
	if on := containersOn(t, h.b, "one"); len(on) != 0 {
		t.Errorf("one's containers after its delete: %v", on)
	}
	if err := h.p.RemoveServer(context.Background(), "srv-b"); err != nil {
		t.Fatalf("remove the empty srv-b: %v", err)
	}
	if svs, _ := h.st.ListServers(ctx); len(svs) != 1 {
		t.Errorf("servers after the removal: %+v", svs)
	}
}
