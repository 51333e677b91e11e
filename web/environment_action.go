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
	if s.jobs == nil {
		return store.Job{}, echo.NewHTTPError(http.StatusServiceUnavailable, "Jobs are not available in this process.")
	}
	u, _ := currentUser(c)
	j, err := s.jobs.Enqueue(c.Request().Context(), env, kind, u.Email)
	switch {
	case errors.Is(err, provisioner.ErrBusy):
		return store.Job{}, echo.NewHTTPError(http.StatusConflict, "Another job is already queued or running for "+env.Name+"; wait for it to finish.")
	case errors.Is(err, provisioner.ErrInvalidAction):
		_, msg, _ := strings.Cut(err.Error(), ": ")
		return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, msg)
	case err != nil:
		return store.Job{}, err
	}
	s.audit(c, "environment."+string(kind), env.Name, "job "+jobRef(j))
	return j, nil
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

// deleteEnvironment queues the delete once the operator typed the name.
func (s *Server) deleteEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	typed := strings.TrimSpace(c.Request().PostFormValue("confirm_name"))
	if typed != e.Name {
		h, o, err := s.loadOverviewPage(c, e)
		if err != nil {
			return err
		}
		msg := "Type the environment's name, " + e.Name + ", to confirm."
		if typed != "" {
			msg = "That is not this environment's name. Type " + e.Name + " to confirm."
		}
		o.Delete = views.Form{Values: map[string]string{"confirm_name": typed}, Errors: map[string]string{"confirm_name": msg}}
		p := s.page(c, e.Name, "environments")
		return s.render(c, http.StatusUnprocessableEntity, p, views.EnvironmentOverview(p, h, o))
	}
	if _, err := s.enqueue(c, e, provisioner.KindDelete); err != nil {
		return err
	}
	s.flash(c, "info", "Deleting "+e.Name+": its database, filestore and odoo.conf are being removed.")
	return redirect(c, "/jobs")
}

// revealPassword shows the database password to an owner or admin, audited.
func (s *Server) revealPassword(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	if len(e.DBPassword) == 0 || s.box == nil {
		return echo.NewHTTPError(http.StatusNotFound, "This environment has no database password yet.")
	}
	pw, err := s.box.Open(e.DBPassword)
	if err != nil {
		return err
	}
	s.audit(c, "environment.reveal_password", e.Name, "database password of "+e.DBUser)
	return s.renderFragment(c, http.StatusOK, views.RevealedPassword(pw))
}
