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
	if _, err := s.enqueue(c, e, provisioner.KindDelete); err != nil {
		return err
	}
	s.flash(c, "info", "Deleting "+e.Name+": its database, filestore and odoo.conf are being removed.")
	return redirect(c, "/jobs")
}
