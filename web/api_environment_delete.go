package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
)

// apiDeleteEnvironment answers DELETE /api/v1/environments/{name} with the
// delete job (202); it takes a pre-delete backup first unless
// ?skip_backup=true.
func (s *Server) apiDeleteEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	var skip bool
	switch v := c.QueryParam("skip_backup"); v {
	case "", "false":
	case "true":
		skip = true
	default:
		return invalidFields(map[string]string{"skip_backup": "want true or false"})
	}
	j, err := s.enqueueWith(c, e, provisioner.KindDelete, provisioner.DeleteParams{SkipBackup: skip}, deleteDetail(skip))
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}
