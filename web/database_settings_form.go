package web

import (
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/views"
)

// settingsForm is Settings → Database's form as posted.
type settingsForm struct {
	update provisioner.SettingsUpdate
	// typed is what was typed, shown again when the save is refused.
	typed views.Form
	// unreadable are messages for fields that could not even be read (a
	// pool size that is not a number); the save is refused with them.
	unreadable map[string]string
	// reset is the parameter whose Reset was pressed ("" for Save Settings).
	reset string
}

// maxSettingsField bounds a field's bytes: no value of this form comes
// near it (overrides are refused past provisioner.MaxValueLength).
const maxSettingsField = 1024

// pgbouncerFormFields are the PgBouncer row's fields; "pgbouncer" itself is
// the marker that the row was sent (an unchecked box sends nothing).
var pgbouncerFormFields = []string{"pgbouncer", "pgbouncer.enabled", "pgbouncer.pool_size", "pgbouncer.pool_mode", "pgbouncer.max_client_conn"}

// replicaFormFields are the Read Replica card's checkbox (it belongs to the
// settings form) and its marker, sent only where the card shows the box.
var replicaFormFields = []string{"read_replica", "read_replica.enabled"}

// readSettingsForm reads the posted form (the body only, never the query
// string). A field the form does not have, or one sent twice, is a 400:
// the page never sends them. An override field sent empty resets it; one
// not sent stays as saved.
func readSettingsForm(c echo.Context) (settingsForm, error) {
	r := c.Request()
	if err := r.ParseForm(); err != nil {
		return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
	}
	f := settingsForm{
		update:     provisioner.SettingsUpdate{Parameters: map[string]*string{}},
		typed:      views.Form{Values: map[string]string{}, Errors: map[string]string{}},
		unreadable: map[string]string{},
	}
	pooler, replica := false, false
	for key, vals := range r.PostForm {
		known := key == "_csrf" || key == "reset" || strings.HasPrefix(key, "parameters.") && isTuned(strings.TrimPrefix(key, "parameters."))
		for _, k := range pgbouncerFormFields {
			if key == k {
				known, pooler = true, true
			}
		}
		for _, k := range replicaFormFields {
			if key == k {
				known, replica = true, true
			}
		}
		if !known {
			return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "The form has no field "+quoteName(key)+".")
		}
		if len(vals) != 1 {
			return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "The form sent "+quoteName(key)+" more than once.")
		}
		v := vals[0]
		if key == "_csrf" {
			continue
		}
		if len(v) > maxSettingsField {
			return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "The form's "+quoteName(key)+" is far too long.")
		}
		if msg := CheckText(v); msg != "" {
			f.unreadable[key] = msg
			v = cleanText(v)
		}
		f.typed.Values[key] = v
	}
	if f.reset = f.typed.Values["reset"]; f.reset != "" {
		if !isTuned(f.reset) {
			return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "There is no parameter "+quoteName(f.reset)+" to reset.")
		}
		// Reset saves that one reset: what else the form holds is not
		// sent (the reset buttons submit their own form).
		f.update = provisioner.SettingsUpdate{Parameters: map[string]*string{f.reset: nil}}
		f.unreadable = map[string]string{}
		return f, nil
	}
	delete(f.typed.Values, "reset")
	for key, v := range f.typed.Values {
		if name, ok := strings.CutPrefix(key, "parameters."); ok && f.unreadable[key] == "" {
			f.update.Parameters[name] = &v
		}
	}
	if pooler {
		p := &provisioner.PoolerUpdate{}
		on := f.typed.Values["pgbouncer.enabled"]
		if on != "" && on != "on" {
			return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "Enable PgBouncer is a checkbox: send on, or nothing.")
		}
		enabled := on == "on"
		p.Enabled = &enabled
		p.PoolSize = f.formInt("pgbouncer.pool_size", "20")
		p.MaxClientConn = f.formInt("pgbouncer.max_client_conn", "100")
		if mode, ok := f.typed.Values["pgbouncer.pool_mode"]; ok && f.unreadable["pgbouncer.pool_mode"] == "" {
			p.PoolMode = &mode
		}
		f.update.PgBouncer = p
	}
	if replica {
		on := f.typed.Values["read_replica.enabled"]
		if on != "" && on != "on" {
			return settingsForm{}, echo.NewHTTPError(http.StatusBadRequest, "Enable Read Replica is a checkbox: send on, or nothing.")
		}
		enabled := on == "on"
		f.update.ReadReplica = &enabled
	}
	return f, nil
}

// formInt reads a whole-number field; one not sent stays as saved, one
// that is not a whole number gets a message.
func (f *settingsForm) formInt(key, example string) *int {
	v, ok := f.typed.Values[key]
	if !ok || f.unreadable[key] != "" {
		return nil
	}
	n, err := strconv.Atoi(strings.TrimSpace(v))
	if err != nil {
		f.unreadable[key] = "Enter a whole number, such as " + example + "."
		return nil
	}
	return &n
}

// isTuned says whether name is a parameter pgdeck tunes.
func isTuned(name string) bool {
	_, ok := render.StaticSetting(name)
	return ok
}
