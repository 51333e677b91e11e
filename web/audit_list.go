package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// listAudit shows the newest audit entries.
func (s *Server) listAudit(c echo.Context) error {
	es, err := s.store.ListAudit(c.Request().Context(), 200)
	if err != nil {
		return err
	}
	vms := make([]views.AuditEntry, len(es))
	for i, e := range es {
		vms[i] = views.AuditEntry{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail, RemoteAddr: e.RemoteAddr}
	}
	p := s.page(c, "Audit log", "audit")
	return s.render(c, http.StatusOK, p, views.AuditPage(p, vms))
}
