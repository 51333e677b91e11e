package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
)

// apiShowEnvironment answers GET /api/v1/environments/{name}.
func (s *Server) apiShowEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	st, err := s.loadState(c.Request().Context(), e, needAll)
	if err != nil {
		return err
	}
	out := toAPIEnvironment(e, st)
	if s.jobs != nil && e.Deployed() {
		out.OdooConf = s.jobs.OdooConfPath(e.Name)
	}
	saved, err := s.store.DatabaseSettings(c.Request().Context(), e.ID)
	if err != nil {
		return err
	}
	ps, err := s.loadPooler(c.Request().Context(), e, saved)
	if err != nil {
		return err
	}
	out.Pooler = &apiPooler{Status: ps.Status, Port: ps.Port, Reason: ps.Reason}
	r, err := s.loadReplica(c.Request().Context(), e, saved, false)
	if err != nil {
		return err
	}
	out.Replica = &apiReplicaBrief{Status: r.Status, Port: r.Port}
	return c.JSON(http.StatusOK, out)
}
