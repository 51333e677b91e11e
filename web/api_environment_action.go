package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
)

// apiRunAction answers POST /api/v1/environments/{name}/actions/{action} with the job (202).
func (s *Server) apiRunAction(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	kind, ok := provisioner.ParseAction(c.Param("action"))
	if !ok {
		return echo.NewHTTPError(http.StatusNotFound, "unknown action: want deploy, redeploy, stop, start or restart")
	}
	j, err := s.enqueue(c, e, kind)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}
