package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// auditPageSize is how many entries one page of the audit log shows.
const auditPageSize = 100

// listAudit shows a page of the audit log, newest first, filtered by action
// (an exact action, or a prefix ending in ".") and by who did it.
func (s *Server) listAudit(c echo.Context) error {
	ctx := c.Request().Context()
	q := c.QueryParams()
	f := store.AuditFilter{
		Action: strings.TrimSpace(q.Get("action")),
		Actor:  strings.TrimSpace(q.Get("actor")),
		Limit:  auditPageSize + 1,
	}
	if CheckText(f.Action) != "" || CheckText(f.Actor) != "" || len(f.Action) > 64 || len(f.Actor) > maxEmailBytes {
		return echo.NewHTTPError(http.StatusUnprocessableEntity, "The filter holds text pgdeck does not accept.")
	}
	if b := q.Get("before"); b != "" {
		id, err := strconv.ParseInt(b, 10, 64)
		if err != nil || id <= 0 {
			return echo.NewHTTPError(http.StatusUnprocessableEntity, "before must be an entry id.")
		}
		f.Before = id
	}
	es, err := s.store.FindAudit(ctx, f)
	if err != nil {
		return err
	}
	actions, err := s.store.AuditActions(ctx)
	if err != nil {
		return err
	}
	a := views.AuditPage{Actions: actions, Action: f.Action, Actor: f.Actor, First: f.Before == 0}
	if len(es) > auditPageSize {
		es = es[:auditPageSize]
		a.Next = views.AuditURL(f.Action, f.Actor, strconv.FormatInt(es[len(es)-1].ID, 10))
	}
	for _, e := range es {
		a.Entries = append(a.Entries, views.AuditEntry{At: e.At, Actor: e.Actor, Action: e.Action, Target: e.Target, Detail: e.Detail,
			RemoteAddr: e.RemoteAddr, PeerAddr: e.PeerAddr, Repeats: e.Repeats, LastAt: e.LastAt})
	}
	p := s.page(c, "Audit log", "audit")
	return s.render(c, http.StatusOK, p, views.AuditLogPage(p, a))
}
