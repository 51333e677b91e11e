package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// showSetup shows the owner form while no account exists, 404 after.
func (s *Server) showSetup(c echo.Context) error {
	n, err := s.store.CountUsers(c.Request().Context())
	if err != nil {
		return err
	}
	if n > 0 {
		return echo.NewHTTPError(http.StatusNotFound, "pgdeck is already set up.")
	}
	return s.render(c, http.StatusOK, s.page(c, "Set up pgdeck", ""), views.SetupPage(s.page(c, "", ""), views.Form{}))
}
