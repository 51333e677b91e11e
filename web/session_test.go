package web_test

import (
	"context"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"testing"

	"pgdeck/web"
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
		if c.get("/login").want(t, http.StatusOK).sessionCookie() != nil {
			t.Fatal("the login page sets a session cookie: anonymous views keep no session (the CSRF token is in a signed cookie)")
		}
		// A session token planted before the login (fixation) is not kept.
		before := &http.Cookie{Name: "pgdeck_session", Value: "planted-by-someone-else"}
		c.jar.SetCookies(base, []*http.Cookie{before})
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

	// The sixth attempt from that address is refused even with the right password.
	p := attacker.post("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}).want(t, http.StatusTooManyRequests)
	if got := p.Text("[data-testid=login-error]"); !strings.Contains(got, "Too many failed attempts") {
		t.Errorf("rate-limit message = %q", got)
	}
	if p.Header.Get("Retry-After") == "" {
		t.Error("429 without Retry-After")
	}
	attacker.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"again"}}).want(t, http.StatusTooManyRequests)
	attacker.get("/environments").want(t, http.StatusSeeOther)

	// The account is throttled, not locked: its owner signs in from elsewhere.
	owner := a.clientFrom("203.0.113.9")
	owner.login(t, "ada@example.com")

	// The refusals are in the audit log, the repeated ones as one entry.
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
		if e.Action == "login.rate_limited" && e.Repeats != 2 {
			t.Errorf("rate-limited entry counts %d repeats, want 2", e.Repeats)
		}
	}
	if count["login.failed"] != 5 || count["login.rate_limited"] != 1 || count["login"] != 1 {
		t.Errorf("audit actions = %v, want 5 login.failed, 1 login.rate_limited (coalesced), 1 login", count)
	}

	t.Run("a forged X-Forwarded-For is not believed", func(t *testing.T) {
		for _, from := range []string{"198.51.100.99", "127.0.0.1"} {
			c := a.clientFrom(from)
			c.get("/login")
			c.header.Set("X-Forwarded-For", "10.9.8.7")
			c.post("/login", url.Values{"email": {"nobody@example.com"}, "password": {"Spring2024!!"}}).want(t, http.StatusUnauthorized)
			es, err := a.st.ListAudit(context.Background(), 1)
			if err != nil {
				t.Fatal(err)
			}
			if len(es) != 1 || es[0].RemoteAddr != from || es[0].PeerAddr != from {
				t.Errorf("from %s with a forged header the audit says %+v", from, es)
			}
		}
	})

	t.Run("a configured proxy passes the client address", func(t *testing.T) {
		pa := newAppWith(t, a.st, func(d *web.Deps) { d.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")} })
		proxied := pa.clientFrom("10.1.1.1")
		proxied.header.Set("X-Forwarded-For", "203.0.113.77")
		proxied.login(t, "cy@example.com")
		es, err := a.st.ListAudit(context.Background(), 1)
		if err != nil {
			t.Fatal(err)
		}
		if len(es) != 1 || es[0].Action != "login" || es[0].RemoteAddr != "203.0.113.77" || es[0].PeerAddr != "10.1.1.1" {
			t.Errorf("newest audit entry = %+v, want a login from 203.0.113.77 via 10.1.1.1", es)
		}
	})
}
