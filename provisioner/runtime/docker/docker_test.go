package docker_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/network"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/provisioner/runtime/runtimetest"
)

// engine is the private dockerd of this test binary, with the test image.
var engine *dockertest.Daemon

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	d, err := dockertest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if err := dockertest.LoadImage(context.Background(), d.Host); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	engine = d
	return m.Run()
}

// newRuntime returns a Docker runtime on the test engine with its own root
// folder.
func newRuntime(t testing.TB) *docker.Runtime {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rt, err := docker.New(docker.Config{
		Host:   engine.Host,
		Image:  dockertest.ImageTag,
		Root:   t.TempDir(),
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return newRuntime(t) }, func(t *testing.T) int { return testkit.FreePort(t) })
}

func primary(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
}

// startPrimary creates and starts a primary, removed with its environment
// when the test ends.
func startPrimary(t *testing.T, rt *docker.Runtime, env string, res runtime.Resources) runtime.InstanceID {
	t.Helper()
	id := primary(env)
	t.Cleanup(func() {
		if err := rt.RemoveEnv(context.WithoutCancel(t.Context()), env); err != nil {
			t.Errorf("remove %s: %v", env, err)
		}
	})
	spec := runtime.Spec{ID: id, Port: testkit.FreePort(t), Resources: res,
		HBA: []string{"host all all " + rt.ClientNetwork(env) + " trust"}}
	if err := rt.Create(t.Context(), spec); err != nil {
		t.Fatalf("create %s: %v", id, err)
	}
	if err := rt.Start(t.Context(), id); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	return id
}

