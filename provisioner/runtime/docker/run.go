package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"path"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/pkg/stdcopy"

	"pgdeck/provisioner/runtime"
)

// stopGrace is how long a container has to stop before it is killed.
const stopGrace = 30 * time.Second

// readyTimeout bounds how long Start waits for a server to accept
// connections.
const readyTimeout = 90 * time.Second

// restartSettle is how long Start lets a container the engine is
// restarting settle before it reports it failing.
const restartSettle = 15 * time.Second

// statusDialTimeout bounds Status's check of a running server.
const statusDialTimeout = 5 * time.Second

// Start starts the instance's container and waits until its server accepts
// connections; a running instance is left alone.
func (r *Runtime) Start(ctx context.Context, id runtime.InstanceID) error {
	defer r.lock(id.String())()
	c, err := r.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("docker runtime: start: %w", err)
	}
	// The engine may be restarting it (restart policy), and refuses a
	// start meanwhile: give it a moment to settle.
	for deadline := time.Now().Add(restartSettle); c.State.Restarting; {
		if time.Now().After(deadline) {
			return fmt.Errorf("docker runtime: start %s: its container keeps restarting (last exit code %d%s); last log: %s",
				id, c.State.ExitCode, oom(c.State), oneLine(r.logTail(ctx, c.ID, 5)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
		if c, err = r.inspect(ctx, id); err != nil {
			return fmt.Errorf("docker runtime: start: %w", err)
		}
	}
	if c.State.Running {
		return nil
	}
	if isPooler(id) {
		if err := r.checkIni(ctx, c.ID); err != nil {
			return fmt.Errorf("docker runtime: start %s: %w", id, err)
		}
	}
	if err := r.startContainer(ctx, id, c.ID, portOf(c)); err != nil {
		return fmt.Errorf("docker runtime: start %s: %w", id, err)
	}
	return nil
}

// checkIni checks that the pooler's ini exists and ends with its
// [pgbouncer] section, which the wrapper's settings continue.
func (r *Runtime) checkIni(ctx context.Context, ctrID string) error {
	ini, err := r.readFile(ctx, ctrID, path.Join(volumeDir, runtime.PgBouncerIniFile))
	if err != nil {
		return fmt.Errorf("pgbouncer's configuration: %w", err)
	}
	last := ""
	for _, l := range strings.Split(string(ini), "\n") {
		if l = strings.TrimSpace(l); strings.HasPrefix(l, "[") {
			last = l
		}
	}
	if last != "[pgbouncer]" {
		return fmt.Errorf("%s must end with its [pgbouncer] section (it ends in %q)", runtime.PgBouncerIniFile, last)
	}
	return nil
}

// startContainer starts a container and waits until its server is ready.
func (r *Runtime) startContainer(ctx context.Context, id runtime.InstanceID, ctrID string, port int) error {
	since := time.Now()
	if err := r.cli.ContainerStart(ctx, ctrID, container.StartOptions{}); err != nil {
		return err
	}
	deadline := time.Now().Add(readyTimeout)
	for {
		err := r.ready(ctx, id, ctrID, port)
		if err == nil {
			r.log.Info("started instance", "env", id.Env, "role", id.Role, "port", port, "duration", time.Since(since).Round(time.Millisecond))
			return nil
		}
		c, ierr := r.cli.ContainerInspect(ctx, ctrID)
		if ierr != nil {
			return ierr
		}
		if !c.State.Running || c.State.Restarting {
			return fmt.Errorf("the container exited with code %d at start; last log: %s", c.State.ExitCode, oneLine(r.logTail(ctx, ctrID, 5)))
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("not ready after %s: %v; last log: %s", readyTimeout, err, oneLine(r.logTail(ctx, ctrID, 5)))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// ready checks that the server accepts connections: pg_isready over the
// socket for PostgreSQL, a TCP connection to the published port for
// PgBouncer.
func (r *Runtime) ready(ctx context.Context, id runtime.InstanceID, ctrID string, port int) error {
	if isPooler(id) {
		if err := sslProbe(ctx, net.JoinHostPort(r.publish, strconv.Itoa(port))); err != nil {
			return fmt.Errorf("pgbouncer does not answer on %s:%d: %w", r.publish, port, err)
		}
		return nil
	}
	cctx, cancel := context.WithTimeout(ctx, statusDialTimeout)
	defer cancel()
	out, err := r.exec(cctx, ctrID, nil, "pg_isready", "-q")
	if err != nil {
		return fmt.Errorf("pg_isready: %w %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// Stop stops the instance's container (PostgreSQL with a fast shutdown);
// a stopped or missing instance is left alone. A stopped container stays
// stopped when dockerd restarts (restart policy unless-stopped).
func (r *Runtime) Stop(ctx context.Context, id runtime.InstanceID) error {
	defer r.lock(id.String())()
	c, err := r.inspect(ctx, id)
	if errors.Is(err, runtime.ErrMissing) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("docker runtime: stop: %w", err)
	}
	timeout := int(stopGrace / time.Second)
	if err := r.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout}); err != nil {
		return fmt.Errorf("docker runtime: stop %s: %w", id, err)
	}
	return nil
}

// Kill kills the instance's server as a crash would (SIGKILL through the
// engine, which does not restart it then); Status reports it broken until
// Start. A missing instance is an error wrapping runtime.ErrMissing.
func (r *Runtime) Kill(ctx context.Context, id runtime.InstanceID) error {
	c, err := r.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("docker runtime: kill: %w", err)
	}
	if err := r.cli.ContainerKill(ctx, c.ID, "SIGKILL"); err != nil && !strings.Contains(err.Error(), "is not running") {
		return fmt.Errorf("docker runtime: kill %s: %w", id, err)
	}
	return nil
}

// Remove stops the instance and deletes its container and data volume. A
// missing instance is fine.
func (r *Runtime) Remove(ctx context.Context, id runtime.InstanceID) error {
	if err := id.Validate(); err != nil {
		return err
	}
	defer r.lock(id.String())()
	if err := r.removeAll(ctx, id); err != nil {
		return fmt.Errorf("docker runtime: remove %s: %w", id, err)
	}
	return nil
}

// removeAll removes the instance's container (and a one-shot container of
// it a killed pgdeck left), then its volume.
func (r *Runtime) removeAll(ctx context.Context, id runtime.InstanceID) error {
	removed := false
	for _, name := range []string{ContainerName(id), ContainerName(id) + "-init"} {
		c, err := r.cli.ContainerInspect(ctx, name)
		if cerrdefs.IsNotFound(err) {
			continue
		}
		if err != nil {
			return err
		}
		if name == ContainerName(id) && c.Config != nil && c.Config.Labels[labelManaged] != "true" {
			return fmt.Errorf("container %s is not pgdeck's", name)
		}
		if c.State != nil && c.State.Running {
			// A clean shutdown first: the volume may be kept elsewhere.
			timeout := int(stopGrace / time.Second)
			r.cli.ContainerStop(ctx, c.ID, container.StopOptions{Timeout: &timeout})
		}
		if err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return err
		}
		removed = removed || name == ContainerName(id)
	}
	if err := r.cli.VolumeRemove(ctx, VolumeName(id), true); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("remove volume %s: %w", VolumeName(id), err)
	}
	if removed {
		r.log.Info("removed instance", "env", id.Env, "role", id.Role, "container", ContainerName(id))
	}
	return nil
}

// Status reports the instance's state from its container: missing (no
// container), stopped (never started, or stopped cleanly), running (the
// container runs and its server accepts connections; the pid is the
// container's main process on the engine's host) or broken (it runs but
// does not answer, it restarts, or it exited with an error: the exit code,
// whether it ran out of memory, and its last log lines).
func (r *Runtime) Status(ctx context.Context, id runtime.InstanceID) (runtime.Status, error) {
	c, err := r.inspect(ctx, id)
	if errors.Is(err, runtime.ErrMissing) {
		return runtime.Status{State: runtime.StateMissing}, nil
	}
	if err != nil {
		return runtime.Status{}, err
	}
	s := c.State
	what := "postgres"
	if isPooler(id) {
		what = "pgbouncer"
	}
	switch {
	case s.Restarting:
		return runtime.Status{State: runtime.StateBroken,
			Reason: fmt.Sprintf("%s's container keeps restarting (last exit code %d%s); last log: %s", what, s.ExitCode, oom(s), oneLine(r.logTail(ctx, c.ID, 3)))}, nil
	case s.Running:
		err := r.ready(ctx, id, c.ID, portOf(c))
		if err == nil {
			return runtime.Status{State: runtime.StateRunning, PID: s.Pid}, nil
		}
		// A server that was just killed may still show as running.
		if again, ierr := r.cli.ContainerInspect(ctx, c.ID); ierr == nil && again.State.Running && !again.State.Restarting {
			return runtime.Status{State: runtime.StateBroken, PID: s.Pid,
				Reason: fmt.Sprintf("%s (pid %d) runs but %v; last log: %s", what, s.Pid, err, oneLine(r.logTail(ctx, c.ID, 3)))}, nil
		}
		return r.Status(ctx, id)
	case s.Status == "created":
		return runtime.Status{State: runtime.StateStopped}, nil
	case s.Status == "exited" && s.ExitCode == 0 && !s.OOMKilled:
		return runtime.Status{State: runtime.StateStopped}, nil
	case s.Status == "exited":
		tail := r.logTail(ctx, c.ID, 3)
		if isPooler(id) && s.ExitCode == 1 && !s.OOMKilled && strings.HasSuffix(tail, "got SIGTERM, fast exit") {
			// PgBouncer exits 1 on SIGTERM, the stop signal Stop sends.
			return runtime.Status{State: runtime.StateStopped}, nil
		}
		return runtime.Status{State: runtime.StateBroken,
			Reason: fmt.Sprintf("%s's container exited with code %d%s at %s; last log: %s", what, s.ExitCode, oom(s), s.FinishedAt, oneLine(tail))}, nil
	default:
		return runtime.Status{State: runtime.StateBroken,
			Reason: fmt.Sprintf("%s's container is %s %s; last log: %s", what, s.Status, s.Error, oneLine(r.logTail(ctx, c.ID, 3)))}, nil
	}
}

func oom(s *container.State) string {
	switch {
	case s.OOMKilled:
		return ", out of memory: killed by the kernel"
	case s.ExitCode == 137:
		return ", killed (SIGKILL)"
	}
	return ""
}

// List returns the instances of pgdeck's labelled containers on the
// engine.
func (r *Runtime) List(ctx context.Context) ([]runtime.InstanceID, error) {
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(filters.Arg("label", labelManaged+"=true"))})
	if err != nil {
		return nil, fmt.Errorf("docker runtime: list: %w", err)
	}
	var out []runtime.InstanceID
	for _, c := range cs {
		id := runtime.InstanceID{Env: c.Labels[labelEnv], Role: runtime.Role(c.Labels[labelRole])}
		if id.Validate() == nil {
			out = append(out, id)
		}
	}
	return out, nil
}

