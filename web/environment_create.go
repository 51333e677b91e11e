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

// newEnvironment shows the create form with sensible defaults.
func (s *Server) newEnvironment(c echo.Context) error {
	in := environmentInput{OdooVersion: "18.0", Stage: "development", Plan: "starter"}
	p := s.page(c, "New environment", "environments")
	return s.render(c, http.StatusOK, p, views.EnvironmentNewPage(p, in.form(nil), environmentChoices()))
}

// createEnvironment validates the form and creates the environment.
func (s *Server) createEnvironment(c echo.Context) error {
	f := views.Form{Errors: map[string]string{}}
	in := environmentInput{
		Name:        strings.TrimSpace(formText(c, &f, "name")),
		OdooVersion: formText(c, &f, "odoo_version"),
		Stage:       formText(c, &f, "stage"),
		Plan:        formText(c, &f, "plan"),
	}
	var env store.Environment
	err := error(validationError{f.Errors})
	if len(f.Errors) == 0 {
		env, err = s.insertEnvironment(c, in)
	}
	var ve validationError
	if errors.As(err, &ve) {
		p := s.page(c, "New environment", "environments")
		return s.render(c, http.StatusUnprocessableEntity, p, views.EnvironmentNewPage(p, in.form(ve.fields), environmentChoices()))
	}
	if err != nil {
		return err
	}
	s.flash(c, "success", "Environment "+env.Name+" created. Its database is being deployed.")
	return redirect(c, "/environments/"+env.Name)
}

// validationError carries the message for each field that failed.
type validationError struct{ fields map[string]string }

func (v validationError) Error() string { return "validation failed" }

// insertEnvironment is shared by the form and the API: validate, insert, audit.
func (s *Server) insertEnvironment(c echo.Context, in environmentInput) (store.Environment, error) {
	env, errs := in.validate()
	if len(errs) > 0 {
		return store.Environment{}, validationError{errs}
	}
	env, err := s.store.CreateEnvironment(c.Request().Context(), env)
	if errors.Is(err, store.ErrConflict) {
		return store.Environment{}, validationError{map[string]string{"name": "An environment with this name already exists."}}
	}
	if err != nil {
		return store.Environment{}, err
	}
	s.audit(c, "environment.create", env.Name, "odoo "+env.OdooVersion+", "+env.Stage+", "+env.Plan)
	// Creating an environment deploys it.
	if s.jobs != nil {
		if _, err := s.enqueue(c, env, provisioner.KindDeploy); err != nil {
			return env, err
		}
	}
	return env, nil
}
