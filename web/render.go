package web

import (
	"bytes"
	"net/http"

	"github.com/a-h/templ"
	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// isHTMX reports whether the request is an htmx request that wants a fragment
// (boosted requests want the whole page).
func isHTMX(c echo.Context) bool {
	h := c.Request().Header
	return h.Get("HX-Request") == "true" && h.Get("HX-Boosted") != "true"
}

// render writes a page: the content inside the layout, or the content alone
// for an htmx request. It renders into a buffer first so that a failing
// component never leaves half a page on the wire.
func (s *Server) render(c echo.Context, status int, p views.Page, content templ.Component) error {
	comp := content
	if !isHTMX(c) {
		comp = views.Layout(s.withFlash(c, p), content)
	}
	return s.renderComponent(c, status, comp)
}

// renderFragment writes a component alone, whatever the request.
func (s *Server) renderFragment(c echo.Context, status int, comp templ.Component) error {
	return s.renderComponent(c, status, comp)
}

func (s *Server) renderComponent(c echo.Context, status int, comp templ.Component) error {
	var buf bytes.Buffer
	if err := comp.Render(c.Request().Context(), &buf); err != nil {
		return err
	}
	return c.HTMLBlob(status, buf.Bytes())
}

// page builds the common page model for the current request.
func (s *Server) page(c echo.Context, title, nav string) views.Page {
	p := views.Page{Title: title, Nav: nav, CSRF: s.csrfToken(c)}
	if u, ok := currentUser(c); ok {
		p.User = &views.User{Email: u.Email, Role: u.Role, CanChange: u.CanChange()}
	}
	return p
}

const flashKey = "flash"

// flash stores a message for the next page this session sees.
func (s *Server) flash(c echo.Context, kind, text string) {
	s.sessions.Put(c.Request().Context(), flashKey, kind+"\x00"+text)
}

func (s *Server) withFlash(c echo.Context, p views.Page) views.Page {
	if _, ok := c.Get(sessionLoadedKey).(bool); !ok {
		return p
	}
	v := s.sessions.PopString(c.Request().Context(), flashKey)
	if v == "" {
		return p
	}
	kind, text, _ := bytes.Cut([]byte(v), []byte{0})
	p.Flash = append(p.Flash, views.Flash{Kind: string(kind), Text: string(text)})
	return p
}

// redirect answers a form post: 303 for plain requests, HX-Redirect for htmx.
func redirect(c echo.Context, to string) error {
	if c.Request().Header.Get("HX-Request") == "true" {
		c.Response().Header().Set("HX-Redirect", to)
		return c.NoContent(http.StatusOK)
	}
	return c.Redirect(http.StatusSeeOther, to)
}
