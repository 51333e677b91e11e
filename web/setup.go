package web

import (
	"errors"
	"net/http"
	"net/mail"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// showSetup shows the owner form while no account exists, 404 after.
func (s *Server) showSetup(c echo.Context) error {
	n, err := s.store.CountUsers(c.Request().Context())
	if err != nil {
		return err
	}
	if n > 0 {
		return echo.NewHTTPError(http.StatusNotFound, "pgdeck is already set up.")
	}
	return s.render(c, http.StatusOK, s.page(c, "Set up pgdeck", ""), views.SetupPage(s.page(c, "", ""), views.Form{}))
}

// createOwner creates the first account, the owner, and signs it in.
func (s *Server) createOwner(c echo.Context) error {
	ctx := c.Request().Context()
	n, err := s.store.CountUsers(ctx)
	if err != nil {
		return err
	}
	if n > 0 {
		return echo.NewHTTPError(http.StatusNotFound, "pgdeck is already set up.")
	}
	f := views.Form{
		Values: map[string]string{"email": strings.TrimSpace(c.FormValue("email"))},
		Errors: map[string]string{},
	}
	if msg := validateEmail(f.Values["email"]); msg != "" {
		f.Errors["email"] = msg
	}
	pw := c.FormValue("password")
	if msg := ValidatePassword(pw); msg != "" {
		f.Errors["password"] = msg
	} else if pw != c.FormValue("password_confirm") {
		f.Errors["password_confirm"] = "The two passwords differ."
	}
	if len(f.Errors) > 0 {
		p := s.page(c, "Set up pgdeck", "")
		return s.render(c, http.StatusUnprocessableEntity, p, views.SetupPage(p, f))
	}
	hash, err := HashPassword(pw)
	if err != nil {
		return err
	}
	u, err := s.store.CreateFirstOwner(ctx, f.Values["email"], hash)
	if errors.Is(err, store.ErrConflict) {
		return echo.NewHTTPError(http.StatusNotFound, "pgdeck is already set up.")
	}
	if err != nil {
		return err
	}
	if err := s.signIn(c, u); err != nil {
		return err
	}
	s.audit(c, "setup.owner_created", u.Email, "")
	s.flash(c, "success", "Owner account created. Welcome to pgdeck.")
	return redirect(c, "/environments")
}

// validateEmail returns a message when s is not a plain email address.
func validateEmail(s string) string {
	if s == "" {
		return "Enter an email address."
	}
	if len(s) > 254 {
		return "Use at most 254 characters."
	}
	a, err := mail.ParseAddress(s)
	if err != nil || a.Address != s || a.Name != "" {
		return "Enter an email address like name@example.com."
	}
	return ""
}
