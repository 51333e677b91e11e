package web

import (
	"slices"
	"strings"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// The values an environment may take.
var (
	odooVersions = []string{"16.0", "17.0", "18.0", "19.0"}
	stages       = []string{"production", "staging", "development"}
	plans        = []string{"starter", "pro", "enterprise"}
	// reservedNames would collide with pages under /environments/ ("new")
	// or with the databases every PostgreSQL cluster has (an environment's
	// database is named after it).
	reservedNames = []string{"new", "postgres", "template0", "template1"}
)

// environmentInput is what the form and the API send to create an environment.
type environmentInput struct {
	Name        string `json:"name"`
	OdooVersion string `json:"odoo_version"`
	Stage       string `json:"stage"`
	Plan        string `json:"plan"`
	// Server is the server chosen for it; "" places it automatically.
	Server string `json:"server"`
}

// validateName returns a message when name is not a DNS-safe slug of 3–40
// characters, or is reserved.
func validateName(name string) string {
	if msg := provisioner.CheckSlug(name); msg != "" {
		return msg
	}
	if slices.Contains(reservedNames, name) {
		return "This name is reserved. Choose another."
	}
	return ""
}

// validate checks every field and returns the environment or the messages.
func (in environmentInput) validate() (store.Environment, map[string]string) {
	errs := map[string]string{}
	if msg := validateName(in.Name); msg != "" {
		errs["name"] = msg
	}
	if !slices.Contains(odooVersions, in.OdooVersion) {
		errs["odoo_version"] = "Choose one of " + strings.Join(odooVersions, ", ") + "."
	}
	if !slices.Contains(stages, in.Stage) {
		errs["stage"] = "Choose one of " + strings.Join(stages, ", ") + "."
	}
	if !slices.Contains(plans, in.Plan) {
		errs["plan"] = "Choose one of " + strings.Join(plans, ", ") + "."
	}
	if in.Server != "" && !validServerName(in.Server) {
		errs["server"] = noServer(in.Server)
	}
	return store.Environment{Name: in.Name, OdooVersion: in.OdooVersion, Stage: in.Stage, Plan: in.Plan, Server: in.Server}, errs
}

func (in environmentInput) form(errs map[string]string) views.Form {
	return views.Form{
		Values: map[string]string{"name": in.Name, "odoo_version": in.OdooVersion, "stage": in.Stage, "plan": in.Plan, "server": in.Server},
		Errors: errs,
	}
}

// environmentChoices are the create form's options; the servers come from
// loads (see serverChoices).
func environmentChoices(loads []provisioner.ServerLoad) views.EnvironmentChoices {
	choices := func(vs []string, label func(string) string) []views.Choice {
		out := make([]views.Choice, len(vs))
		for i, v := range vs {
			out[i] = views.Choice{Value: v, Label: label(v)}
		}
		return out
	}
	title := func(s string) string { return strings.ToUpper(s[:1]) + s[1:] }
	return views.EnvironmentChoices{
		Versions: choices(odooVersions, func(v string) string { return "Odoo " + v }),
		Stages:   choices(stages, title),
		Plans:    choices(plans, title),
		Servers:  serverChoices(loads),
	}
}
