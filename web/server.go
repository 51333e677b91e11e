// Package web is pgdeck's echo server: routes, middleware, one file per page
// or action, and the render helper.
package web

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/alexedwards/scs/pgxstore"
	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// Deps are what the web layer needs from the rest of pgdeck.
type Deps struct {
	Store *store.Store
	Log   *slog.Logger
	// Secure marks session cookies Secure (pgdeck serves TLS).
	Secure bool
	// Version is shown by /healthz.
	Version string
	// Jobs queues changes to environments (the provisioner); nil in tests
	// that need no jobs.
	Jobs Jobs
	// Box opens sealed database passwords (for the reveal).
	Box *secret.Box
	// Metrics serves /metrics; nil leaves the route out.
	Metrics http.Handler
}

// Jobs is what the web layer asks of the provisioner.
type Jobs interface {
	Enqueue(ctx context.Context, env store.Environment, kind provisioner.Kind, by string) (store.Job, error)
	OdooConfPath(env string) string
}

// Server holds the handlers' dependencies and the echo instance.
type Server struct {
	store    *store.Store
	log      *slog.Logger
	sessions *scs.SessionManager
	limiter  *loginLimiter
	version  string
	jobs     Jobs
	box      *secret.Box
	metrics  http.Handler
	echo     *echo.Echo
}

// New builds the server and its routes.
func New(d Deps) *Server {
	sm := scs.New()
	sm.Store = pgxstore.NewWithCleanupInterval(d.Store.Pool, 30*time.Minute)
	sm.Lifetime = 7 * 24 * time.Hour
	sm.IdleTimeout = 24 * time.Hour
	sm.Cookie.Name = "pgdeck_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = d.Secure
	sm.Cookie.Path = "/"

	s := &Server{
		store:    d.Store,
		log:      d.Log,
		sessions: sm,
		limiter:  newLoginLimiter(5, 15*time.Minute),
		version:  d.Version,
		jobs:     d.Jobs,
		box:      d.Box,
		metrics:  d.Metrics,
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// The client address (login rate limit, audit log) comes from the
	// connection; X-Forwarded-For is believed only from a proxy on this host,
	// so that a client cannot forge it to escape the per-address limit.
	e.IPExtractor = echo.ExtractIPFromXFFHeader(echo.TrustLinkLocal(false), echo.TrustPrivateNet(false))
	s.echo = e
	s.routes()
	return s
}

// Handler is the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }
