package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

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
