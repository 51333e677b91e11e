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

// enqueue starts a job for env, mapping the provisioner's refusals to 409/422
// with a message the operator can act on.
func (s *Server) enqueue(c echo.Context, env store.Environment, kind provisioner.Kind) (store.Job, error) {
	return s.enqueueWith(c, env, kind, nil, "")
}

// enqueueWith is enqueue with the job's parameters (nil: the kind's own);
// detail goes to the audit log after the job.
func (s *Server) enqueueWith(c echo.Context, env store.Environment, kind provisioner.Kind, params any, detail string) (store.Job, error) {
	if s.jobs == nil {
		return store.Job{}, echo.NewHTTPError(http.StatusServiceUnavailable, "Jobs are not available in this process.")
	}
	u, _ := currentUser(c)
	j, err := s.jobs.EnqueueWith(c.Request().Context(), env, kind, params, u.Email)
	if err := enqueueError(env, err); err != nil {
		return store.Job{}, err
	}
	if detail != "" {
		detail = ", " + detail
	}
	s.audit(c, "environment."+string(kind), env.Name, "job "+jobRef(j)+detail)
	return j, nil
}

// enqueueError maps the provisioner's refusals to HTTP errors: busy is a
// 409, an action that makes no sense now a 422 with the reason.
func enqueueError(env store.Environment, err error) error {
	switch {
	case errors.Is(err, provisioner.ErrBusy):
		return echo.NewHTTPError(http.StatusConflict, "Another job is already queued or running for "+env.Name+"; wait for it to finish.")
	case errors.Is(err, provisioner.ErrInvalidAction):
		_, msg, _ := strings.Cut(err.Error(), ": ")
		return echo.NewHTTPError(http.StatusUnprocessableEntity, msg)
	}
	return err
}

// runAction starts Deploy, Redeploy, Stop, Start or Restart.
func (s *Server) runAction(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	kind, ok := provisioner.ParseAction(c.Param("action"))
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such action.")
	}
	if _, err := s.enqueue(c, e, kind); err != nil {
		return err
	}
	if isHTMX(c) {
		h, err := s.loadHeader(c, e)
		if err != nil {
			return err
		}
		c.Response().Header().Set("HX-Trigger", "env-changed")
		return s.renderFragment(c, http.StatusAccepted, views.EnvironmentHeader(h))
	}
	s.flash(c, "info", strings.ToUpper(string(kind[:1]))+string(kind[1:])+" of "+e.Name+" queued.")
	return redirect(c, "/environments/"+e.Name)
}
