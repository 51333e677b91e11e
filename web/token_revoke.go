package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
)

// revokeToken revokes one of the user's tokens; any role may revoke its own.
func (s *Server) revokeToken(c echo.Context) error {
	u, _ := currentUser(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such token.")
	}
	t, err := s.store.RevokeAPIToken(c.Request().Context(), u.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such token.")
	}
	if err != nil {
		return err
	}
	s.audit(c, "token.revoke", t.Name, t.Prefix)
	s.flash(c, "success", "Token "+t.Name+" revoked.")
	return redirect(c, "/account")
}
