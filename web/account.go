package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// showAccount shows the signed-in account and its API tokens.
func (s *Server) showAccount(c echo.Context) error {
	return s.renderAccount(c, http.StatusOK, "", views.Form{})
}

func (s *Server) renderAccount(c echo.Context, status int, newToken string, f views.Form) error {
	u, _ := currentUser(c)
	ts, err := s.store.ListAPITokens(c.Request().Context(), u.ID)
	if err != nil {
		return err
	}
	if f.Values == nil {
		f.Values = map[string]string{"expires_in": "90"}
	}
	a := views.Account{Email: u.Email, Role: u.Role, NewToken: newToken, Form: f, Expiries: tokenExpiries}
	for _, t := range ts {
		a.Tokens = append(a.Tokens, views.APIToken{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt, ExpiresAt: t.ExpiresAt})
	}
	p := s.page(c, "Account", "account")
	return s.render(c, status, p, views.AccountPage(p, a))
}

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

// tokenExpiries are the lifetimes a new token may get (days; 0 is never).
var tokenExpiries = []views.Choice{
	{Value: "7", Label: "In 7 days"}, {Value: "30", Label: "In 30 days"}, {Value: "90", Label: "In 90 days"},
	{Value: "365", Label: "In a year"}, {Value: "0", Label: "Never"},
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

// revokeToken revokes one of the user's tokens; any role may revoke its own.
func (s *Server) revokeToken(c echo.Context) error {
	u, _ := currentUser(c)
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such token.")
	}
	t, err := s.store.RevokeAPIToken(c.Request().Context(), u.ID, id)
	if errors.Is(err, store.ErrNotFound) {
		return echo.NewHTTPError(http.StatusNotFound, "There is no such token.")
	}
	if err != nil {
		return err
	}
	s.audit(c, "token.revoke", t.Name, t.Prefix)
	s.flash(c, "success", "Token "+t.Name+" revoked.")
	return redirect(c, "/account")
}
