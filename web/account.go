package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

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
	a := views.Account{Email: u.Email, Role: u.Role, NewToken: newToken, Form: f}
	for _, t := range ts {
		a.Tokens = append(a.Tokens, views.APIToken{ID: t.ID, Name: t.Name, Prefix: t.Prefix, CreatedAt: t.CreatedAt, LastUsedAt: t.LastUsedAt})
	}
	p := s.page(c, "Account", "account")
	return s.render(c, status, p, views.AccountPage(p, a))
}

// createToken makes an API token and shows its secret once.
func (s *Server) createToken(c echo.Context) error {
	u, _ := currentUser(c)
	name := strings.TrimSpace(c.FormValue("name"))
	f := views.Form{Values: map[string]string{"name": name}, Errors: map[string]string{}}
	switch {
	case name == "":
		f.Errors["name"] = "Enter a name for the token."
	case len([]rune(name)) > 60:
		f.Errors["name"] = "Use at most 60 characters."
	}
	if len(f.Errors) > 0 {
		return s.renderAccount(c, http.StatusUnprocessableEntity, "", f)
	}
	tok, prefix := NewAPIToken()
	if _, err := s.store.CreateAPIToken(c.Request().Context(), u.ID, name, prefix, HashAPIToken(tok), nil); err != nil {
		return err
	}
	s.audit(c, "token.create", name, prefix)
	return s.renderAccount(c, http.StatusCreated, tok, views.Form{})
}

// revokeToken revokes one of the user's tokens.
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
