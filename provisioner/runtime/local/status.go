package local

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// Status reports whether the instance is missing, stopped, running (its
// postmaster is alive and answers on its socket) or broken (with the
// reason); a pooler's is poolerStatus.
func (r *Runtime) Status(ctx context.Context, id runtime.InstanceID) (runtime.Status, error) {
	if isPooler(id) {
		return r.poolerStatus(id)
	}
	c, err := r.load(id)
	if errors.Is(err, runtime.ErrMissing) {
		return runtime.Status{State: runtime.StateMissing}, nil
	}
	if err != nil {
		if verr := id.Validate(); verr != nil {
			return runtime.Status{}, verr
		}
		return runtime.Status{State: runtime.StateBroken, Reason: err.Error()}, nil
	}
	pid, ok := c.Running()
	if ok {
		err := c.Ready(ctx)
		if err == nil {
			return runtime.Status{State: runtime.StateRunning, PID: pid}, nil
		}
		// A postmaster that was just killed may still show in /proc while
		// its socket is already gone: look again before blaming the socket.
		if _, ok = c.Running(); ok {
			return runtime.Status{State: runtime.StateBroken, PID: pid,
				Reason: fmt.Sprintf("postmaster (pid %d) runs but %v; last log: %s", pid, err, lastLog(c))}, nil
		}
	}
	if c.Stale() {
		return runtime.Status{State: runtime.StateBroken,
			Reason: fmt.Sprintf("postmaster is not running (stale postmaster.pid, last log: %s)", lastLog(c))}, nil
	}
	return runtime.Status{State: runtime.StateStopped}, nil
}

// lastLog returns the server log's last lines on one line.
func lastLog(c *pgexec.Cluster) string {
	return oneLine(c.LogTail(3))
}

// oneLine joins a log's lines with " | " ("empty" when there are none).
func oneLine(log string) string {
	tail := strings.TrimSpace(log)
	if tail == "" {
		return "empty"
	}
	return strings.Join(strings.Fields(strings.ReplaceAll(tail, "\n", " | ")), " ")
}
