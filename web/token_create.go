package web

import (
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// createToken makes an API token and shows its secret once.
func (s *Server) createToken(c echo.Context) error {
	u, _ := currentUser(c)
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	name := strings.TrimSpace(formText(c, &f, "name"))
	expiresIn := formText(c, &f, "expires_in")
	f.Values["name"], f.Values["expires_in"] = name, expiresIn
	switch {
	case f.Errors["name"] != "":
	case name == "":
		f.Errors["name"] = "Enter a name for the token."
	case len([]rune(name)) > 60:
		f.Errors["name"] = "Use at most 60 characters."
	}
	var expires *time.Time
	if days, ok := tokenExpiryDays(expiresIn); !ok {
		f.Errors["expires_in"] = "Choose one of the lifetimes offered."
	} else if days > 0 {
		t := time.Now().Add(time.Duration(days) * 24 * time.Hour)
		expires = &t
	}
	if len(f.Errors) > 0 {
		return s.renderAccount(c, http.StatusUnprocessableEntity, "", f)
	}
	tok, prefix := NewAPIToken()
	if _, err := s.store.CreateAPIToken(c.Request().Context(), u.ID, name, prefix, HashAPIToken(tok), expires); err != nil {
		return err
	}
	detail := prefix
	if expires != nil {
		detail += ", expires " + expires.Format(time.DateOnly)
	}
	s.audit(c, "token.create", name, detail)
	return s.renderAccount(c, http.StatusCreated, tok, views.Form{})
}

// tokenExpiryDays reads a lifetime choice; an empty one (an older form, a
// script) is never.
func tokenExpiryDays(v string) (int, bool) {
	if v == "" {
		return 0, true
	}
	for _, ch := range tokenExpiries {
		if ch.Value == v {
			d, err := strconv.Atoi(v)
			return d, err == nil
		}
	}
	return 0, false
}
