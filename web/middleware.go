package web

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"mime"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
)

const (
	userKey          = "user"
	sessionLoadedKey = "session_loaded"
	sessionUserID    = "user_id"
	sessionCSRF      = "csrf"
	sessionSignedIn  = "signed_in_at"
)

// requestLog logs each request once, at debug level.
func (s *Server) requestLog(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		err := next(c)
		s.log.Debug("request", "method", c.Request().Method, "path", c.Request().URL.Path,
			"status", c.Response().Status, "duration", time.Since(start))
		return err
	}
}

func randomToken(n int) string {
	b := make([]byte, n)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// csrfToken returns the CSRF token for the page's forms and htmx: the
// session's once signed in (created on first use), before that the one in
// the signed anonymous cookie.
func (s *Server) csrfToken(c echo.Context) string {
	if _, ok := c.Get(sessionLoadedKey).(bool); !ok {
		return ""
	}
	ctx := c.Request().Context()
	if s.sessions.GetInt64(ctx, sessionUserID) == 0 {
		return s.anonCSRF(c, true)
	}
	t := s.sessions.GetString(ctx, sessionCSRF)
	if t == "" {
		t = randomToken(32)
		s.sessions.Put(ctx, sessionCSRF, t)
	}
	return t
}

// csrf refuses every state-changing request that a browser says comes from
// another site, or whose token does not match. The token is read from the
// X-CSRF-Token header (as htmx sends it), otherwise from the _csrf field
// of a urlencoded body only: never from the query string, and never by
// parsing a multipart body (an archive upload's handler reads its token
// from the body's first part itself).
func (s *Server) csrf(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Set(sessionLoadedKey, true)
		r := c.Request()
		switch r.Method {
		case http.MethodGet, http.MethodHead, http.MethodOptions:
			return next(c)
		}
		if err := s.checkOrigin(c); err != nil {
			return err
		}
		ctx := r.Context()
		var want string
		if s.sessions.GetInt64(ctx, sessionUserID) != 0 {
			want = s.sessions.GetString(ctx, sessionCSRF)
		} else {
			want = s.anonCSRF(c, false)
		}
		got := r.Header.Get("X-CSRF-Token")
		if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); got == "" && mt == "multipart/form-data" && takesFiles(c.Path()) {
			// An upload: its handler reads the token from the body's
			// first part, before the file (see checkUploadCSRF).
			c.Set(csrfDeferredKey, want)
			return next(c)
		}
		if got == "" {
			if mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mt == "application/x-www-form-urlencoded" {
				got = r.PostFormValue("_csrf")
			}
		}
		if want == "" || subtle.ConstantTimeCompare([]byte(want), []byte(got)) != 1 {
			return echo.NewHTTPError(http.StatusForbidden, "The form has expired or did not come from pgdeck (missing or wrong CSRF token). Reload the page and try again.")
		}
		return next(c)
	}
}

// loadUser puts the signed-in user, if any, into the context.
func (s *Server) loadUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		ctx := c.Request().Context()
		id := s.sessions.GetInt64(ctx, sessionUserID)
		if id != 0 {
			u, err := s.store.UserByID(ctx, id)
			signedIn := time.Unix(0, s.sessions.GetInt64(ctx, sessionSignedIn))
			switch {
			case err == nil && (u.Disabled() || signedIn.Before(u.SessionsValidAfter)):
				// Disabled, or the owner ended this account's sessions.
				if err := s.sessions.Destroy(ctx); err != nil {
					return err
				}
			case err == nil:
				c.Set(userKey, u)
			case errors.Is(err, store.ErrNotFound):
				s.sessions.Remove(ctx, sessionUserID)
			default:
				return err
			}
		}
		return next(c)
	}
}

func currentUser(c echo.Context) (store.User, bool) {
	u, ok := c.Get(userKey).(store.User)
	return u, ok
}

