package web

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// showLogin shows the sign-in form, or sends a fresh install to setup.
func (s *Server) showLogin(c echo.Context) error {
	n, err := s.store.CountUsers(c.Request().Context())
	if err != nil {
		return err
	}
	if n == 0 {
		return redirect(c, "/setup")
	}
	if _, ok := currentUser(c); ok {
		return redirect(c, "/environments")
	}
	p := s.page(c, "Log in", "")
	return s.render(c, http.StatusOK, p, views.LoginPage(p, views.Form{}))
}

// createSession signs a user in. Failed attempts are limited per address and
// per account.
func (s *Server) createSession(c echo.Context) error {
	ctx := c.Request().Context()
	email := strings.TrimSpace(c.FormValue("email"))
	f := views.Form{Values: map[string]string{"email": email}, Errors: map[string]string{}}
	p := s.page(c, "Log in", "")
	ipKey, acctKey := "ip:"+c.RealIP(), "account:"+strings.ToLower(email)

	if blocked, wait := s.limiter.blocked(ipKey, acctKey); blocked {
		minutes := int(math.Ceil(wait.Minutes()))
		f.Errors["_form"] = fmt.Sprintf("Too many failed attempts. Try again in %d min.", minutes)
		c.Response().Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		s.audit(c, "login.rate_limited", email, "")
		return s.render(c, http.StatusTooManyRequests, p, views.LoginPage(p, f))
	}
	if email == "" {
		f.Errors["email"] = "Enter your email address."
	}
	pw := c.FormValue("password")
	if pw == "" {
		f.Errors["password"] = "Enter your password."
	}
	if len(f.Errors) > 0 {
		return s.render(c, http.StatusUnprocessableEntity, p, views.LoginPage(p, f))
	}

	u, err := s.store.UserByEmail(ctx, email)
	ok := false
	switch {
	case err == nil:
		ok, err = CheckPassword(u.PasswordHash, pw)
		if err != nil {
			return err
		}
	case errors.Is(err, store.ErrNotFound):
		// Hash anyway so that unknown accounts take as long as known ones.
		_, _ = HashPassword(pw)
	default:
		return err
	}
	if !ok {
		s.limiter.fail(ipKey, acctKey)
		s.audit(c, "login.failed", email, "")
		f.Errors["_form"] = "Wrong email or password."
		return s.render(c, http.StatusUnauthorized, p, views.LoginPage(p, f))
	}
	s.limiter.reset(acctKey)
	if err := s.signIn(c, u); err != nil {
		return err
	}
	s.audit(c, "login", u.Email, "")
	return redirect(c, "/environments")
}

// signIn renews the session token (against fixation) and stores the user.
func (s *Server) signIn(c echo.Context, u store.User) error {
	ctx := c.Request().Context()
	if err := s.sessions.RenewToken(ctx); err != nil {
		return err
	}
	s.sessions.Put(ctx, sessionUserID, u.ID)
	s.sessions.Put(ctx, sessionCSRF, randomToken(32))
	c.Set(userKey, u)
	return nil
}

// deleteSession signs out.
func (s *Server) deleteSession(c echo.Context) error {
	s.audit(c, "logout", "", "")
	if err := s.sessions.Destroy(c.Request().Context()); err != nil {
		return err
	}
	return redirect(c, "/login")
}
