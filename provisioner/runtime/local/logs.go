package local

import (
	"fmt"

	"pgdeck/provisioner/runtime"
)

// LogTail returns up to the last n lines of the instance's server log
// (PostgreSQL's, or PgBouncer's for a pooler), for callers that explain a
// state the server only writes to its log (the monitor: why a replica does
// not stream).
func (r *Runtime) LogTail(id runtime.InstanceID, n int) (string, error) {
	if isPooler(id) {
		b, err := r.loadPooler(id)
		if err != nil {
			return "", fmt.Errorf("local runtime: log of %s: %w", id, err)
		}
		return b.LogTail(n), nil
	}
	c, err := r.load(id)
	if err != nil {
		return "", fmt.Errorf("local runtime: log of %s: %w", id, err)
	}
	return c.LogTail(n), nil
}
