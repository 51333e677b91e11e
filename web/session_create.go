package web

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// Login throttling: attempts per window for an account from one address
// (or one known browser), for one address over all accounts, and for an
// account from browsers and addresses that never signed in to it.
const (
	loginWindow         = 15 * time.Minute
	loginPerPair        = 5
	loginPerAddress     = 30
	loginPerAccount     = 100
	loginLimiterKeys    = 20000
	hashWait            = 5 * time.Second
	rateLimitedCoalesce = 15 * time.Minute
)

// acquireHash waits a little for one of the password-hash slots (argon2id
// takes 64 MiB each; running about one per CPU bounds memory and CPU).
func (s *Server) acquireHash(ctx context.Context) (release func(), ok bool) {
	t := time.NewTimer(hashWait)
	defer t.Stop()
	select {
	case s.hashSlots <- struct{}{}:
		return func() { <-s.hashSlots }, true
	case <-t.C:
	case <-ctx.Done():
	}
	return nil, false
}

// busy answers 503 when no hash slot freed up in time.
func (s *Server) busy(c echo.Context) error {
	c.Response().Header().Set("Retry-After", "2")
	return echo.NewHTTPError(http.StatusServiceUnavailable, "pgdeck is busy checking other sign-ins. Try again in a few seconds.")
}

// createSession signs a user in. Each attempt is reserved against the
// limits before its password is hashed (see loginWindow).
func (s *Server) createSession(c echo.Context) error {
	ctx := c.Request().Context()
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	email := strings.TrimSpace(formText(c, &f, "email"))
	pw := formText(c, &f, "password")
	if len(email) > maxEmailBytes {
		f.Errors["email"] = "Use at most 254 characters."
		email = ""
	}
	f.Values["email"] = email
	p := s.page(c, "Log in", "")
	if email == "" && f.Errors["email"] == "" {
		f.Errors["email"] = "Enter your email address."
	}
	if pw == "" && f.Errors["password"] == "" {
		f.Errors["password"] = "Enter your password."
	}
	if len(f.Errors) > 0 {
		return s.render(c, http.StatusUnprocessableEntity, p, views.LoginPage(p, f))
	}

	account := strings.ToLower(email)
	addr := addressKey(c.RealIP())
	pairKey := "pair:" + account + "|" + addr
	limits := []limit{{pairKey, loginPerPair}, {"addr:" + addr, loginPerAddress}}
	device := s.deviceFor(c, account)
	if device != "" {
		pairKey = "device:" + account + "|" + device
		limits = []limit{{pairKey, loginPerPair}}
	} else if !s.limiter.isKnown(account + "|" + addr) {
		limits = append(limits, limit{"account:" + account, s.ceiling})
	}
	res, wait := s.limiter.reserve(limits...)
	if res == nil {
		minutes := int(math.Ceil(wait.Minutes()))
		f.Errors["_form"] = fmt.Sprintf("Too many failed attempts. Try again in %d min.", minutes)
		c.Response().Header().Set("Retry-After", fmt.Sprint(int(wait.Seconds())+1))
		s.auditCoalesced(c, "login.rate_limited", email)
		return s.render(c, http.StatusTooManyRequests, p, views.LoginPage(p, f))
	}
	release, ok := s.acquireHash(ctx)
	if !ok {
		res.forget()
		return s.busy(c)
	}
	u, err := s.store.UserByEmail(ctx, email)
	good := false
	switch {
	case err == nil:
		good, err = CheckPassword(u.PasswordHash, pw)
	case errors.Is(err, store.ErrNotFound):
		// Hash anyway so that unknown accounts take as long as known ones.
		_, err = HashPassword(pw)
	}
	release()
	if err != nil {
		return err
	}
	if !good {
		s.audit(c, "login.failed", email, "")
		f.Errors["_form"] = "Wrong email or password."
		return s.render(c, http.StatusUnauthorized, p, views.LoginPage(p, f))
	}
	if u.Disabled() {
		s.audit(c, "login.disabled", u.Email, "")
		f.Errors["_form"] = "This account is disabled. Ask the owner of this pgdeck."
		return s.render(c, http.StatusForbidden, p, views.LoginPage(p, f))
	}
	res.forget(pairKey)
	s.limiter.remember(account + "|" + addr)
	s.setDevice(c, account)
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
	s.sessions.Put(ctx, sessionSignedIn, time.Now().UnixNano())
	s.sessions.Put(ctx, sessionCSRF, randomToken(32))
	c.Set(userKey, u)
	return nil
}
