package web

import (
	"github.com/labstack/echo/v4"
)

func (s *Server) setDisabled(c echo.Context, disabled bool) error {
	u, err := s.otherUser(c)
	if err != nil {
		return err
	}
	if _, err := s.store.SetUserDisabled(c.Request().Context(), u.ID, disabled); err != nil {
		return err
	}
	action, word := "user.enable", "enabled"
	if disabled {
		action, word = "user.disable", "disabled"
	}
	s.audit(c, action, u.Email, "")
	s.flash(c, "success", "Account "+u.Email+" "+word+".")
	return redirect(c, "/users")
}

// disableUser stops an account from signing in or using its tokens and ends its sessions.
func (s *Server) disableUser(c echo.Context) error { return s.setDisabled(c, true) }

// enableUser lets a disabled account sign in again.
func (s *Server) enableUser(c echo.Context) error { return s.setDisabled(c, false) }
