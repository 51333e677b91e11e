package web_test

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func TestSetup(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()

	// A fresh install sends everyone to setup.
	if p := c.get("/environments").want(t, http.StatusSeeOther); p.Location() != "/setup" {
		t.Errorf("/environments on a fresh install redirects to %q, want /setup", p.Location())
	}
	if p := c.get("/login").want(t, http.StatusSeeOther); p.Location() != "/setup" {
		t.Errorf("/login on a fresh install redirects to %q, want /setup", p.Location())
	}
	p := c.get("/setup").want(t, http.StatusOK)
	if p.Find("#setup-form").Length() != 1 {
		t.Fatal("GET /setup has no #setup-form")
	}
	if c.csrf == "" {
		t.Fatal("the setup form carries no _csrf token")
	}

	bad := []struct {
		name, email, password, confirm, field, message string
	}{
		{"empty email", "", "long enough password", "long enough password", "email", "Enter an email address."},
		{"bad email", "not-an-email", "long enough password", "long enough password", "email", "Enter an email address like name@example.com."},
		{"email with a name", "Ada <ada@example.com>", "long enough password", "long enough password", "email", "Enter an email address like name@example.com."},
		{"empty password", "ada@example.com", "", "", "password", "Enter a password."},
		{"short password", "ada@example.com", "short-pw-11", "short-pw-11", "password", "Use at least 12 characters."},
		{"passwords differ", "ada@example.com", "long enough password", "long enough passw0rd", "password_confirm", "The two passwords differ."},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			p := c.post("/setup", url.Values{"setup_code": {a.srv.SetupCode()}, "email": {tc.email}, "password": {tc.password}, "password_confirm": {tc.confirm}}).
				want(t, http.StatusUnprocessableEntity)
			if got := p.Text("[data-testid=error-" + tc.field + "]"); got != tc.message {
				t.Errorf("message beside %s = %q, want %q", tc.field, got, tc.message)
			}
			if n := p.Find(".field-error").Length(); n != 1 {
				t.Errorf("%d field messages shown, want 1", n)
			}
			// What was typed stays, except passwords.
			if v, _ := p.Find("#f-email").Attr("value"); v != strings.TrimSpace(tc.email) {
				t.Errorf("email field value = %q, want %q", v, tc.email)
			}
			if v, _ := p.Find("#f-password").Attr("value"); v != "" {
				t.Errorf("the password is sent back in the form: %q", v)
			}
			if n, err := a.st.CountUsers(context.Background()); err != nil || n != 0 {
				t.Errorf("CountUsers = %d, %v after a refused setup; want 0", n, err)
			}
		})
	}

	t.Run("missing CSRF token", func(t *testing.T) {
		c.postRaw("/setup", url.Values{"email": {"ada@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}).
			want(t, http.StatusForbidden)
		if n, _ := a.st.CountUsers(context.Background()); n != 0 {
			t.Errorf("CountUsers = %d, want 0", n)
		}
	})

	t.Run("wrong setup code", func(t *testing.T) {
		p := c.post("/setup", url.Values{"setup_code": {"AAAA-BBBB-CCCC-DDDD"}, "email": {"ada@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}).
			want(t, http.StatusUnprocessableEntity)
		if p.Text("[data-testid=error-setup_code]") == "" {
			t.Error("no message beside the setup code")
		}
		if n, _ := a.st.CountUsers(context.Background()); n != 0 {
			t.Errorf("CountUsers = %d, want 0", n)
		}
	})

	t.Run("from another site", func(t *testing.T) {
		// A page elsewhere posting through the victim's browser.
		c.header.Set("Origin", "http://evil.example")
		defer c.header.Del("Origin")
		c.post("/setup", url.Values{"setup_code": {a.srv.SetupCode()}, "email": {"eve@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}).
			want(t, http.StatusForbidden)
		c.header.Del("Origin")
		c.header.Set("Sec-Fetch-Site", "cross-site")
		defer c.header.Del("Sec-Fetch-Site")
		c.post("/setup", url.Values{"setup_code": {a.srv.SetupCode()}, "email": {"eve@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}).
			want(t, http.StatusForbidden)
		if n, _ := a.st.CountUsers(context.Background()); n != 0 {
			t.Errorf("CountUsers = %d, want 0", n)
		}
	})

	// The code is typed as a person reads it: case and dashes do not matter.
	code := strings.ToLower(strings.ReplaceAll(a.srv.SetupCode(), "-", ""))
	p = c.post("/setup", url.Values{"setup_code": {code}, "email": {"ada@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}).
		want(t, http.StatusSeeOther)
	if p.Location() != "/environments" {
		t.Errorf("setup redirects to %q, want /environments", p.Location())
	}
	u, err := a.st.UserByEmail(context.Background(), "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if u.Role != "owner" {
		t.Errorf("the setup account has role %q, want owner", u.Role)
	}

	// The owner is signed in and greeted.
	p = c.get("/environments").want(t, http.StatusOK)
	if got := p.Text("[data-testid=nav-account]"); got != "ada@example.com" {
		t.Errorf("signed-in account shown as %q", got)
	}
	if got := p.Text("[data-testid=flash]"); !strings.Contains(got, "Owner account created") {
		t.Errorf("flash = %q, want the welcome", got)
	}

	// Setup is gone for good.
	c.get("/setup").want(t, http.StatusNotFound)
	a.client().get("/setup").want(t, http.StatusNotFound)
	c.post("/setup", url.Values{"email": {"eve@example.com"}, "password": {testPassword}, "password_confirm": {testPassword}}).
		want(t, http.StatusNotFound)
	if n, _ := a.st.CountUsers(context.Background()); n != 1 {
		t.Errorf("CountUsers = %d after setup was refused, want 1", n)
	}
}
