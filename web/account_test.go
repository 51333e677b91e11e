package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestAccountTokens(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "admin")
	c := a.client()
	c.login(t, "ada@example.com")

	p := c.get("/account").want(t, http.StatusOK)
	if p.Find("#token-form").Length() != 1 {
		t.Fatal("no #token-form on /account")
	}
	if p.Find("[data-testid=token-row]").Length() != 0 {
		t.Error("a new account lists tokens")
	}

	t.Run("a token needs a name", func(t *testing.T) {
		for _, tc := range []struct{ name, message string }{
			{"", "Enter a name for the token."},
			{strings.Repeat("n", 61), "Use at most 60 characters."},
		} {
			p := c.post("/account/tokens", url.Values{"name": {tc.name}}).want(t, http.StatusUnprocessableEntity)
			if got := p.Text("[data-testid=error-name]"); got != tc.message {
				t.Errorf("message = %q, want %q", got, tc.message)
			}
			if p.Find("#new-token").Length() != 0 {
				t.Error("a token was shown for a refused form")
			}
		}
	})

	t.Run("missing CSRF token", func(t *testing.T) {
		c.postRaw("/account/tokens", url.Values{"name": {"sneaky"}}).want(t, http.StatusForbidden)
	})

	p = c.post("/account/tokens", url.Values{"name": {"deploy script"}}).want(t, http.StatusCreated)
	tok := p.Text("#new-token")
	if !strings.HasPrefix(tok, "pgd_") {
		t.Fatalf("#new-token = %q, want a pgd_ token", tok)
	}
	rows := p.Find("[data-testid=token-row]")
	if rows.Length() != 1 || !strings.Contains(rows.Text(), "deploy script") {
		t.Fatalf("token rows = %q, want one for deploy script", rows.Text())
	}
	if strings.Contains(rows.Text(), tok) {
		t.Error("the token list shows the whole secret")
	}

	// The token works against the API, as this account.
	a.api(http.MethodGet, "/api/v1/environments", tok, "").want(t, http.StatusOK)
	a.api(http.MethodPost, "/api/v1/environments", tok, envJSON("from-token", "18.0", "staging", "pro")).want(t, http.StatusCreated)

	// Shown once only.
	p = c.get("/account").want(t, http.StatusOK)
	if p.Find("#new-token").Length() != 0 || strings.Contains(p.Body, tok) {
		t.Error("the token's secret is shown again")
	}
	if strings.Contains(p.Text("[data-testid=token-last-used]"), "never") {
		t.Error("the used token says it was never used")
	}

	// Revoke it from its row.
	action, ok := p.Find("[data-testid=token-row] form").Attr("action")
	if !ok || !strings.HasPrefix(action, "/account/tokens/") {
		t.Fatalf("revoke form action = %q", action)
	}
	if p := c.post(action, nil).want(t, http.StatusSeeOther); p.Location() != "/account" {
		t.Errorf("revoke redirects to %q, want /account", p.Location())
	}
	p = c.get("/account").want(t, http.StatusOK)
	if p.Find("[data-testid=token-row]").Length() != 0 {
		t.Error("the revoked token is still listed")
	}
	if got := p.Text("[data-testid=flash]"); !strings.Contains(got, "revoked") {
		t.Errorf("flash = %q, want the revoke confirmed", got)
	}
	a.api(http.MethodGet, "/api/v1/environments", tok, "").want(t, http.StatusUnauthorized)

	// Revoking again, or someone else's token, is not found.
	c.post(action, nil).want(t, http.StatusNotFound)
	c.post("/account/tokens/not-a-number/revoke", nil).want(t, http.StatusNotFound)
}
