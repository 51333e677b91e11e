package web

import (
	"github.com/labstack/echo/v4"
)

// endUserSessions signs an account out everywhere.
func (s *Server) endUserSessions(c echo.Context) error {
	u, err := s.otherUser(c)
	if err != nil {
		return err
	}
	if _, err := s.store.EndUserSessions(c.Request().Context(), u.ID); err != nil {
		return err
	}
	s.audit(c, "user.sessions_end", u.Email, "")
	s.flash(c, "success", "Every session of "+u.Email+" has ended.")
	return redirect(c, "/users")
}
