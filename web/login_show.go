package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// showLogin shows the sign-in form, or sends a fresh install to setup.
func (s *Server) showLogin(c echo.Context) error {
	n, err := s.store.CountUsers(c.Request().Context())
	if err != nil {
		return err
	}
	if n == 0 {
		return redirect(c, "/setup")
	}
	if _, ok := currentUser(c); ok {
		return redirect(c, "/environments")
	}
	p := s.page(c, "Log in", "")
	return s.render(c, http.StatusOK, p, views.LoginPage(p, views.Form{}))
}
