package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// listEnvironments shows every environment with its health.
func (s *Server) listEnvironments(c echo.Context) error {
	ctx := c.Request().Context()
	envs, err := s.store.ListEnvironments(ctx)
	if err != nil {
		return err
	}
	hs, js, err := s.loadStates(ctx)
	if err != nil {
		return err
	}
	newest, err := s.store.NewestGoodBackups(ctx)
	if err != nil {
		return err
	}
	vms := make([]views.Environment, len(envs))
	for i, e := range envs {
		vms[i] = environmentView(e, stateFrom(e, hs, js))
		var at *time.Time
		if t, ok := newest[e.Name]; ok {
			at = &t
		}
		vms[i].Backup = s.ageOf(at)
	}
	p := s.page(c, "Environments", "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentsPage(p, vms))
}
