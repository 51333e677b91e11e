package web

import (
	"context"
	"errors"
	"math"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/store"
	"pgdeck/views"
)

// validServerName reports whether name can name a server: a registered
// one's name or the built-in server's.
func validServerName(name string) bool {
	return name == store.BuiltinServer || provisioner.CheckServerName(name) == ""
}

// noServer is the message for a server that does not exist.
func noServer(name string) string {
	if name == "" {
		return "The server chosen for it is gone. Choose one of the list."
	}
	return "There is no server named " + quoteName(name) + ". Choose one of the list."
}

// loadServers returns every server with its environments and what they
// use: the provisioner's figures, or in a process without one (tests) the
// store's servers with nothing counted.
func (s *Server) loadServers(ctx context.Context) ([]provisioner.ServerLoad, error) {
	if s.jobs != nil {
		return s.jobs.ServerLoads(ctx)
	}
	svs, err := s.store.ListServers(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]provisioner.ServerLoad, len(svs))
	for i, sv := range svs {
		out[i] = provisioner.ServerLoad{Server: sv, Free: render.Resources{Memory: math.MaxInt64, CPUs: math.MaxInt, Storage: math.MaxInt64}}
	}
	return out, nil
}

// serverLoad returns the server named in the URL with its load, or
// answers 404.
func (s *Server) serverLoad(c echo.Context) (provisioner.ServerLoad, error) {
	name := c.Param("name")
	missing := echo.NewHTTPError(http.StatusNotFound, "There is no server named "+quoteName(name)+".")
	if !validServerName(name) {
		return provisioner.ServerLoad{}, missing
	}
	loads, err := s.loadServers(c.Request().Context())
	if err != nil {
		return provisioner.ServerLoad{}, err
	}
	for _, l := range loads {
		if l.Name == name {
			return l, nil
		}
	}
	return provisioner.ServerLoad{}, missing
}

// serverRow builds a server's row on the Servers page.
func serverRow(l provisioner.ServerLoad) views.ServerRow {
	c := l.Capacity()
	return views.ServerRow{
		Name: l.Name, Runtime: l.Runtime, DockerHost: l.DockerHost, Builtin: l.Builtin,
		Status: serverStatus(l.Status), Reason: serverReason(l.Reason), CheckedAt: l.CheckedAt,
		Capacity:     views.Resources{MemoryBytes: c.Memory, CPUs: c.CPUs, StorageBytes: c.Storage},
		Used:         views.Resources{MemoryBytes: l.Used.Memory, CPUs: l.Used.CPUs, StorageBytes: l.Used.Storage},
		Environments: l.Environments,
	}
}

// serverReason is the monitor's reason for a server as the page shows it:
// the engine's words, without the runtime's prefixes (the API keeps them).
func serverReason(reason string) string {
	for _, p := range []string{"docker runtime: engine: ", "docker runtime: "} {
		reason = strings.TrimPrefix(reason, p)
	}
	return reason
}

// serverStatus is a stored status as pages and the API say it: online,
// offline or unknown.
func serverStatus(st string) string {
	switch st {
	case store.ServerOnline, store.ServerOffline:
		return st
	}
	return store.ServerUnknown
}

// serversView builds the Servers page from loads; form is the register
// form as it was typed (empty on a fresh page).
func (s *Server) serversView(c echo.Context, loads []provisioner.ServerLoad, form views.Form, removeErr string) views.Servers {
	u, _ := currentUser(c)
	v := views.Servers{CanChange: u.CanChange(), CSRF: s.csrfToken(c), Register: form, RemoveError: removeErr}
	for _, l := range loads {
		v.Rows = append(v.Rows, serverRow(l))
	}
	v.Dialogs = views.DialogsSignature(v.Rows)
	return v
}

// serverChoices are the New environment form's servers: Automatic first,
// then each server with its status and what it has free.
func serverChoices(loads []provisioner.ServerLoad) []views.Choice {
	out := []views.Choice{{Value: "", Label: "Automatic (most free capacity)"}}
	for _, l := range loads {
		label := l.Name + " — " + views.ServerStatusLabel(serverStatus(l.Status))
		if l.Status != store.ServerOffline {
			label += ", " + freeText(l.Free) + " free"
		}
		out = append(out, views.Choice{Value: l.Name, Label: label})
	}
	return out
}

// freeText says what a server has free: memory and CPUs, or that they
// are not counted.
func freeText(free render.Resources) string {
	var parts []string
	if free.Memory == math.MaxInt64 {
		parts = append(parts, "memory not counted")
	} else {
		parts = append(parts, views.Size(max(free.Memory, 0)))
	}
	if free.CPUs == math.MaxInt {
		parts = append(parts, "CPUs not counted")
	} else {
		parts = append(parts, views.CPUs(max(free.CPUs, 0)))
	}
	return strings.Join(parts, ", ")
}

// serverInvalid turns a provisioner's refusal into messages per field,
// named as fieldName says; any other error is returned as it is.
func serverInvalid(err error, fieldName func(string) string) (map[string]string, error) {
	var inv *provisioner.ServerInvalidError
	if !errors.As(err, &inv) {
		return nil, err
	}
	out := make(map[string]string, len(inv.Fields))
	for k, msg := range inv.Fields {
		out[fieldName(k)] = msg
	}
	return out, nil
}
