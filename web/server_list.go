package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// maxDialogsParam bounds the signature the polled table sends back; a
// longer one is simply taken as changed.
const maxDialogsParam = 4096

// showServers is the Servers page.
func (s *Server) showServers(c echo.Context) error {
	return s.renderServers(c, http.StatusOK, views.Form{}, "")
}

// renderServers writes the Servers page with the register form as typed
// and a refused removal's message.
func (s *Server) renderServers(c echo.Context, status int, form views.Form, removeErr string) error {
	loads, err := s.loadServers(c.Request().Context())
	if err != nil {
		return err
	}
	p := s.page(c, "Servers", "servers")
	return s.render(c, status, p, views.ServersPage(p, s.serversView(c, loads, form, removeErr)))
}

// showServersLive is the servers table, polled every few seconds. The
// Remove confirmations come with it, out of band, only when the servers
// they are for changed since the page (or the last refresh) drew them:
// replacing them would close one a person has open.
func (s *Server) showServersLive(c echo.Context) error {
	loads, err := s.loadServers(c.Request().Context())
	if err != nil {
		return err
	}
	v := s.serversView(c, loads, views.Form{}, "")
	sent := c.QueryParam("dialogs")
	dialogs := v.CanChange && (len(sent) > maxDialogsParam || sent != v.Dialogs)
	return s.renderFragment(c, http.StatusOK, views.ServersLiveUpdate(v, dialogs))
}
