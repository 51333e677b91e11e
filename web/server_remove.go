package web

import (
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// removeServer is Remove server in a server's confirmation. A refusal (the
// built-in server, a server that holds environments) shows the Servers
// page again with the reason (409).
func (s *Server) removeServer(c echo.Context) error {
	l, err := s.serverLoad(c)
	if err != nil {
		return err
	}
	if err := s.forgetServer(c, l); err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == http.StatusConflict {
			return s.renderServers(c, http.StatusConflict, views.Form{}, he.Message.(string))
		}
		return err
	}
	s.flash(c, "success", "Server "+l.Name+" removed: pgdeck no longer uses the Docker engine at "+l.DockerHost+".")
	return redirect(c, "/servers")
}

// forgetServer removes a server for the page and the API, and audits it.
// A refusal is a 409 saying why, naming the environments that hold it.
func (s *Server) forgetServer(c echo.Context, l provisioner.ServerLoad) error {
	if s.jobs == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Servers cannot be removed in this process.")
	}
	if l.Builtin {
		return builtinRefusal(l.Name)
	}
	err := s.jobs.RemoveServer(c.Request().Context(), l.Name)
	switch {
	case errors.Is(err, provisioner.ErrBuiltinServer):
		return builtinRefusal(l.Name)
	case errors.Is(err, store.ErrServerInUse):
		// Read again: an environment may have been placed on it since.
		if fresh, ferr := s.serverLoad(c); ferr == nil {
			l = fresh
		}
		return echo.NewHTTPError(http.StatusConflict, inUseMessage(l))
	case errors.Is(err, store.ErrNotFound):
		return echo.NewHTTPError(http.StatusNotFound, "There is no server named "+quoteName(l.Name)+".")
	case err != nil:
		return err
	}
	s.audit(c, "server.remove", l.Name, l.DockerHost)
	return nil
}

func builtinRefusal(name string) error {
	return echo.NewHTTPError(http.StatusConflict, "Server "+name+" is this host's own runtime (PGDECK_RUNTIME makes it): it cannot be removed.")
}

// inUseMessage says which environments keep a server from being removed.
func inUseMessage(l provisioner.ServerLoad) string {
	if len(l.Environments) == 0 {
		return "Server " + l.Name + " still holds environments: delete them first, then remove it."
	}
	if len(l.Environments) == 1 {
		return "Server " + l.Name + " still holds environment " + l.Environments[0] + ": delete it first (a server with environments cannot be removed)."
	}
	return "Server " + l.Name + " still holds environments " + strings.Join(l.Environments, ", ") + ": delete them first (a server with environments cannot be removed)."
}
