package web

import (
	"context"
	"errors"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// What the Read Replica card and the replica's API show, derived in one
// place: the saved and applied setting, the requirements (the
// provisioner's, the one source of truth), the replica job in flight and
// the monitor's latest check.

// Replica statuses beyond the monitor's (online, lagging, offline, error).
const (
	replicaNotDeployed = "not_deployed"
	replicaDeploying   = "deploying"
)

// chartWindow is how far back the lag chart reaches.
const chartWindow = time.Hour

// replicaState is an environment's read replica.
type replicaState struct {
	// Enabled is saved on; Applied: the last deploy applied it.
	Enabled, Applied bool
	// Requirements are nil unless asked for (and a provisioner answers).
	Requirements []provisioner.Requirement
	Known        bool
	// Status is not_deployed, deploying, online, lagging, offline or error.
	Status   string
	Severity string
	Reason   string
	// Job is the environment's queued or running job, if any; Step its
	// step when it is a replica deploy or rebuild.
	Job     *store.Job
	Step    string
	Health  *store.Health
	Details store.ReplicaDetails
	Host    string
	Port    *int
}

// Busy: a job is queued or running, so that another would be refused.
func (r replicaState) Busy() bool { return r.Job != nil }

// Error is what Error (or Offline) comes from, in words; "" otherwise.
func (r replicaState) Error() string {
	if r.Status != store.HealthError && r.Status != store.HealthOffline {
		return ""
	}
	if r.Details.Detail != "" {
		return r.Details.Detail
	}
	return r.Reason
}

// replicaStatus derives the replica's status: deploying while a deploy or
// rebuild of it is queued or running, not_deployed without a replica
// instance, offline until its first check, else the monitor's verdict
// with its severity (or one derived from the thresholds, for a check
// that recorded none).
func replicaStatus(e store.Environment, job *store.Job, h *store.Health, t ReplicaThresholds) (status, severity, reason string) {
	if job != nil && (job.Kind == string(provisioner.KindDeployReplica) || job.Kind == string(provisioner.KindRebuildReplica)) {
		reason = "Queued: waiting for a worker."
		if job.Step != "" {
			reason = job.Step
		}
		return replicaDeploying, store.SeverityOK, reason
	}
	if e.ReplicaPort == nil {
		return replicaNotDeployed, store.SeverityOK, "No replica is deployed."
	}
	if h == nil {
		return store.HealthOffline, store.SeverityOK, "Waiting for the first health check."
	}
	status = h.Status
	switch status {
	case store.HealthOnline, store.HealthLagging, store.HealthOffline, store.HealthError:
	case store.HealthStopped:
		status = store.HealthOffline
	default:
		status = store.HealthError
	}
	severity = h.Severity
	if severity == "" {
		severity = t.severity(h.LagBytes, h.LagSeconds)
	}
	return status, severity, h.Reason
}

// severity places a lag against the thresholds.
func (t ReplicaThresholds) severity(b *int64, s *float64) string {
	switch {
	case b != nil && *b > t.CritBytes, s != nil && *s > t.CritSeconds:
		return store.SeverityCritical
	case b != nil && *b > t.WarnBytes, s != nil && *s > t.WarnSeconds:
		return store.SeverityWarning
	}
	return store.SeverityOK
}

// loadReplica reads the replica's state; with requirements it also asks
// the provisioner what a replica needs.
func (s *Server) loadReplica(ctx context.Context, e store.Environment, saved store.DatabaseSettings, requirements bool) (replicaState, error) {
	r := replicaState{Enabled: saved.ReadReplica, Port: e.ReplicaPort, Host: "127.0.0.1"}
	if e.Deployed() {
		a, err := provisioner.AppliedSettings(e, saved)
		if err != nil {
			return r, err
		}
		r.Applied = a.ReadReplica
	}
	if requirements && s.jobs != nil {
		reqs, err := s.jobs.ReplicaRequirements(ctx, e)
		if err != nil {
			return r, err
		}
		r.Requirements, r.Known = reqs, true
	}
	if s.jobs != nil && e.ReplicaPort != nil {
		host, port := s.jobs.ReplicaAddress(e.Name)
		r.Host = host
		if port != 0 {
			r.Port = &port
		}
	}
	j, err := s.store.ActiveJob(ctx, e.Name)
	switch {
	case err == nil:
		r.Job = &j
	case !errors.Is(err, store.ErrNotFound):
		return r, err
	}
	if e.ReplicaPort != nil {
		h, err := s.store.ComponentHealth(ctx, e.ID, store.ComponentReplica)
		switch {
		case err == nil:
			r.Health = &h
			store.DecodeDetails(h.Details, &r.Details)
		case !errors.Is(err, store.ErrNotFound):
			return r, err
		}
	}
	r.Status, r.Severity, r.Reason = replicaStatus(e, r.Job, r.Health, s.thresholds)
	if r.Status == replicaDeploying {
		r.Step = r.Reason
	}
	return r, nil
}

// requirementViews labels the provisioner's requirements for the checklist.
func requirementViews(reqs []provisioner.Requirement) ([]views.Requirement, bool) {
	labels := map[string]string{"plan": "Pro plan or above", "odoo_version": "Odoo 18 or later", "quota": "Replica quota and capacity"}
	out := make([]views.Requirement, len(reqs))
	for i, q := range reqs {
		label := labels[q.Name]
		if label == "" {
			label = q.Name
		}
		out[i] = views.Requirement{Name: q.Name, Label: label, Met: q.Met, Reason: q.Reason}
	}
	return out, provisioner.RequirementsMet(reqs) == nil
}

// replicaWidget builds the status widget; for a deployed replica it reads
// the last hour's checks for the chart.
func (s *Server) replicaWidget(c echo.Context, e store.Environment, r replicaState) (views.ReplicaWidget, error) {
	u, _ := currentUser(c)
	t := s.thresholds
	w := views.ReplicaWidget{Name: e.Name, CanChange: u.CanChange(), CSRF: s.csrfToken(c),
		Enabled: r.Enabled, Applied: r.Applied, Deployed: r.Port != nil, Status: r.Status, Severity: r.Severity,
		Reason: r.Reason, Step: r.Step, Busy: r.Busy(), Host: r.Host,
		WarnBytes: t.WarnBytes, CritBytes: t.CritBytes, WarnSeconds: t.WarnSeconds, CritSeconds: t.CritSeconds}
	if r.Port != nil {
		w.Port = *r.Port
	}
	if h := r.Health; h != nil {
		w.LagBytes, w.LagSeconds, w.CheckedAt = h.LagBytes, h.LagSeconds, h.CheckedAt
		w.SafeWALBytes, w.WALStatus = r.Details.SafeWALBytes, r.Details.WALStatus
		w.Detail, w.LogLine = r.Details.Detail, r.Details.LogLine
		if w.Detail == "" && r.Status == store.HealthError {
			w.Detail = h.Reason
		}
	}
	if !w.Deployed {
		return w, nil
	}
	to := time.Now()
	from := to.Add(-chartWindow)
	hist, err := s.store.ComponentHistory(c.Request().Context(), e.ID, store.ComponentReplica, from)
	if err != nil {
		return w, err
	}
	pts := make([]views.LagPoint, len(hist))
	for i, h := range hist {
		pts[i] = views.LagPoint{At: h.CheckedAt, Bytes: h.LagBytes, Seconds: h.LagSeconds}
	}
	w.Chart = views.BuildLagChart(pts, from, to, t.WarnBytes, t.CritBytes, t.WarnSeconds, t.CritSeconds)
	return w, nil
}

// replicaCard builds the Read Replica card.
func (s *Server) replicaCard(c echo.Context, e store.Environment, saved store.DatabaseSettings) (views.Replica, error) {
	r, err := s.loadReplica(c.Request().Context(), e, saved, true)
	if err != nil {
		return views.Replica{}, err
	}
	u, _ := currentUser(c)
	v := views.Replica{Name: e.Name, Known: r.Known, CanChange: u.CanChange(), Enabled: r.Enabled}
	v.Requirements, v.Met = requirementViews(r.Requirements)
	v.Widget, err = s.replicaWidget(c, e, r)
	return v, err
}
