package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
)

// apiDeleteEnvironment answers DELETE /api/v1/environments/{name} with the delete job (202).
func (s *Server) apiDeleteEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	j, err := s.enqueue(c, e, provisioner.KindDelete)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}
