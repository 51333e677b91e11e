package web

import (
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/views"
)

// deleteEnvironment queues the delete once the operator typed the name.
func (s *Server) deleteEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	typed := strings.TrimSpace(c.Request().PostFormValue("confirm_name"))
	if typed != e.Name {
		h, n, o, err := s.loadOverviewPage(c, e)
		if err != nil {
			return err
		}
		msg := "Type the environment's name, " + e.Name + ", to confirm."
		if typed != "" {
			msg = "That is not this environment's name. Type " + e.Name + " to confirm."
		}
		o.Delete = views.Form{Values: map[string]string{"confirm_name": typed}, Errors: map[string]string{"confirm_name": msg}}
		p := s.page(c, e.Name, "environments")
		return s.render(c, http.StatusUnprocessableEntity, p, views.EnvironmentOverview(p, h, n, o))
	}
	skip := c.Request().PostFormValue("skip_backup") == "on"
	if _, err := s.enqueueWith(c, e, provisioner.KindDelete, provisioner.DeleteParams{SkipBackup: skip}, deleteDetail(skip)); err != nil {
		return err
	}
	note := "Deleting " + e.Name + ": a pre-delete backup is taken, then its database, filestore and odoo.conf are removed."
	if skip || !e.Deployed() {
		note = "Deleting " + e.Name + ": its database, filestore and odoo.conf are being removed."
	}
	s.flash(c, "info", note)
	return redirect(c, "/jobs")
}

// deleteDetail is what the audit log says of a delete's backup.
func deleteDetail(skip bool) string {
	if skip {
		return "without a pre-delete backup"
	}
	return "after a pre-delete backup"
}
