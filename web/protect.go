package web

import (
	"mime"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
)

// maxBodyBytes bounds every request body: browser forms and API requests are
// small. A route that takes large uploads (the coming backup import) must
// stream its body to its own folder under its own limit.
const maxBodyBytes = 1 << 20

// maxHeaderBytes bounds the request headers (http.Server.MaxHeaderBytes).
const MaxHeaderBytes = 64 << 10

// contentSecurityPolicy fits the pages: scripts and styles come from
// /static only (no inline script, style or event handler), htmx talks to
// pgdeck only, and no other site may frame pgdeck.
const contentSecurityPolicy = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; " +
	"connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// limitBody refuses bodies over maxBodyBytes (413) and multipart bodies (415:
// no route takes files but the uploads and the forms of formUploadRoutes,
// which have their own bounds), and removes the temporary files of any multipart
// form a handler parsed. scs hands handlers a copy of the request, so
// net/http never removes those files itself (golang/go#58809).
func (s *Server) limitBody(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		defer func() {
			for _, req := range []*http.Request{r, c.Request()} {
				if req.MultipartForm != nil {
					_ = req.MultipartForm.RemoveAll()
				}
			}
		}()
		if uploadRoutes[c.Path()] {
			return next(c) // the handler streams and bounds it
		}
		if limit, ok := formUploadRoutes[c.Path()]; ok {
			// A small form with files: bounded as a whole; its handler
			// reads the parts.
			if r.ContentLength > limit {
				return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request is too large.")
			}
			if r.Body != nil && r.Body != http.NoBody {
				r.Body = http.MaxBytesReader(c.Response(), r.Body, limit)
			}
			return next(c)
		}
		if r.ContentLength > maxBodyBytes {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request is too large.")
		}
		if ct := r.Header.Get("Content-Type"); ct != "" {
			if mt, _, _ := mime.ParseMediaType(ct); strings.HasPrefix(mt, "multipart/") {
				return echo.NewHTTPError(http.StatusUnsupportedMediaType, "pgdeck takes no file uploads here.")
			}
		}
		if r.Body != nil && r.Body != http.NoBody {
			r.Body = http.MaxBytesReader(c.Response(), r.Body, maxBodyBytes)
		}
		return next(c)
	}
}

// checkHost answers 421 to a request whose Host is a name pgdeck was not told
// about: a page on another site that points its own name at 127.0.0.1 (DNS
// rebinding) must not reach pgdeck. IP literals and localhost are always
// fine (a rebinding attack needs a name); other names must be the host of
// PGDECK_PUBLIC_URL or of the listen address. /healthz answers any Host,
// for probes.
func (s *Server) checkHost(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		r := c.Request()
		if r.URL.Path == "/healthz" || s.hostAllowed(r.Host) {
			return next(c)
		}
		return echo.NewHTTPError(http.StatusMisdirectedRequest,
			"pgdeck does not answer to this host name. Open it at its public URL (set PGDECK_PUBLIC_URL to the address people use).")
	}
}

func (s *Server) hostAllowed(hostport string) bool {
	host := hostport
	if h, _, err := net.SplitHostPort(hostport); err == nil {
		host = h
	}
	host = strings.ToLower(strings.TrimSuffix(strings.Trim(host, "[]"), "."))
	if host == "" {
		return false
	}
	if _, err := netip.ParseAddr(host); err == nil || host == "localhost" {
		return true
	}
	for _, h := range s.hosts {
		if host == h {
			return true
		}
	}
	return false
}

// checkOrigin refuses state-changing browser requests that a browser says
// come from another site (Sec-Fetch-Site, Origin). Clients that send
// neither (scripts, old browsers) still need the CSRF token.
func (s *Server) checkOrigin(c echo.Context) error {
	h := c.Request().Header
	switch h.Get("Sec-Fetch-Site") {
	case "", "same-origin", "none":
	default:
		return echo.NewHTTPError(http.StatusForbidden, "The request came from another site.")
	}
	if o := h.Get("Origin"); o != "" {
		u, err := url.Parse(o)
		if err != nil || u.Host == "" || (!strings.EqualFold(u.Host, c.Request().Host) && !s.hostAllowedOrigin(u)) {
			return echo.NewHTTPError(http.StatusForbidden, "The request came from another site.")
		}
	}
	return nil
}

// hostAllowedOrigin reports whether an Origin is the public URL's.
func (s *Server) hostAllowedOrigin(u *url.URL) bool {
	return s.publicURL != nil && strings.EqualFold(u.Scheme, s.publicURL.Scheme) && strings.EqualFold(u.Host, s.publicURL.Host)
}

// securityHeaders sets the headers every answer carries: the CSP, HSTS when
// pgdeck is reached over https, and no-store on everything but static files
// (pages carry CSRF tokens, revealed passwords and new API tokens).
func (s *Server) securityHeaders(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		h := c.Response().Header()
		h.Set("Content-Security-Policy", contentSecurityPolicy)
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("X-Frame-Options", "DENY")
		h.Set("Referrer-Policy", "same-origin")
		h.Set("Cross-Origin-Opener-Policy", "same-origin")
		if s.hsts {
			h.Set("Strict-Transport-Security", "max-age="+strconv.Itoa(365*24*3600))
		}
		if !strings.HasPrefix(c.Request().URL.Path, "/static/") {
			h.Set("Cache-Control", "no-store")
		}
		return next(c)
	}
}
