package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

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
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	code := formText(c, &f, "setup_code")
	email := strings.TrimSpace(formText(c, &f, "email"))
	pw := formText(c, &f, "password")
	confirm := formText(c, &f, "password_confirm")
	f.Values["email"] = email
	p := s.page(c, "Set up pgdeck", "")

	// The code proves the visitor can read pgdeck's log: a page on another
	// site cannot claim a fresh install. Wrong codes are limited per address.
	res, wait := s.limiter.reserve(limit{"setup:" + addressKey(c.RealIP()), loginPerPair * 2})
	if res == nil {
		c.Response().Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		f.Errors["setup_code"] = "Too many wrong codes. Try again later."
		return s.render(c, http.StatusTooManyRequests, p, views.SetupPage(p, f))
	}
	if f.Errors["setup_code"] == "" {
		if strings.TrimSpace(code) == "" {
			f.Errors["setup_code"] = "Enter the setup code from pgdeck's log."
		} else if !s.setupCodeMatches(code) {
			f.Errors["setup_code"] = "This is not the setup code. pgdeck prints it in its log when it starts."
		} else {
			res.forget()
		}
	} else {
		res.forget()
	}
	if msg := ValidateEmail(email); msg != "" && f.Errors["email"] == "" {
		f.Errors["email"] = msg
	}
	if msg := ValidatePassword(pw); msg != "" {
		f.Errors["password"] = msg
	} else if pw != confirm {
		f.Errors["password_confirm"] = "The two passwords differ."
	}
	if len(f.Errors) > 0 {
		return s.render(c, http.StatusUnprocessableEntity, p, views.SetupPage(p, f))
	}
	release, ok := s.acquireHash(ctx)
	if !ok {
		return s.busy(c)
	}
	hash, err := HashPassword(pw)
	release()
	if err != nil {
		return err
	}
	u, err := s.store.CreateFirstOwner(ctx, email, hash)
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
