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

// environmentWithPage loads the environment named in the URL and its page model.
func (s *Server) environmentWithPage(c echo.Context) (store.Environment, views.EnvironmentPage, error) {
	e, err := s.environment(c)
	if err != nil {
		return e, views.EnvironmentPage{}, err
	}
	ep, err := s.environmentPage(c, e)
	return e, ep, err
}

func quoteName(s string) string {
	if len(s) > 60 {
		s = s[:60] + "…"
	}
	return "“" + s + "”"
}

// showEnvironment is the Overview tab.
func (s *Server) showEnvironment(c echo.Context) error {
	e, ep, err := s.environmentWithPage(c)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name, "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentOverview(p, ep))
}

// showDatabaseTab is Settings → Database.
func (s *Server) showDatabaseTab(c echo.Context) error {
	e, ep, err := s.environmentWithPage(c)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name+" · Database", "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentDatabaseSettings(p, ep))
}

// showEnvironmentLive is the header with actions and job strip (polled while a job runs).
func (s *Server) showEnvironmentLive(c echo.Context) error {
	_, ep, err := s.environmentWithPage(c)
	if err != nil {
		return err
	}
	if !ep.Busy() {
		// This is polled only while a job runs: the job has just ended.
		c.Response().Header().Set("HX-Trigger", "env-changed")
	}
	return s.renderFragment(c, http.StatusOK, views.EnvironmentHeader(ep))
}

// showOverviewBody is the Overview's cards, fetched again when a job starts or ends.
func (s *Server) showOverviewBody(c echo.Context) error {
	_, ep, err := s.environmentWithPage(c)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.OverviewBody(ep))
}

// showDatabaseCard is the Overview's self-refreshing database card.
func (s *Server) showDatabaseCard(c echo.Context) error {
	_, ep, err := s.environmentWithPage(c)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.DatabaseCard(ep))
}

// showEnvironmentHealth is the self-refreshing health badge.
func (s *Server) showEnvironmentHealth(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	st, err := s.loadState(c.Request().Context(), e)
	if err != nil {
		return err
	}
	// The Database card listens for this and refreshes with the badge.
	c.Response().Header().Set("HX-Trigger", "health-refreshed")
	return s.renderFragment(c, http.StatusOK, views.HealthCell(e.Name, healthOf(e, st)))
}
