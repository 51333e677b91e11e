package web

import (
	"errors"
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// environment loads the environment named in the URL, or answers 404.
func (s *Server) environment(c echo.Context) (store.Environment, error) {
	name := c.Param("name")
	if validateName(name) != "" {
		return store.Environment{}, echo.NewHTTPError(http.StatusNotFound, "There is no environment named "+quoteName(name)+".")
	}
	e, err := s.store.EnvironmentByName(c.Request().Context(), name)
	if errors.Is(err, store.ErrNotFound) {
		return store.Environment{}, echo.NewHTTPError(http.StatusNotFound, "There is no environment named "+quoteName(name)+".")
	}
	return e, err
}

func quoteName(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return "“" + s + "”"
}

// showEnvironment is the Overview tab.
func (s *Server) showEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name, "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentOverview(p, environmentView(e)))
}

// showDatabaseTab is Settings → Database.
func (s *Server) showDatabaseTab(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name+" · Database", "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentDatabaseSettings(p, environmentView(e)))
}

// showEnvironmentHealth is the self-refreshing health badge.
func (s *Server) showEnvironmentHealth(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	v := environmentView(e)
	return s.renderFragment(c, http.StatusOK, views.HealthCell(v.Name, v.Health))
}