func psql(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, sql string) string {
	t.Helper()
	out, err := rt.Exec(t.Context(), id, nil, "psql", "-X", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
	if err != nil {
		t.Fatalf("psql %q in %s: %v", sql, id, err)
	}
	return strings.TrimSpace(string(out))
}

func wantState(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, want runtime.State) runtime.Status {
	t.Helper()
	st, err := rt.Status(t.Context(), id)
	if err != nil {
		t.Fatalf("status %s: %v", id, err)
	}
	if st.State != want {
		t.Fatalf("status %s = %+v, want %s", id, st, want)
	}
	return st
}

// waitState waits until the instance reaches want.
func waitState(t *testing.T, rt runtime.Runtime, id runtime.InstanceID, want runtime.State, timeout time.Duration) runtime.Status {
	t.Helper()
	var st runtime.Status
	testkit.Eventually(t, fmt.Sprintf("%s %s", id, want), timeout, func() (bool, string) {
		var err error
		st, err = rt.Status(t.Context(), id)
		return err == nil && st.State == want, fmt.Sprintf("%+v, %v", st, err)
	})
	return st
}

// containerIP is the instance's address on its environment's network.
func containerIP(t *testing.T, rt *docker.Runtime, id runtime.InstanceID) string {
	t.Helper()
	c, err := rt.Client().ContainerInspect(t.Context(), docker.ContainerName(id))
	if err != nil {
		t.Fatal(err)
	}
	n := c.NetworkSettings.Networks[docker.NetworkName(id.Env)]
	if n == nil || n.IPAddress == "" {
		t.Fatalf("%s has no address on %s: %+v", id, docker.NetworkName(id.Env), c.NetworkSettings.Networks)
	}
	return n.IPAddress
}

// TestIsolation: a container of one environment reaches its own primary
// over the environment's network, and neither the name nor the address of
// another environment's primary.
func TestIsolation(t *testing.T) {
	rt := newRuntime(t)
	a, b := startPrimary(t, rt, "iso-a", runtime.Resources{}), startPrimary(t, rt, "iso-b", runtime.Resources{})
	_, portA := rt.PeerAddress(a)
	hostB, portB := rt.PeerAddress(b)
	ipB := containerIP(t, rt, b)

	isready := func(from runtime.InstanceID, host string, port int) error {
		out, err := rt.Exec(t.Context(), from, nil, "pg_isready", "-h", host, "-p", strconv.Itoa(port), "-t", "3")
		t.Logf("pg_isready -h %s -p %d in %s: %s (%v)", host, port, from, strings.TrimSpace(string(out)), err)
		return err
	}
	if err := isready(a, docker.ContainerName(a), portA); err != nil {
		t.Fatalf("env a cannot reach its own primary over its network: %v", err)
	}
	if err := isready(a, containerIP(t, rt, a), portA); err != nil {
		t.Fatalf("env a cannot reach its own primary's address: %v", err)
	}
	if err := isready(a, ipB, portB); err == nil {
		t.Fatalf("env a reaches env b's primary at %s:%d", ipB, portB)
	}
	if err := isready(a, hostB, portB); err == nil {
		t.Fatalf("env a reaches env b's primary by name %s", hostB)
	}
	if na, nb := rt.ClientNetwork("iso-a"), rt.ClientNetwork("iso-b"); na == nb || na == "" {
		t.Fatalf("client networks %q and %q, want two different subnets", na, nb)
	}
}

// TestContainerShape: labels, restart policy, limits from the spec's
// resources, the data volume, and the environment's network and filestore
// volume (bound to the folder Odoo sees).
func TestContainerShape(t *testing.T) {
	rt := newRuntime(t)
	id := startPrimary(t, rt, "shape", runtime.Resources{MemoryMB: 256, CPUs: 0.5})
	c, err := rt.Client().ContainerInspect(t.Context(), docker.ContainerName(id))
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{"pgdeck.managed": "true", "pgdeck.env": "shape", "pgdeck.role": "primary"} {
		if c.Config.Labels[k] != v {
			t.Errorf("label %s = %q, want %q", k, c.Config.Labels[k], v)
		}
	}
	if p := c.HostConfig.RestartPolicy.Name; p != container.RestartPolicyUnlessStopped {
		t.Errorf("restart policy %q, want unless-stopped", p)
	}
	if m := c.HostConfig.Memory; m != 256<<20 {
		t.Errorf("memory limit %d, want %d", m, 256<<20)
	}
	if n := c.HostConfig.NanoCPUs; n != 5e8 {
		t.Errorf("NanoCPUs %d, want 5e8", n)
	}
	if c.Config.User != "postgres" {
		t.Errorf("user %q, want postgres", c.Config.User)
	}
	if len(c.Mounts) != 1 || c.Mounts[0].Name != docker.VolumeName(id) {
		t.Errorf("mounts %+v, want the volume %s", c.Mounts, docker.VolumeName(id))
	}
	if got := psql(t, rt, id, "show shared_buffers"); got == "" {
		t.Errorf("shared_buffers empty")
	}
	if err := rt.MakeEnvDir(t.Context(), "shape", "filestore", runtime.Owner{}); err != nil {
		t.Fatal(err)
	}
	v, err := rt.Client().VolumeInspect(t.Context(), docker.FilestoreVolume("shape"))
	if err != nil {
		t.Fatalf("filestore volume: %v", err)
	}
	if v.Options["device"] != rt.EnvPath("shape", "filestore") || v.Options["o"] != "bind" {
		t.Errorf("filestore volume options %v, want a bind of %s", v.Options, rt.EnvPath("shape", "filestore"))
	}
	if err := rt.RemoveEnv(t.Context(), "shape"); err != nil {
		t.Fatal(err)
	}
	if _, err := rt.Client().VolumeInspect(t.Context(), docker.FilestoreVolume("shape")); err == nil {
		t.Errorf("filestore volume still there after RemoveEnv")
	}
	if _, err := rt.Client().NetworkInspect(t.Context(), docker.NetworkName("shape"), network.InspectOptions{}); err == nil {
		t.Errorf("network still there after RemoveEnv")
	}
}

// TestKillAndRecreate: a primary killed through the engine is broken with
// a reason until Start; a container removed by hand is made again by
// Create from the volume, with the data intact.
func TestKillAndRecreate(t *testing.T) {
	rt := newRuntime(t)
	id := startPrimary(t, rt, "kill", runtime.Resources{})
	psql(t, rt, id, "create table keep (note text); insert into keep values ('before')")
	ctx := t.Context()

	if err := rt.Client().ContainerKill(ctx, docker.ContainerName(id), "SIGKILL"); err != nil {
		t.Fatal(err)
	}
	st := waitState(t, rt, id, runtime.StateBroken, 30*time.Second)
	if !strings.Contains(st.Reason, "137") {
		t.Errorf("reason %q, want the exit code", st.Reason)
	}
	t.Logf("after docker kill: %s", st.Reason)
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	wantState(t, rt, id, runtime.StateRunning)

	if err := rt.Client().ContainerRemove(ctx, docker.ContainerName(id), container.RemoveOptions{Force: true}); err != nil {
		t.Fatal(err)
	}
	wantState(t, rt, id, runtime.StateMissing)
	_, port := rt.Address(id)
	if port != 0 {
		t.Errorf("address of a removed container: port %d", port)
	}
	p := testkit.FreePort(t)
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: p, HBA: []string{"host all all " + rt.ClientNetwork(id.Env) + " trust"}}); err != nil {
		t.Fatal(err)
	}
	if err := rt.Start(ctx, id); err != nil {
		t.Fatal(err)
	}
	if got := psql(t, rt, id, "select note from keep"); got != "before" {
		t.Fatalf("row after re-creating the container = %q, want before", got)
	}

	// A changed port re-creates the container of a running primary, which
	// runs again at once on the new port with the same data.
	p2 := testkit.FreePort(t)
	if err := rt.Create(ctx, runtime.Spec{ID: id, Port: p2, HBA: []string{"host all all " + rt.ClientNetwork(id.Env) + " trust"}}); err != nil {
		t.Fatal(err)
	}
	wantState(t, rt, id, runtime.StateRunning)
	if _, got := rt.Address(id); got != p2 {
		t.Fatalf("port after the change = %d, want %d", got, p2)
	}
	if got := psql(t, rt, id, "select note from keep"); got != "before" {
		t.Fatalf("row after the port change = %q, want before", got)
	}
	if got := psql(t, rt, id, "show port"); got != strconv.Itoa(p2) {
		t.Fatalf("port inside = %s, want %d", got, p2)
	}
}

