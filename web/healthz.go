package web

import (
	"context"
	"net/http"
	"time"

	"github.com/labstack/echo/v4"
)

// showHealthz answers 200 when the process and its store are up, 503 otherwise.
func (s *Server) showHealthz(c echo.Context) error {
	ctx, cancel := context.WithTimeout(c.Request().Context(), 2*time.Second)
	defer cancel()
	if err := s.store.Ping(ctx); err != nil {
		s.log.Warn("healthz: store unreachable", "error", err)
		// The reason (socket path, role) goes to the log only: anyone may ask.
		return c.JSON(http.StatusServiceUnavailable, map[string]string{"status": "unavailable", "store": "unreachable"})
	}
	return c.JSON(http.StatusOK, map[string]string{"status": "ok", "version": s.version})
}
