package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// listEnvironments shows every environment with its health.
func (s *Server) listEnvironments(c echo.Context) error {
	envs, err := s.store.ListEnvironments(c.Request().Context())
	if err != nil {
		return err
	}
	vms := make([]views.Environment, len(envs))
	for i, e := range envs {
		vms[i] = environmentView(e)
	}
	p := s.page(c, "Environments", "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentsPage(p, vms))
}