// requireUser sends anonymous visitors to setup (no account yet) or login.
func (s *Server) requireUser(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		if _, ok := currentUser(c); ok {
			return next(c)
		}
		n, err := s.store.CountUsers(c.Request().Context())
		if err != nil {
			return err
		}
		to := "/login"
		if n == 0 {
			to = "/setup"
		}
		// A form post, or an htmx request (a polled badge, an action
		// button), cannot follow a redirect to the login page: it gets the
		// message, which htmx shows in the page's error region.
		if c.Request().Method != http.MethodGet || isHTMX(c) {
			return echo.NewHTTPError(http.StatusUnauthorized, "Your session has ended. Log in again.")
		}
		return redirect(c, to)
	}
}

// requireRole lets through the signed-in users (or token holders) whose
// account allows, and answers 403 with refusal to everyone else. It is the
// one role check of every route group.
func requireRole(allows func(store.User) bool, refusal string) echo.MiddlewareFunc {
	return func(next echo.HandlerFunc) echo.HandlerFunc {
		return func(c echo.Context) error {
			if u, ok := currentUser(c); ok && allows(u) {
				return next(c)
			}
			return echo.NewHTTPError(http.StatusForbidden, refusal)
		}
	}
}

// The role checks of the routes.
var (
	// requireChanger refuses viewers: they see everything and change nothing.
	requireChanger = requireRole(store.User.CanChange, "Your role (viewer) can look but not change anything.")
	// requireAdmin lets only owners and admins see a page.
	requireAdmin = requireRole(store.User.CanChange, "Only owners and admins can see this page.")
	// requireOwner lets only owners manage people.
	requireOwner = requireRole(func(u store.User) bool { return u.Role == store.RoleOwner }, "Only owners can manage people.")
	// apiRequireChanger refuses viewers' tokens.
	apiRequireChanger = requireRole(store.User.CanChange, "this token's role (viewer) cannot change anything")
)

// apiAuth authenticates API requests by their bearer token.
func (s *Server) apiAuth(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Request().Header.Get("Authorization")
		tok, ok := strings.CutPrefix(h, "Bearer ")
		if !ok || strings.TrimSpace(tok) == "" {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="pgdeck"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "missing bearer token: send Authorization: Bearer <token>")
		}
		u, err := s.store.UserByTokenHash(c.Request().Context(), HashAPIToken(strings.TrimSpace(tok)))
		if errors.Is(err, store.ErrNotFound) {
			c.Response().Header().Set("WWW-Authenticate", `Bearer realm="pgdeck", error="invalid_token"`)
			return echo.NewHTTPError(http.StatusUnauthorized, "invalid or revoked token")
		}
		if err != nil {
			return err
		}
		c.Set(userKey, u)
		return next(c)
	}
}

// auditEntry is an entry by the current user from the request's addresses:
// the client (as a trusted proxy reports it) and the connection's peer.
func auditEntry(c echo.Context, action, target, detail string) store.AuditEntry {
	actor := "anonymous"
	if u, ok := currentUser(c); ok {
		actor = u.Email
	}
	peer, _, err := net.SplitHostPort(c.Request().RemoteAddr)
	if err != nil {
		peer = c.Request().RemoteAddr
	}
	return store.AuditEntry{Actor: actor, Action: action, Target: target, Detail: detail, RemoteAddr: c.RealIP(), PeerAddr: peer}
}

// audit records an action by the current user; failures are logged, not fatal.
func (s *Server) audit(c echo.Context, action, target, detail string) {
	if err := s.store.Audit(c.Request().Context(), auditEntry(c, action, target, detail)); err != nil {
		s.log.Error("audit", "action", action, "error", err)
	}
}

// auditCoalesced records an action that may come in floods (refused
// attempts): repeats from the same addresses count into one entry.
func (s *Server) auditCoalesced(c echo.Context, action, target string) {
	if err := s.store.AuditCoalesced(c.Request().Context(), auditEntry(c, action, target, ""), rateLimitedCoalesce); err != nil {
		s.log.Error("audit", "action", action, "error", err)
	}
}
