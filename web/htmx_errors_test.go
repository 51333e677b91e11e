package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"pgdeck/store"
)

// TestHTMXErrorsAreShown: htmx 2 swaps no 4xx/5xx answer unless told to, so
// the layout configures it (a 422 swaps into its own target, every other
// error into #htmx-errors) and the server answers an htmx request with a
// fragment that says what happened, never a whole page or a redirect.
func TestHTMXErrorsAreShown(t *testing.T) {
	a := newJobsApp(t)
	owner := a.user("owner@example.com", store.RoleOwner)
	a.user("viewer@example.com", store.RoleViewer)
	a.api(http.MethodPost, "/api/v1/environments", a.token(owner),
		`{"name":"erp","odoo_version":"18.0","stage":"production","plan":"pro"}`).want(t, http.StatusCreated)

	wantFragment := func(t *testing.T, p *page, code int, msg string) {
		t.Helper()
		p.want(t, code)
		if strings.Contains(p.Body, "<html") {
			t.Errorf("an htmx error answered a whole page:\n%s", p.Body)
		}
		if got := p.Text("[data-testid=htmx-error]"); !strings.Contains(got, msg) {
			t.Errorf("error fragment says %q, want %q; body:\n%s", got, msg, p.Body)
		}
	}

	c := a.client()
	c.login(t, "owner@example.com")
	c.get("/environments/erp").want(t, http.StatusOK)
	page := c.get("/environments/erp")
	if cfg, _ := page.Find(`meta[name="htmx-config"]`).Attr("content"); !strings.Contains(cfg, `"code":"[45]..","swap":true,"error":true,"target":"#htmx-errors"`) ||
		!strings.Contains(cfg, `"code":"422","swap":true`) {
		t.Errorf("htmx-config does not swap errors: %s", cfg)
	}
	if page.Find("#htmx-errors").Length() != 1 {
		t.Error("the page has no #htmx-errors region")
	}
	c.header.Set("HX-Request", "true")

	t.Run("409 on an action button while a job runs", func(t *testing.T) {
		p := c.post("/environments/erp/actions/restart", nil)
		wantFragment(t, p, http.StatusConflict, "Another job is already queued or running for erp")
	})

	t.Run("422 on a form swaps the form with its messages", func(t *testing.T) {
		p := c.post("/environments", url.Values{"name": {"Bad Name!"}, "odoo_version": {"18.0"}, "stage": {"staging"}, "plan": {"pro"}})
		p.want(t, http.StatusUnprocessableEntity)
		if p.Find("#environment-form").Length() != 1 || !strings.Contains(p.Text("#environment-form"), "lower-case") {
			t.Errorf("the 422 answer is not the form with its message:\n%s", p.Body)
		}
		if strings.Contains(p.Body, "<html") {
			t.Error("the 422 answer to htmx is a whole page")
		}
		if p.Find(`#environment-form input[name="name"]`).AttrOr("value", "") != "Bad Name!" {
			t.Error("the form does not keep what was typed")
		}
	})

	t.Run("403 on Reveal for a viewer", func(t *testing.T) {
		v := a.client()
		v.login(t, "viewer@example.com")
		v.get("/environments/erp").want(t, http.StatusOK)
		v.header.Set("HX-Request", "true")
		p := v.post("/environments/erp/reveal", nil)
		wantFragment(t, p, http.StatusForbidden, "")
		if p.Text("[data-testid=htmx-error]") == "" {
			t.Error("the 403 fragment says nothing")
		}
	})

	t.Run("a session that ended", func(t *testing.T) {
		anon := a.client()
		anon.header.Set("HX-Request", "true")
		p := anon.get("/environments/erp/health")
		wantFragment(t, p, http.StatusUnauthorized, "Your session has ended")
	})
}
