package web

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/store"
	"pgdeck/views"
)

// What Settings → Database, the pending notice and the settings API show,
// built from the saved settings, the applied snapshot and the monitor's
// read-back; the page and the API share these builders so that they
// never disagree.

// serverSettings are the running primary's pg_settings rows as the monitor
// read them back into its health details; nil until it has.
func serverSettings(h *store.Health) map[string]store.ServerSetting {
	if h == nil {
		return nil
	}
	var d store.PrimaryDetails
	if !store.DecodeDetails(h.Details, &d) {
		return nil
	}
	return d.Settings
}

// parameterRows lists the tuned parameters: recommended (with its rule),
// saved override, applied value, context, and what a redeploy applies.
func parameterRows(e store.Environment, saved store.DatabaseSettings, server map[string]store.ServerSetting) ([]views.ParameterRow, error) {
	res, err := render.PlanResources(e.Plan)
	if err != nil {
		return nil, err
	}
	resolved, err := provisioner.ResolveSettings(e, saved)
	if err != nil {
		return nil, err
	}
	rec := render.Recommend(res)
	rows := make([]views.ParameterRow, 0, len(rec))
	for _, p := range rec {
		r := views.ParameterRow{Name: p.Name, Recommended: p.Value, Rule: p.Rule, Context: p.Context,
			Saved: saved.Parameters[p.Name], Resolved: resolved.PostgreSQLConf[p.Name]}
		if row, ok := server[p.Name]; ok {
			if row.Context != "" {
				r.Context = row.Context
			}
			// Applied is only what the server reads back from an
			// environment deployed by pgdeck.
			if e.Deployed() {
				r.Applied = row.Value
				r.PendingRestart = row.PendingRestart
				r.Differs = row.Value != "" && !provisioner.SameValue(p.Name, row.Value, r.Resolved)
			}
		}
		r.Restart = render.NeedsRestart(r.Context)
		rows = append(rows, r)
	}
	return rows, nil
}

// poolerForm is the PgBouncer row: the saved settings with the defaults
// filled in, and the plan's gate.
func poolerForm(e store.Environment, saved store.DatabaseSettings) (views.PoolerForm, error) {
	resolved, err := provisioner.ResolveSettings(e, saved)
	if err != nil {
		return views.PoolerForm{}, err
	}
	ok, reason := render.PlanAllowsPooler(e.Plan)
	p := savedPooler(saved)
	return views.PoolerForm{Allowed: ok, Reason: reason, Enabled: p.Enabled, PoolSize: p.PoolSize, PoolMode: p.PoolMode,
		MaxClientConn: p.MaxClientConn, MaxPoolSize: render.MaxPoolSize(provisioner.MaxConnectionsOf(resolved.PostgreSQLConf))}, nil
}

// savedPooler is the saved PgBouncer settings with the defaults filled in
// (what the API shows and the form starts from).
func savedPooler(saved store.DatabaseSettings) render.PoolerSettings {
	return provisioner.EffectivePooler(saved.PgBouncer)
}

// savedForm is the form as the saved settings fill it.
func savedForm(rows []views.ParameterRow, p views.PoolerForm) views.Form {
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, r := range rows {
		f.Values[r.Field()] = r.Saved
	}
	if p.Enabled {
		f.Values["pgbouncer.enabled"] = "on"
	}
	f.Values["pgbouncer.pool_size"] = strconv.Itoa(p.PoolSize)
	f.Values["pgbouncer.pool_mode"] = p.PoolMode
	f.Values["pgbouncer.max_client_conn"] = strconv.Itoa(p.MaxClientConn)
	return f
}

// optimizationView builds the PostgreSQL Optimization card; typed, when
// not nil, is a refused form shown again as it was typed.
func (s *Server) optimizationView(c echo.Context, e store.Environment, saved store.DatabaseSettings, primary *store.Health, typed *views.Form) (views.Optimization, error) {
	rows, err := parameterRows(e, saved, serverSettings(primary))
	if err != nil {
		return views.Optimization{}, err
	}
	pf, err := poolerForm(e, saved)
	if err != nil {
		return views.Optimization{}, err
	}
	u, _ := currentUser(c)
	o := views.Optimization{Name: e.Name, CanChange: u.CanChange(), CSRF: s.csrfToken(c), Deployed: e.Deployed(),
		Params: rows, Pooler: pf, Form: savedForm(rows, pf)}
	if typed != nil {
		o.Form = *typed
	}
	return o, nil
}

// poolerState is the pooler as the API's "pooler" and the Connection
// pooling card show it.
type poolerState struct {
	// Status is running, stopped or error (the pooler's health), checking
	// before its first check, or disabled when no pooler is deployed.
	Status string
	Reason string
	Port   *int
	Health *store.Health
}

