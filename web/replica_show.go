package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// showReplicaWidget is the Read Replica card's status widget, fetched again
// after each health check, when a job starts or ends and after a save.
func (s *Server) showReplicaWidget(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return err
	}
	r, err := s.loadReplica(ctx, e, saved, false)
	if err != nil {
		return err
	}
	w, err := s.replicaWidget(c, e, r)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.ReplicaStatus(w))
}
