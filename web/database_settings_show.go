package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// showPendingNotice is the redeploy-pending notice, fetched again when a
// job starts or ends.
func (s *Server) showPendingNotice(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	n, err := s.loadPendingNotice(c, e)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.PendingNoticeBox(n))
}

// showAppliedValues is the Optimization card's applied column, swapped in
// by id after each health check (the inputs stay as typed).
func (s *Server) showAppliedValues(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	st, err := s.loadState(ctx, e, needHealth)
	if err != nil {
		return err
	}
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return err
	}
	rows, err := parameterRows(e, saved, serverSettings(st.health))
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.AppliedValues(rows))
}

// showPoolingCard is the Connection pooling card, refreshed after each
// health check.
func (s *Server) showPoolingCard(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return err
	}
	ps, err := s.loadPooler(ctx, e, saved)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.PoolingCard(poolingView(e, saved, ps)))
}