// TestDaemonRestart: after dockerd restarts, a running instance runs again
// (restart policy), a stopped one stays stopped, and a fresh runtime finds
// both from their labels.
func TestDaemonRestart(t *testing.T) {
	rt := newRuntime(t)
	up := startPrimary(t, rt, "restart-up", runtime.Resources{})
	down := startPrimary(t, rt, "restart-down", runtime.Resources{})
	psql(t, rt, up, "create table keep (note text); insert into keep values ('before')")
	if err := rt.Stop(t.Context(), down); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if err := engine.Restart(); err != nil {
		t.Fatal(err)
	}
	t.Logf("dockerd restarted in %s", time.Since(start).Round(time.Millisecond))

	fresh := newRuntime(t)
	waitState(t, fresh, up, runtime.StateRunning, 60*time.Second)
	wantState(t, fresh, down, runtime.StateStopped)
	if got := psql(t, fresh, up, "select note from keep"); got != "before" {
		t.Fatalf("row after the restart = %q", got)
	}
	ids, err := fresh.List(t.Context())
	if err != nil || !slices.Contains(ids, up) || !slices.Contains(ids, down) {
		t.Fatalf("List after the restart = %v, %v", ids, err)
	}
	if err := fresh.Start(t.Context(), down); err != nil {
		t.Fatal(err)
	}
}

// TestSecondEngine: a second private engine gets its own address pool, so
// that environments on two servers never share a subnet.
func TestSecondEngine(t *testing.T) {
	d2 := dockertest.Engine(t)
	if d2.Pool == engine.Pool || d2.Host == engine.Host {
		t.Fatalf("second engine %s (%s) shares the first's %s (%s)", d2.Host, d2.Pool, engine.Host, engine.Pool)
	}
	rt2, err := docker.New(docker.Config{Host: d2.Host, Image: dockertest.ImageTag, Root: t.TempDir(), Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	defer rt2.Close()
	if err := rt2.Ping(t.Context()); err != nil {
		t.Fatal(err)
	}
	n1, n2 := newRuntime(t).ClientNetwork("two"), rt2.ClientNetwork("two")
	if n1 == "" || n2 == "" || n1 == n2 {
		t.Fatalf("the same environment's subnets on two engines: %q and %q", n1, n2)
	}
	pool := strings.Join(strings.Split(d2.Pool, ".")[:2], ".") + "."
	if !strings.HasPrefix(n2, pool) {
		t.Fatalf("subnet %s is not in the second engine's pool %s", n2, d2.Pool)
	}
}
