package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// startReplicaJob queues a deploy, rebuild or removal of env's replica
// after checking what the page says: a deploy or rebuild needs every
// requirement met (403 with the first unmet one's reason) and the read
// replica saved on and applied by a redeploy (422 saying so); a deploy
// needs no replica yet, a rebuild or removal one (422). A job already
// queued or running is a 409 (enqueue). Nothing is queued on a refusal.
func (s *Server) startReplicaJob(c echo.Context, e store.Environment, kind provisioner.Kind) (store.Job, error) {
	if s.jobs == nil {
		return store.Job{}, echo.NewHTTPError(http.StatusServiceUnavailable, "Jobs are not available in this process.")
	}
	ctx := c.Request().Context()
	if kind != provisioner.KindRemoveReplica {
		reqs, err := s.jobs.ReplicaRequirements(ctx, e)
		if err != nil {
			return store.Job{}, err
		}
		if err := provisioner.RequirementsMet(reqs); err != nil {
			if errors.Is(err, provisioner.ErrRequirement) {
				return store.Job{}, echo.NewHTTPError(http.StatusForbidden, strings.TrimPrefix(err.Error(), provisioner.ErrRequirement.Error()+": "))
			}
			return store.Job{}, err
		}
		saved, err := s.store.DatabaseSettings(ctx, e.ID)
		if err != nil {
			return store.Job{}, err
		}
		r, err := s.loadReplica(ctx, e, saved, false)
		if err != nil {
			return store.Job{}, err
		}
		switch {
		case !r.Enabled:
			return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity,
				"Read replica is off for "+e.Name+": enable it in Settings → Database, save, and redeploy; then deploy the replica.")
		case !r.Applied:
			return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity,
				"Read replica is saved on but not applied yet: redeploy "+e.Name+", then deploy the replica.")
		}
	}
	switch {
	case kind == provisioner.KindDeployReplica && e.ReplicaPort != nil:
		return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, e.Name+" already has a replica; Rebuild replaces it.")
	case kind == provisioner.KindRebuildReplica && e.ReplicaPort == nil:
		return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, e.Name+" has no replica to rebuild; deploy one.")
	case kind == provisioner.KindRemoveReplica && e.ReplicaPort == nil:
		return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, e.Name+" has no replica to remove.")
	}
	return s.enqueue(c, e, kind)
}

// deployReplica is Deploy Replica.
func (s *Server) deployReplica(c echo.Context) error {
	return s.runReplicaAction(c, provisioner.KindDeployReplica, "Deploying the read replica of ")
}

// rebuildReplica is Rebuild: a new replica from a fresh base backup.
func (s *Server) rebuildReplica(c echo.Context) error {
	return s.runReplicaAction(c, provisioner.KindRebuildReplica, "Rebuilding the read replica of ")
}

// runReplicaAction queues a replica job from the page. With htmx it
// answers with the header (its job strip follows the job) and tells the
// page a job started (env-changed: the widget and the notice refresh);
// after a removal it also closes the confirmation (a fresh one, out of
// band). Without htmx it goes back to Settings → Database.
func (s *Server) runReplicaAction(c echo.Context, kind provisioner.Kind, what string) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	if _, err := s.startReplicaJob(c, e, kind); err != nil {
		return err
	}
	if !isHTMX(c) {
		s.flash(c, "info", what+e.Name+" queued.")
		return redirect(c, "/environments/"+e.Name+"/settings/database")
	}
	h, err := s.loadHeader(c, e)
	if err != nil {
		return err
	}
	c.Response().Header().Set("HX-Trigger", "env-changed")
	if kind == provisioner.KindRemoveReplica {
		w := views.ReplicaWidget{Name: e.Name, CSRF: s.csrfToken(c)}
		return s.renderFragment(c, http.StatusAccepted, views.ReplicaActionDone(h, w))
	}
	return s.renderFragment(c, http.StatusAccepted, views.EnvironmentHeader(h))
}