// LogTail returns up to the last n lines of the instance's server log (its
// container's output: PostgreSQL's or PgBouncer's).
func (r *Runtime) LogTail(id runtime.InstanceID, n int) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := r.inspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("docker runtime: log of %s: %w", id, err)
	}
	return r.logTail(ctx, c.ID, n), nil
}

// logTail returns the last n lines a container wrote.
func (r *Runtime) logTail(ctx context.Context, ctrID string, n int) string {
	rc, err := r.cli.ContainerLogs(ctx, ctrID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Tail: strconv.Itoa(n)})
	if err != nil {
		return ""
	}
	defer rc.Close()
	var buf bytes.Buffer
	stdcopy.StdCopy(&buf, &buf, rc)
	return strings.TrimSpace(buf.String())
}

// sslRequest is the PostgreSQL protocol's SSLRequest message.
var sslRequest = []byte{0, 0, 0, 8, 0x04, 0xd2, 0x16, 0x2f}

// sslProbe checks that a PostgreSQL-protocol server answers at addr: it
// sends an SSLRequest and wants 'S' or 'N' back. A TCP connection alone
// proves nothing: Docker's proxy accepts on a published port whether or
// not anything listens in the container.
func sslProbe(ctx context.Context, addr string) error {
	d := net.Dialer{Timeout: statusDialTimeout}
	conn, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return err
	}
	defer conn.Close()
	conn.SetDeadline(time.Now().Add(statusDialTimeout))
	if _, err := conn.Write(sslRequest); err != nil {
		return err
	}
	b := make([]byte, 1)
	if _, err := io.ReadFull(conn, b); err != nil {
		return err
	}
	if b[0] != 'S' && b[0] != 'N' {
		return fmt.Errorf("unexpected answer %q to an SSLRequest", b[0])
	}
	return nil
}
