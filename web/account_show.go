package web

import (
	"net/http"

	"github.com/labstack/echo/v4"

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

// tokenExpiries are the lifetimes a new token may get (days; 0 is never).
var tokenExpiries = []views.Choice{
	{Value: "7", Label: "In 7 days"}, {Value: "30", Label: "In 30 days"}, {Value: "90", Label: "In 90 days"},
	{Value: "365", Label: "In a year"}, {Value: "0", Label: "Never"},
}
