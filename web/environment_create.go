package web

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// newEnvironment shows the create form with sensible defaults.
func (s *Server) newEnvironment(c echo.Context) error {
	in := environmentInput{OdooVersion: "18.0", Stage: "development", Plan: "starter"}
	return s.renderEnvironmentForm(c, http.StatusOK, in.form(nil))
}

// renderEnvironmentForm writes the create form with the servers as they
// are now.
func (s *Server) renderEnvironmentForm(c echo.Context, status int, f views.Form) error {
	loads, err := s.loadServers(c.Request().Context())
	if err != nil {
		return err
	}
	p := s.page(c, "New environment", "environments")
	return s.render(c, status, p, views.EnvironmentNewPage(p, f, environmentChoices(loads)))
}

// createEnvironment validates the form and creates the environment.
func (s *Server) createEnvironment(c echo.Context) error {
	f := views.Form{Errors: map[string]string{}}
	in := environmentInput{
		Name:        strings.TrimSpace(formText(c, &f, "name")),
		OdooVersion: formText(c, &f, "odoo_version"),
		Stage:       formText(c, &f, "stage"),
		Plan:        formText(c, &f, "plan"),
		Server:      formText(c, &f, "server"),
	}
	var env store.Environment
	err := error(validationError{f.Errors})
	if len(f.Errors) == 0 {
		env, err = s.insertEnvironment(c, in)
	}
	var ve validationError
	if errors.As(err, &ve) {
		return s.renderEnvironmentForm(c, http.StatusUnprocessableEntity, in.form(ve.fields))
	}
	if err != nil {
		return err
	}
	s.flash(c, "success", "Environment "+env.Name+" created on server "+env.Server+". Its database is being deployed.")
	return redirect(c, "/environments/"+env.Name)
}

// validationError carries the message for each field that failed.
type validationError struct{ fields map[string]string }

func (v validationError) Error() string { return "validation failed" }

// insertEnvironment is shared by the form and the API: validate, place on
// a server, insert, audit.
func (s *Server) insertEnvironment(c echo.Context, in environmentInput) (store.Environment, error) {
	env, errs := in.validate()
	if len(errs) > 0 {
		return store.Environment{}, validationError{errs}
	}
	ctx := c.Request().Context()
	// The operator's choice, checked (it exists, is not offline and holds
	// the plan), or the server with the most free memory; one creation at
	// a time, so that two cannot both take a server's last room.
	place := func(ctx context.Context) (string, error) {
		if s.jobs == nil {
			return store.BuiltinServer, nil
		}
		server, err := s.jobs.PlaceEnvironment(ctx, env.Plan, in.Server)
		env.Server = server
		return server, err
	}
	created, err := s.store.CreateEnvironmentPlaced(ctx, env, place)
	var inv *provisioner.ServerInvalidError
	if errors.As(err, &inv) {
		return store.Environment{}, validationError{map[string]string{"server": cmp.Or(inv.Fields["server"], inv.Error())}}
	}
	switch {
	case errors.Is(err, store.ErrConflict):
		return store.Environment{}, validationError{map[string]string{"name": "An environment with this name already exists."}}
	case errors.Is(err, store.ErrNotFound):
		// The server was removed between the placement and the insert.
		return store.Environment{}, validationError{map[string]string{"server": noServer(env.Server)}}
	case err != nil:
		return store.Environment{}, err
	}
	env = created
	s.audit(c, "environment.create", env.Name, "odoo "+env.OdooVersion+", "+env.Stage+", "+env.Plan+", on server "+env.Server)
	// Creating an environment deploys it.
	if s.jobs != nil {
		if _, err := s.enqueue(c, env, provisioner.KindDeploy); err != nil {
			return env, err
		}
	}
	return env, nil
}
