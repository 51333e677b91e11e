package web

import (
	"github.com/labstack/echo/v4"
)

// deleteSession signs out.
func (s *Server) deleteSession(c echo.Context) error {
	s.audit(c, "logout", "", "")
	if err := s.sessions.Destroy(c.Request().Context()); err != nil {
		return err
	}
	return redirect(c, "/login")
}
