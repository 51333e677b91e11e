package provisioner_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/monitor"
	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/store"
)

// monitorCheckTimeout bounds one check of the monitor under test: far more
// than a check takes, so that a loaded machine never turns a slow answer
// into an Error the test did not cause.
const monitorCheckTimeout = 20 * time.Second

// backAfterRestart bounds how long dockerd may take to bring the
// environment's containers back after it started again.
const backAfterRestart = 2 * time.Minute

// healthWatch drives a real monitor over a harness's store and runtime one
// round at a time, and reads what it stored for one environment.
type healthWatch struct {
	h   *harness
	m   *monitor.Monitor
	env store.Environment
}

// componentHealth returns the stored health of one of the environment's
// components (zero when it was never checked).
func (w *healthWatch) componentHealth(t *testing.T, component string) store.Health {
	t.Helper()
	hl, err := w.h.st.ComponentHealth(context.Background(), w.env.ID, component)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		t.Fatal(err)
	}
	return hl
}

// lastObserved is what the latest check of a component observed, before
// confirmation.
func (w *healthWatch) lastObserved(t *testing.T, component string) store.HealthHistoryEntry {
	t.Helper()
	hist, err := w.h.st.ComponentHistory(context.Background(), w.env.ID, component, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if len(hist) == 0 {
		t.Fatalf("no %s check in the history", component)
	}
	return hist[len(hist)-1]
}

// tick runs one round and returns the stored health of the primary and the
// pooler. It fails unless the round recorded a check of both: a check
// still running (and so skipped by the next round) would make "within two
// ticks" mean something else.
func (w *healthWatch) tick(t *testing.T) (primary, pooler store.Health) {
	t.Helper()
	pBefore := w.componentHealth(t, store.ComponentPrimary).CheckedAt
	bBefore := w.componentHealth(t, store.ComponentPooler).CheckedAt
	if err := w.m.Tick(context.Background()); err != nil {
		t.Fatal(err)
	}
	primary = w.componentHealth(t, store.ComponentPrimary)
	pooler = w.componentHealth(t, store.ComponentPooler)
	if !primary.CheckedAt.After(pBefore) || !pooler.CheckedAt.After(bBefore) {
		t.Fatalf("the round did not record a check of both components: primary checked at %v (was %v), pooler at %v (was %v)",
			primary.CheckedAt, pBefore, pooler.CheckedAt, bBefore)
	}
	return primary, pooler
}

// wantHealth checks a stored health's status; any status but Running must
// come with a reason.
func wantHealth(t *testing.T, what string, hl store.Health, status string) {
	t.Helper()
	if hl.Status != status {
		t.Fatalf("%s: stored %s (%s), want %s", what, hl.Status, hl.Reason, status)
	}
	if status != store.HealthRunning && hl.Reason == "" {
		t.Fatalf("%s: stored %s without a reason", what, hl.Status)
	}
}

// twoTicks runs two rounds after a change of component from its stored
// status was to status: with Confirm 2 the first round only observes it
// (the stored status stays) and the second stores it. other, the other
// component, must stay otherStatus in both. It returns the component's
// stored health after the second round.
func (w *healthWatch) twoTicks(t *testing.T, component, was, status, other, otherStatus string) store.Health {
	t.Helper()
	pick := func(primary, pooler store.Health) (store.Health, store.Health) {
		if component == store.ComponentPrimary {
			return primary, pooler
		}
		return pooler, primary
	}
	got, o := pick(w.tick(t))
	wantHealth(t, "first round: "+component, got, was)
	if obs := w.lastObserved(t, component); obs.Status != status {
		t.Fatalf("first round: %s observed %s (%s), want %s", component, obs.Status, obs.Reason, status)
	}
	wantHealth(t, "first round: "+other, o, otherStatus)
	got, o = pick(w.tick(t))
	wantHealth(t, "second round: "+component, got, status)
	wantHealth(t, "second round: "+other, o, otherStatus)
	t.Logf("%s after two rounds: %s (%s)", component, got.Status, got.Reason)
	return got
}

// TestMonitorFaultsOnDocker runs a real monitor (Confirm 2, driven round by
// round) over one Pro environment with PgBouncer on the Docker runtime and
// breaks it as things break in production: the primary's container killed,
// PgBouncer's container killed, dockerd restarted, the primary's container
// removed by hand. Each fault is an Error with a reason at the second round
// after it, and each is mended as it would be (a Restart job, dockerd alone,
// a Redeploy job that re-creates the container from its volume with the
// data intact), after which the second round shows Running again.
func TestMonitorFaultsOnDocker(t *testing.T) {
	engine := dockertest.Engine(t)
	h := newDockerHarnessOn(t, engine)
	ctx := t.Context()
	const name = "watched"
	e := h.deploy(name)
	h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 5, PoolMode: "transaction"})
	h.succeed(name, provisioner.KindRedeploy)
	e = h.env(name)
	if e.Plan != "pro" || h.poolerPort(e) == 0 {
		t.Fatalf("plan %q, PgBouncer port %d: want a Pro environment with PgBouncer", e.Plan, h.poolerPort(e))
	}
	cli := h.rt.(*docker.Runtime).Client()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	w := &healthWatch{h: h, env: e,
		m: monitor.New(monitor.Config{Confirm: 2, Timeout: monitorCheckTimeout}, h.st, h.rt, h.box, log)}

	// The first check ever is stored as observed.
	p, b := w.tick(t)
	wantHealth(t, "first check: primary", p, store.HealthRunning)
	wantHealth(t, "first check: pooler", b, store.HealthRunning)

	// kill SIGKILLs an instance's container through the engine (docker
	// kill), which returns once it has exited.
	kill := func(t *testing.T, id runtime.InstanceID) container.InspectResponse {
		t.Helper()
		before, err := cli.ContainerInspect(ctx, docker.ContainerName(id))
		if err != nil {
			t.Fatal(err)
		}
		if err := cli.ContainerKill(ctx, docker.ContainerName(id), "SIGKILL"); err != nil {
			t.Fatal(err)
		}
		return before
	}
	// notRestarted checks that the engine left a killed container down:
	// it exited with SIGKILL's 137 and was not restarted, the restart
	// policy unless-stopped notwithstanding (the engine counts a kill
	// through its API as a manual stop).
	notRestarted := func(t *testing.T, id runtime.InstanceID, before container.InspectResponse) {
		t.Helper()
		c, err := cli.ContainerInspect(ctx, docker.ContainerName(id))
		if err != nil {
			t.Fatal(err)
		}
		t.Logf("%s after docker kill and two rounds: status %s, exit code %d, restart count %d (was %d), policy %s",
			id, c.State.Status, c.State.ExitCode, c.RestartCount, before.RestartCount, c.HostConfig.RestartPolicy.Name)
		if c.State.Running || c.State.Restarting || c.State.Status != "exited" || c.State.ExitCode != 137 || c.RestartCount != before.RestartCount {
			t.Fatalf("%s after docker kill: status %s, exit code %d, restart count %d (was %d); want exited 137, not restarted by the engine",
				id, c.State.Status, c.State.ExitCode, c.RestartCount, before.RestartCount)
		}
	}

	steps := []struct {
		name string
		run  func(t *testing.T)
	}{
		{"a killed primary is an Error until a Restart job", func(t *testing.T) {
			id := primary(name)
			before := kill(t, id)
			got := w.twoTicks(t, store.ComponentPrimary, store.HealthRunning, store.HealthError, store.ComponentPooler, store.HealthRunning)
			if !strings.Contains(got.Reason, "137") {
				t.Errorf("reason %q, want the container's exit code 137", got.Reason)
			}
			notRestarted(t, id, before)
			// Nothing brings it back by itself.
			p, _ := w.tick(t)
			wantHealth(t, "third round: primary", p, store.HealthError)
			if obs := w.lastObserved(t, store.ComponentPrimary); obs.Status != store.HealthError {
				t.Fatalf("third round: the primary observed %s, want still Error", obs.Status)
			}

			h.succeed(name, provisioner.KindRestart)
			w.twoTicks(t, store.ComponentPrimary, store.HealthError, store.HealthRunning, store.ComponentPooler, store.HealthRunning)
		}},
		{"a killed PgBouncer is an Error until a Restart job", func(t *testing.T) {
			id := poolerID(name)
			before := kill(t, id)
			w.twoTicks(t, store.ComponentPooler, store.HealthRunning, store.HealthError, store.ComponentPrimary, store.HealthRunning)
			notRestarted(t, id, before)

			h.succeed(name, provisioner.KindRestart)
			w.twoTicks(t, store.ComponentPooler, store.HealthError, store.HealthRunning, store.ComponentPrimary, store.HealthRunning)
		}},
		{"dockerd down is an Error, and back up Running without an action", func(t *testing.T) {
			jobs, err := h.st.ListJobs(ctx, name, 1000)
			if err != nil {
				t.Fatal(err)
			}
			started := map[runtime.InstanceID]string{}
			for _, id := range []runtime.InstanceID{primary(name), poolerID(name)} {
				c, err := cli.ContainerInspect(ctx, docker.ContainerName(id))
				if err != nil {
					t.Fatal(err)
				}
				started[id] = c.State.StartedAt
			}
			if err := engine.Stop(); err != nil {
				t.Fatal(err)
			}
			// Both stored statuses change together, so that twoTicks cannot
			// hold one of them steady: two rounds by hand.
			p, b := w.tick(t)
			wantHealth(t, "dockerd down, first round: primary", p, store.HealthRunning)
			wantHealth(t, "dockerd down, first round: pooler", b, store.HealthRunning)
			for _, c := range []string{store.ComponentPrimary, store.ComponentPooler} {
				if obs := w.lastObserved(t, c); obs.Status != store.HealthError {
					t.Fatalf("dockerd down, first round: %s observed %s, want Error", c, obs.Status)
				}
			}
			p, b = w.tick(t)
			wantHealth(t, "dockerd down, second round: primary", p, store.HealthError)
			wantHealth(t, "dockerd down, second round: pooler", b, store.HealthError)
			t.Logf("dockerd down: primary %q; pooler %q", p.Reason, b.Reason)

			restarted := time.Now()
			if err := engine.Restart(); err != nil {
				t.Fatal(err)
			}
			t.Logf("dockerd answers again after %s", time.Since(restarted).Round(time.Millisecond))
			testkit.Eventually(t, "dockerd brings the containers back by itself", backAfterRestart, func() (bool, string) {
				var states []string
				for _, id := range []runtime.InstanceID{primary(name), poolerID(name)} {
					st, err := h.rt.Status(ctx, id)
					if err != nil || st.State != runtime.StateRunning {
						return false, fmt.Sprintf("%s: %s (%s), %v", id, st.State, st.Reason, err)
					}
					states = append(states, string(st.State))
				}
				return true, strings.Join(states, ", ")
			})
			t.Logf("containers running again %s after dockerd started", time.Since(restarted).Round(time.Millisecond))
			for id, was := range started {
				c, err := cli.ContainerInspect(ctx, docker.ContainerName(id))
				if err != nil {
					t.Fatal(err)
				}
				if c.State.StartedAt == was {
					t.Fatalf("%s: started at %s, as before dockerd stopped: it was not stopped and brought back", id, was)
				}
			}
			p, b = w.tick(t)
			wantHealth(t, "dockerd back, first round: primary", p, store.HealthError)
			wantHealth(t, "dockerd back, first round: pooler", b, store.HealthError)
			p, b = w.tick(t)
			wantHealth(t, "dockerd back, second round: primary", p, store.HealthRunning)
			wantHealth(t, "dockerd back, second round: pooler", b, store.HealthRunning)

			after, err := h.st.ListJobs(ctx, name, 1000)
			if err != nil {
				t.Fatal(err)
			}
			if len(after) != len(jobs) {
				t.Fatalf("%d jobs after dockerd's restart, %d before: nothing was to be queued (newest %+v)", len(after), len(jobs), after[0])
			}
		}},
		{"a primary container removed by hand is re-created by Redeploy with its data", func(t *testing.T) {
			conn := h.connectAs(e)
			if _, err := conn.Exec(ctx, "CREATE TABLE kept (note text); INSERT INTO kept VALUES ('written before the removal')"); err != nil {
				t.Fatal(err)
			}
			conn.Close(ctx)
			if err := cli.ContainerRemove(ctx, docker.ContainerName(primary(name)), container.RemoveOptions{Force: true}); err != nil {
				t.Fatal(err)
			}
			got := w.twoTicks(t, store.ComponentPrimary, store.HealthRunning, store.HealthError, store.ComponentPooler, store.HealthRunning)
			if !strings.Contains(got.Reason, "does not exist") {
				t.Errorf("reason %q, want the missing instance", got.Reason)
			}

			h.succeed(name, provisioner.KindRedeploy)
			var note string
			if err := h.connectAs(h.env(name)).QueryRow(ctx, "SELECT note FROM kept").Scan(&note); err != nil || note != "written before the removal" {
				t.Fatalf("after the Redeploy: %q, %v; want the row written before the removal", note, err)
			}
			// Odoo goes through PgBouncer, which must reach the new
			// container (its address on the network changed).
			e := h.env(name)
			pc, err := simple(ctx, h.poolerPort(e), e.DBName, e.DBUser, h.password(e))
			if err != nil {
				t.Fatalf("login through PgBouncer after the Redeploy: %v", err)
			}
			defer pc.Close(ctx)
			if err := pc.QueryRow(ctx, "SELECT note FROM kept").Scan(&note); err != nil || note != "written before the removal" {
				t.Fatalf("through PgBouncer after the Redeploy: %q, %v; want the row written before the removal", note, err)
			}
			w.twoTicks(t, store.ComponentPrimary, store.HealthError, store.HealthRunning, store.ComponentPooler, store.HealthRunning)
		}},
	}
	for _, s := range steps {
		// Each step starts from the one before: stop at the first failure.
		if !t.Run(s.name, s.run) {
			return
		}
	}
}
