package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"strings"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// appliedSettings returns the settings the last deploy or redeploy applied
// (see AppliedSettings).
func (p *Provisioner) appliedSettings(ctx context.Context, env store.Environment) (DeploySettings, error) {
	saved, err := p.store.DatabaseSettings(ctx, env.ID)
	if err != nil {
		return DeploySettings{}, err
	}
	return AppliedSettings(env, saved)
}

// recordApplied stores the settings a deploy or redeploy has just applied.
func (p *Provisioner) recordApplied(ctx context.Context, envID int64, s DeploySettings) error {
	b, err := json.Marshal(s)
	if err != nil {
		return err
	}
	return p.store.SetAppliedSettings(ctx, envID, b)
}

// changedParameters lists the postgresql.conf settings whose value differs
// between two configurations (set, changed or removed), sorted.
func changedParameters(old, new map[string]string) []string {
	var out []string
	for k, v := range new {
		if ov, ok := old[k]; !ok || ov != v {
			out = append(out, k)
		}
	}
	for k := range old {
		if _, ok := new[k]; !ok {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}

// applyConf writes a PostgreSQL instance's configuration (the primary's or
// the replica's) and makes the server run on it with the least disruption:
// a server that is not running starts on it; a running one is checked
// (pg_file_settings), reloaded, and restarted only when a changed setting
// takes a restart (its context is postmaster). When the server
// refuses the new configuration, the previous one is written back and the
// server keeps (or resumes) running on it, and the error carries
// PostgreSQL's message. previous is nil for a first deploy.
func (r *JobRun) applyConf(ctx context.Context, spec runtime.Spec, previous map[string]string) error {
	id := spec.ID
	st, err := r.p.rt.Status(ctx, id)
	if err != nil {
		return err
	}
	running := st.State == runtime.StateRunning
	if err := r.p.rt.Create(ctx, spec); err != nil {
		return err
	}
	rollback := func(cause error) error {
		if previous == nil {
			return cause
		}
		r.Logf(ctx, "PostgreSQL refused the new settings; writing back the previous ones")
		old := spec
		old.Conf = previous
		if err := r.p.rt.Create(ctx, old); err != nil {
			return fmt.Errorf("%w; writing back the previous settings also failed: %v (fix the settings and redeploy)", cause, err)
		}
		if err := r.p.rt.Start(ctx, id); err != nil {
			return fmt.Errorf("%w; PostgreSQL did not start on the previous settings either: %v", cause, err)
		}
		return fmt.Errorf("%w (the previous settings are running again)", cause)
	}
	if !running {
		r.Step(ctx, "Starting PostgreSQL", 55)
		if err := r.p.rt.Start(ctx, id); err != nil {
			return rollback(fmt.Errorf("PostgreSQL did not start with the new settings: %w", err))
		}
		return nil
	}

	r.Step(ctx, "Applying the PostgreSQL settings", 55)
	changed := changedParameters(previous, spec.Conf)
	if previous == nil {
		changed = slices.Sorted(maps.Keys(spec.Conf))
	}
	info, err := r.serverSettings(ctx, id, changed)
	if err != nil {
		return err
	}
	// Settings a reload can apply but the server refuses are refused now,
	// before anything is applied (a reload would apply the others and skip
	// those). A postmaster setting reads "could not be applied" there when
	// it merely changed; a bad one is met by the restart below.
	var refused []string
	for _, name := range changed {
		s, ok := info[name]
		if ok && s.fileError != "" && s.context != render.ContextPostmaster {
			refused = append(refused, fmt.Sprintf("%s = %q: %s", name, spec.Conf[name], s.message(ctx, r, id, name, spec.Conf[name])))
		}
	}
	if len(refused) > 0 {
		return rollbackNoRestart(ctx, r, spec, previous, fmt.Errorf("PostgreSQL refuses %s", strings.Join(refused, "; ")))
	}
	if _, err := r.p.rt.Exec(ctx, id, nil, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", "SELECT pg_reload_conf()"); err != nil {
		return err
	}
	var restart []string
	for _, name := range changed {
		if s, ok := info[name]; ok && render.NeedsRestart(s.context) {
			restart = append(restart, name)
		}
	}
	if len(restart) == 0 {
		r.Logf(ctx, "reloaded the configuration (changed: %s); PostgreSQL was not restarted", listOrNone(changed))
		return nil
	}
	r.Step(ctx, "Restarting PostgreSQL", 60)
	r.Logf(ctx, "restarting PostgreSQL: %s take a restart", strings.Join(restart, ", "))
	if err := r.p.rt.Stop(ctx, id); err != nil {
		return err
	}
	if err := r.p.rt.Start(ctx, id); err != nil {
		return rollback(fmt.Errorf("PostgreSQL did not start with the new settings: %w", err))
	}
	return nil
}

// rollbackNoRestart writes the previous configuration back to a running
// server that never read the new one.
func rollbackNoRestart(ctx context.Context, r *JobRun, spec runtime.Spec, previous map[string]string, cause error) error {
	old := spec
	old.Conf = previous
	if previous == nil {
		old.Conf = render.PrimaryConf()
	}
	if err := r.p.rt.Create(ctx, old); err != nil {
		return fmt.Errorf("%w; writing back the previous settings also failed: %v (fix the settings and redeploy)", cause, err)
	}
	return fmt.Errorf("%w; nothing was applied: the previous settings keep running", cause)
}

func listOrNone(names []string) string {
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ", ")
}

// serverSetting is what the running server says of one setting.
type serverSetting struct {
	context   string
	fileError string
}

// message returns PostgreSQL's own words for a refused value where a
// session can get them (SET LOCAL in a transaction rolled back, for the
// settings a session may set), else pg_file_settings' note.
func (s serverSetting) message(ctx context.Context, r *JobRun, id runtime.InstanceID, name, value string) string {
	if s.context != render.ContextUser && s.context != render.ContextSuperuser {
		return s.fileError
	}
	sql := "BEGIN; SET LOCAL " + quoteIdent(name) + " = " + quoteLiteral(value) + "; ROLLBACK;"
	_, err := r.p.rt.Exec(ctx, id, nil, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
	if err == nil {
		return s.fileError
	}
	msg := err.Error()
	if i := strings.Index(msg, "ERROR:"); i >= 0 {
		msg = strings.TrimSpace(msg[i+len("ERROR:"):])
	}
	return strings.Join(strings.Fields(msg), " ")
}

// serverSettings reads, for the named settings, their context and whether
// the configuration files as now written hold a value the server cannot
// apply (pg_file_settings reads the files afresh; nothing is applied).
func (r *JobRun) serverSettings(ctx context.Context, id runtime.InstanceID, names []string) (map[string]serverSetting, error) {
	out := map[string]serverSetting{}
	if len(names) == 0 {
		return out, nil
	}
	var quoted []string
	for _, n := range names {
		quoted = append(quoted, quoteLiteral(n))
	}
	list := strings.Join(quoted, ", ")
	sql := `SELECT s.name, s.context, coalesce((SELECT f.error FROM pg_file_settings f WHERE f.name = s.name AND f.error IS NOT NULL ORDER BY f.seqno DESC LIMIT 1), '')
		FROM pg_settings s WHERE s.name IN (` + list + `)`
	b, err := r.p.rt.Exec(ctx, id, nil, "psql", "-X", "-q", "-A", "-t", "-F", "\t", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c", sql)
	if err != nil {
		return nil, err
	}
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Split(line, "\t")
		if len(f) != 3 {
			continue
		}
		out[f[0]] = serverSetting{context: f[1], fileError: f[2]}
	}
	return out, nil
}
