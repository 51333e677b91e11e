package web_test

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"pgdeck/store"
)

// TestHealthReasonInWords: a database that died reads as a person would say
// it on the Overview and in the API; the technical detail is folded under it
// on the page and in its own field in the API.
func TestHealthReasonInWords(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.user("ada@example.com", "owner")
	tok := a.token(u)
	e := a.environment("shop")
	ctx := context.Background()
	if err := a.st.MarkDeployed(ctx, e.ID); err != nil {
		t.Fatal(err)
	}
	raw := "should be running but is not: postmaster is not running (stale postmaster.pid, last log: " +
		"LOG: database system is ready to accept connections | LOG: listening on Unix socket \"/tmp/s/.s.PGSQL.5433\")"
	if err := a.st.UpsertHealth(ctx, store.Health{EnvironmentID: e.ID, Status: store.HealthError, Reason: raw, CheckedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	c := a.client()
	c.login(t, "ada@example.com")

	for _, path := range []string{"/environments/shop", "/environments/shop/database-card"} {
		p := c.get(path).want(t, http.StatusOK)
		if got := p.Text("[data-testid=health-headline]"); got != "The database stopped unexpectedly" {
			t.Errorf("%s: headline = %q", path, got)
		}
		if got := p.Text("[data-testid=health-advice]"); got != "Restart the environment; if it fails again, read the log below." {
			t.Errorf("%s: advice = %q", path, got)
		}
		d := p.Find("#health-reason details[data-testid=health-detail]")
		if d.Length() != 1 {
			t.Fatalf("%s: no folded detail in #health-reason", path)
		}
		if _, open := d.Attr("open"); open {
			t.Errorf("%s: the detail is open before it is asked for", path)
		}
		if pre := d.Find("pre").Text(); !strings.Contains(pre, "(stale postmaster.pid)\n") || !strings.Contains(pre, "\nLOG: listening on Unix socket") {
			t.Errorf("%s: detail = %q, want the cause and the log lines each on its own line", path, pre)
		}
	}
	if title, _ := c.get("/environments/shop/health").want(t, http.StatusOK).Find("[data-testid=health-badge]").Attr("title"); !strings.HasPrefix(title, "Error: The database stopped unexpectedly") {
		t.Errorf("badge title = %q", title)
	}

	r := a.api("GET", "/api/v1/environments/shop", tok, "").want(t, http.StatusOK)
	if got := r.str("health.reason"); got != "The database stopped unexpectedly" {
		t.Errorf("API reason = %q", got)
	}
	if got := r.str("health.advice"); !strings.HasPrefix(got, "Restart the environment") {
		t.Errorf("API advice = %q", got)
	}
	if got := r.str("health.detail"); !strings.Contains(got, "stale postmaster.pid") || !strings.Contains(got, "LOG: database system is ready") {
		t.Errorf("API detail = %q, want the cause and the log", got)
	}
}