// poolerStatus derives the pooler's state: disabled unless the last
// deploy applied PgBouncer and a pooler instance is recorded (its port),
// else its health row's status.
func poolerStatus(e store.Environment, saved store.DatabaseSettings, h *store.Health) poolerState {
	applied := false
	if e.Deployed() {
		if a, err := provisioner.AppliedSettings(e, saved); err == nil && a.PgBouncer != nil {
			applied = a.PgBouncer.Enabled
		}
	}
	if e.PoolerPort == nil || !applied {
		st := poolerState{Status: store.HealthDisabled, Reason: "PgBouncer is off."}
		if ok, reason := render.PlanAllowsPooler(e.Plan); !ok {
			st.Reason = reason
		} else if saved.PgBouncer.Enabled {
			st.Reason = "PgBouncer is saved on; a redeploy starts it."
		}
		return st
	}
	if h == nil {
		return poolerState{Status: "checking", Reason: "waiting for the first health check", Port: e.PoolerPort}
	}
	return poolerState{Status: h.Status, Reason: h.Reason, Port: e.PoolerPort, Health: h}
}

// loadPooler reads the pooler's latest health, when it has an instance.
func (s *Server) loadPooler(ctx context.Context, e store.Environment, saved store.DatabaseSettings) (poolerState, error) {
	h, err := s.poolerHealth(ctx, e)
	if err != nil {
		return poolerState{}, err
	}
	return poolerStatus(e, saved, h), nil
}

// poolerHealth is the pooler's latest health row: nil when the environment
// has no pooler instance or it was not checked yet.
func (s *Server) poolerHealth(ctx context.Context, e store.Environment) (*store.Health, error) {
	if e.PoolerPort == nil {
		return nil, nil
	}
	h, err := s.store.ComponentHealth(ctx, e.ID, store.ComponentPooler)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, nil
	case err != nil:
		return nil, err
	}
	return &h, nil
}

// poolingView builds the Connection pooling card.
func poolingView(e store.Environment, saved store.DatabaseSettings, ps poolerState) views.Pooling {
	ok, reason := render.PlanAllowsPooler(e.Plan)
	v := views.Pooling{Name: e.Name, Allowed: ok, Reason: reason, Running: ps.Status != store.HealthDisabled}
	if !v.Running {
		return v
	}
	v.Status = views.Health{Status: ps.Status, Reason: ps.Reason}
	pool := savedPooler(saved)
	maxConn := render.MaxConnections
	if a, err := provisioner.AppliedSettings(e, saved); err == nil {
		if a.PgBouncer != nil {
			pool = *a.PgBouncer
		}
		maxConn = provisioner.MaxConnectionsOf(a.PostgreSQLConf)
	}
	in := render.PoolerSizingInput{PoolSize: pool.PoolSize, PoolMode: pool.PoolMode, MaxClientConn: pool.MaxClientConn, MaxConnections: maxConn}
	in.DBMaxConn = render.OdooMaxConnForPool(pool.PoolMode, pool.PoolSize, pool.MaxClientConn, render.PostgresPoolSize, render.PgdeckConnections).Value
	if h := ps.Health; h != nil {
		v.Status.CheckedAt = h.CheckedAt
		v.CheckedAt = h.CheckedAt
		var d store.PoolerDetails
		if store.DecodeDetails(h.Details, &d) {
			v.HasFigures = true
			v.ClActive, v.ClWaiting, v.SvActive, v.SvIdle = d.ClActive, d.ClWaiting, d.SvActive, d.SvIdle
			v.MaxWaitSeconds, v.AvgQueryMicros = d.MaxWaitSeconds, d.AvgQueryMicros
			in.ClientsWaiting = d.ClWaiting
			in.MaxWait = time.Duration(d.MaxWaitSeconds * float64(time.Second))
			if d.PoolSize > 0 {
				in.PoolSize, in.PoolMode, in.MaxClientConn = d.PoolSize, d.PoolMode, d.MaxClientConn
			}
		}
	}
	v.Hints = render.PoolerSizing(in)
	return v
}

// pendingNoticeView builds the redeploy-pending notice. A snapshot it
// cannot read is logged and shows no notice rather than break every tab.
func (s *Server) pendingNoticeView(c echo.Context, e store.Environment, saved store.DatabaseSettings, busy bool) views.PendingNotice {
	u, _ := currentUser(c)
	n := views.PendingNotice{Name: e.Name, CanChange: u.CanChange(), Busy: busy, CSRF: s.csrfToken(c)}
	changes, err := provisioner.PendingChanges(e, saved)
	if err != nil {
		s.log.Error("pending settings", "env", e.Name, "error", err)
		return n
	}
	for _, ch := range changes {
		n.Changes = append(n.Changes, views.PendingChange{Name: ch.Name, Old: ch.Old, New: ch.New, Restart: ch.Restart})
	}
	return n
}

// loadPendingNotice reads what the notice shows: the settings and whether
// a job runs.
func (s *Server) loadPendingNotice(c echo.Context, e store.Environment) (views.PendingNotice, error) {
	ctx := c.Request().Context()
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return views.PendingNotice{}, err
	}
	st, err := s.loadState(ctx, e, needJob)
	if err != nil {
		return views.PendingNotice{}, err
	}
	return s.pendingNoticeView(c, e, saved, st.job != nil && st.job.Active()), nil
}
