package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestLogin(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")

	t.Run("wrong password or unknown account", func(t *testing.T) {
		c := a.client()
		for _, tc := range []struct{ email, password string }{
			{"ada@example.com", "wrong password here"},
			{"nobody@example.com", testPassword},
		} {
			c.get("/login").want(t, http.StatusOK)
			p := c.post("/login", url.Values{"email": {tc.email}, "password": {tc.password}}).want(t, http.StatusUnauthorized)
			if got := p.Text("[data-testid=login-error]"); got != "Wrong email or password." {
				t.Errorf("login error for %s = %q", tc.email, got)
			}
			// Still anonymous.
			c.get("/environments").want(t, http.StatusSeeOther)
		}
	})

	t.Run("empty fields", func(t *testing.T) {
		c := a.client()
		c.get("/login")
		p := c.post("/login", url.Values{"email": {""}, "password": {""}}).want(t, http.StatusUnprocessableEntity)
		if p.Text("[data-testid=error-email]") == "" || p.Text("[data-testid=error-password]") == "" {
			t.Errorf("no messages beside the empty fields:\n%s", p.Body)
		}
	})

	t.Run("session cookie", func(t *testing.T) {
		c := a.client()
		before := c.get("/login").want(t, http.StatusOK).sessionCookie()
		if before == nil {
			t.Fatal("the login page sets no session cookie (the CSRF token lives in the session)")
		}
		p := c.login(t, "ada@example.com")
		after := p.sessionCookie()
		if after == nil {
			t.Fatal("login sets no session cookie")
		}
		if !after.HttpOnly {
			t.Error("session cookie is not HttpOnly")
		}
		if after.SameSite != http.SameSiteLaxMode {
			t.Errorf("session cookie SameSite = %v, want Lax", after.SameSite)
		}
		if after.Secure {
			t.Error("session cookie is Secure on a plain HTTP server")
		}
		if after.Value == before.Value {
			t.Error("the session token did not change at login (session fixation)")
		}
		c.get("/environments").want(t, http.StatusOK)

		// The token from before the login is worth nothing.
		old := a.client()
		old.jar.SetCookies(base, []*http.Cookie{{Name: "pgdeck_session", Value: before.Value}})
		if p := old.get("/environments").want(t, http.StatusSeeOther); p.Location() != "/login" {
			t.Errorf("the pre-login session token leads to %q, want /login", p.Location())
		}
	})

	t.Run("logout", func(t *testing.T) {
		c := a.client()
		c.login(t, "ada@example.com")
		c.get("/environments").want(t, http.StatusOK)
		if p := c.post("/logout", nil).want(t, http.StatusSeeOther); p.Location() != "/login" {
			t.Errorf("logout redirects to %q", p.Location())
		}
		c.get("/environments").want(t, http.StatusSeeOther)
	})
}

func TestLoginRateLimit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	a.user("bob@example.com", "admin")
	a.user("cy@example.com", "viewer")

	attacker := a.clientFrom("198.51.100.7")
	attacker.get("/login").want(t, http.StatusOK)
	for i := range 5 {
		p := attacker.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"guess number " + string(rune('a'+i))}})
		p.want(t, http.StatusUnauthorized)
	}

	// The sixth attempt is refused even with the right password.
	p := attacker.post("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}).want(t, http.StatusTooManyRequests)
	if got := p.Text("[data-testid=login-error]"); !strings.Contains(got, "Too many failed attempts") {
		t.Errorf("rate-limit message = %q", got)
	}
	if p.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	attacker.get("/environments").want(t, http.StatusSeeOther)

	// The address is blocked for other accounts too.
	attacker.post("/login", url.Values{"email": {"bob@example.com"}, "password": {testPassword}}).want(t, http.StatusTooManyRequests)

	// The account is blocked from other addresses too.
	other := a.clientFrom("203.0.113.9")
	other.get("/login")
	other.post("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}).want(t, http.StatusTooManyRequests)

	// A different account from another address is not blocked.
	bob := a.clientFrom("203.0.113.50")
	bob.login(t, "bob@example.com")
	bob.get("/environments").want(t, http.StatusOK)

	// The refusals are in the audit log.
	es, err := a.st.ListAudit(context.Background(), 50)
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, e := range es {
		count[e.Action]++
		if e.Action == "login.failed" && e.RemoteAddr != "198.51.100.7" {
			t.Errorf("failed login recorded from %q, want 198.51.100.7", e.RemoteAddr)
		}
	}
	if count["login.failed"] != 5 || count["login.rate_limited"] != 3 || count["login"] != 1 {
		t.Errorf("audit actions = %v, want 5 login.failed, 3 login.rate_limited, 1 login", count)
	}

	t.Run("a forged X-Forwarded-For does not escape the per-address limit", func(t *testing.T) {
		// Spray one wrong password over several accounts, each time
		// claiming another client address.
		sprayer := a.clientFrom("198.51.100.99")
		sprayer.get("/login")
		for i := range 5 {
			sprayer.header.Set("X-Forwarded-For", "10.9.8."+string(rune('1'+i)))
			email := "user" + string(rune('a'+i)) + "@example.com"
			sprayer.post("/login", url.Values{"email": {email}, "password": {"Spring2024!!"}}).want(t, http.StatusUnauthorized)
		}
		sprayer.header.Set("X-Forwarded-For", "10.9.8.200")
		sprayer.post("/login", url.Values{"email": {"cy@example.com"}, "password": {testPassword}}).want(t, http.StatusTooManyRequests)
	})

	t.Run("a proxy on this host passes the client address", func(t *testing.T) {
		proxied := a.clientFrom("127.0.0.1")
		proxied.header.Set("X-Forwarded-For", "203.0.113.77")
		proxied.login(t, "cy@example.com")
		es, err := a.st.ListAudit(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Action != "login" || es[0].RemoteAddr != "203.0.113.77" {
			t.Errorf("newest audit entry = %+v, want a login from 203.0.113.77", es)
		}
	})
}
