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
	h, n, o, err := s.loadOverviewPage(c, e)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name, "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentOverview(p, h, n, o))
}

// showDatabaseTab is Settings → Database.
func (s *Server) showDatabaseTab(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	d, err := s.loadDatabaseSettingsPage(c, e, nil)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name+" · Database", "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentDatabaseSettings(p, d.head, d.notice, d.settings))
}

// showEnvironmentLive is the header with actions and job strip (polled while a job runs).
func (s *Server) showEnvironmentLive(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	h, err := s.loadHeader(c, e)
	if err != nil {
		return err
	}
	if !h.Busy() {
		// This is polled only while a job runs: the job has just ended.
		c.Response().Header().Set("HX-Trigger", "env-changed")
	}
	return s.renderFragment(c, http.StatusOK, views.EnvironmentHeader(h))
}

// showOverviewBody is the Overview's cards, fetched again when a job starts or ends.
func (s *Server) showOverviewBody(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	o, err := s.loadOverview(c, e)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.OverviewBody(o))
}

// showDatabaseCard is the Overview's self-refreshing database card.
func (s *Server) showDatabaseCard(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	d, err := s.loadDatabaseCard(c.Request().Context(), e)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.DatabaseWidget(d))
}

// showEnvironmentHealth is the self-refreshing health badge.
func (s *Server) showEnvironmentHealth(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	st, err := s.loadState(c.Request().Context(), e, badgeNeeds(e))
	if err != nil {
		return err
	}
	// The Database card listens for this and refreshes with the badge.
	c.Response().Header().Set("HX-Trigger", "health-refreshed")
	return s.renderFragment(c, http.StatusOK, views.HealthCell(e.Name, healthOf(e, st)))
}
