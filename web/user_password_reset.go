package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// resetUserPassword sets a new password for an account and ends its sessions.
func (s *Server) resetUserPassword(c echo.Context) error {
	u, err := s.otherUser(c)
	if err != nil {
		return err
	}
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	pw := formText(c, &f, "password")
	if msg := ValidatePassword(pw); msg != "" && f.Errors["password"] == "" {
		f.Errors["password"] = msg
	}
	if len(f.Errors) > 0 {
		return s.renderUsers(c, http.StatusUnprocessableEntity, u.ID, f)
	}
	release, ok := s.acquireHash(c.Request().Context())
	if !ok {
		return s.busy(c)
	}
	hash, err := HashPassword(pw)
	release()
	if err != nil {
		return err
	}
	if _, err := s.store.SetUserPassword(c.Request().Context(), u.ID, hash); err != nil {
		return err
	}
	s.audit(c, "user.password_reset", u.Email, "")
	s.flash(c, "success", "New password set for "+u.Email+". Its sessions have ended.")
	return redirect(c, "/users")
}
