package main

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserFirstEnvironment walks issue #2 as a person does in Chromium:
// set up the owner on a fresh install, log out and in again (a wrong
// password first), create an environment (a bad name first), find it in the
// list with its health badge, open Settings → Database, and log out. It saves
// a full-page screenshot of each important page into testdata/out/screenshots.
func TestBrowserFirstEnvironment(t *testing.T) {
	srv := startServer(t)
	ctx := newBrowser(t, 60*time.Second)

	const (
		email    = "owner@example.com"
		password = "correct horse battery"
	)

	// A fresh install sends the visitor to the setup form.
	do(t, ctx, "open pgdeck",
		chromedp.Navigate(srv.at("/")),
		chromedp.WaitVisible(chromedp.ID("setup-form")),
	)
	wantPath(t, ctx, "/setup")
	if got := visibleText(t, ctx, "h1"); got != "Welcome to pgdeck" {
		t.Errorf("setup heading = %q, want %q", got, "Welcome to pgdeck")
	}
	screenshot(t, ctx, "01-setup")

	do(t, ctx, "create the owner account",
		chromedp.SendKeys(chromedp.ID("f-setup_code"), srv.setupCode(t)),
		chromedp.SendKeys(chromedp.ID("f-email"), email),
		chromedp.SendKeys(chromedp.ID("f-password"), password),
		chromedp.SendKeys(chromedp.ID("f-password_confirm"), password),
		chromedp.Click(chromedp.ID("setup-submit")),
		chromedp.WaitVisible(chromedp.ID("new-environment")),
	)
	wantPath(t, ctx, "/environments")
	if got := visibleText(t, ctx, ".empty-title"); got != "No environments yet" {
		t.Errorf("empty state = %q, want %q", got, "No environments yet")
	}
	if got := visibleText(t, ctx, "[data-testid=nav-account]"); got != email {
		t.Errorf("top bar account = %q, want %q", got, email)
	}
	screenshot(t, ctx, "02-environments-empty")

	logOut(t, ctx)
	wantPath(t, ctx, "/login")

	// A wrong password is refused with a message; the email stays typed.
	do(t, ctx, "log in with a wrong password",
		chromedp.SendKeys(chromedp.ID("f-email"), email),
		chromedp.SendKeys(chromedp.ID("f-password"), "not the password"),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=login-error]")),
	)
	if got := visibleText(t, ctx, "[data-testid=login-error]"); got != "Wrong email or password." {
		t.Errorf("login error = %q, want %q", got, "Wrong email or password.")
	}
	if got := fieldValue(t, ctx, "#f-email"); got != email {
		t.Errorf("email field after a failed login = %q, want %q", got, email)
	}
	screenshot(t, ctx, "03-login-error")

	do(t, ctx, "log in with the right password",
		chromedp.SendKeys(chromedp.ID("f-password"), password),
		chromedp.Click(chromedp.ID("login-submit")),
		chromedp.WaitVisible(chromedp.ID("new-environment")),
	)
	wantPath(t, ctx, "/environments")

	// A bad name gets a message beside the field and keeps what was typed.
	do(t, ctx, "open the new environment form",
		chromedp.Click(chromedp.ID("new-environment")),
		chromedp.WaitVisible(chromedp.ID("environment-form")),
	)
	wantPath(t, ctx, "/environments/new")
	do(t, ctx, "submit a bad name",
		chromedp.SendKeys(chromedp.ID("f-name"), "Bad_Name"),
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=error-name]")),
	)
	msg := visibleText(t, ctx, "[data-testid=error-name]")
	for _, want := range []string{"lower-case letters", "digits", "'-'"} {
		if !strings.Contains(msg, want) {
			t.Errorf("name error = %q, want it to mention %q", msg, want)
		}
	}
	if got := fieldValue(t, ctx, "#f-name"); got != "Bad_Name" {
		t.Errorf("name field after the error = %q, want %q", got, "Bad_Name")
	}
	screenshot(t, ctx, "04-form-error")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "04-form-error-dark")
	setColorScheme(t, ctx, "")

	retype(t, ctx, "#f-name", "shop-staging")
	do(t, ctx, "choose Odoo 18.0, staging, pro",
		chromedp.SetValue(chromedp.ID("f-odoo_version"), "18.0"),
		chromedp.SetValue(chromedp.ID("f-stage"), "staging"),
		chromedp.SetValue(chromedp.ID("f-plan"), "pro"),
	)
	for sel, want := range map[string]string{"#f-name": "shop-staging", "#f-odoo_version": "18.0", "#f-stage": "staging", "#f-plan": "pro"} {
		if got := fieldValue(t, ctx, sel); got != want {
			t.Fatalf("%s = %q before submitting, want %q", sel, got, want)
		}
	}
	do(t, ctx, "submit the environment",
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.ID("environment-name")),
	)
	wantPath(t, ctx, "/environments/shop-staging")
	if got := visibleText(t, ctx, "#environment-name"); got != "shop-staging" {
		t.Errorf("environment name = %q, want %q", got, "shop-staging")
	}
	if got := visibleText(t, ctx, "[data-testid=flash]"); !strings.Contains(got, "shop-staging") || !strings.Contains(got, "created") {
		t.Errorf("flash = %q, want it to say shop-staging was created", got)
	}
	if got := visibleText(t, ctx, ".env-head .meta"); !strings.Contains(got, "Odoo 18.0") || !strings.Contains(strings.ToLower(got), "pro plan") || !strings.Contains(strings.ToLower(got), "staging") {
		t.Errorf("environment header = %q, want Odoo 18.0, staging and pro plan", got)
	}
	screenshot(t, ctx, "05-environment")

	// Back in the list: the row with its health badge, in light and dark.
	const row = "[data-testid=environment-row][data-name=shop-staging]"
	do(t, ctx, "go back to Environments",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.WaitVisible(chromedp.CSS(row)),
	)
	wantPath(t, ctx, "/environments")
	// Creating an environment deploys it, so the badge reads whatever that
	// deploy has reached; the word and its colour must agree.
	// It refreshes itself, so word and class are read in one go.
	badge := row + " [data-testid=health-badge]"
	do(t, ctx, "wait for the health badge", chromedp.WaitVisible(chromedp.CSS(badge)))
	b := badgeOf(t, ctx, badge)
	tones := map[string]string{"Deploying": "badge-warn", "Checking": "badge-muted", "Running": "badge-ok"}
	if tone, ok := tones[b.Text]; !ok {
		t.Errorf("health badge of a new environment = %q, want Deploying, Checking or Running", b.Text)
	} else if !strings.Contains(b.Class, tone) {
		t.Errorf("health badge %q has class %q, want %s", b.Text, b.Class, tone)
	}
	screenshot(t, ctx, "06-environments")

	lightBG := bodyBackground(t, ctx)
	setColorScheme(t, ctx, "dark")
	if darkBG := bodyBackground(t, ctx); darkBG == lightBG {
		t.Errorf("page background is %s in light and in dark mode", darkBG)
	}
	screenshot(t, ctx, "06-environments-dark")
	setColorScheme(t, ctx, "")

	// Settings → Database.
	do(t, ctx, "open the environment",
		chromedp.Click(chromedp.CSS(row+" a")),
		chromedp.WaitVisible(chromedp.ID("environment-name")),
		chromedp.Click(chromedp.CSS("[data-testid=tab-settings]")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=subtab-database]")),
	)
	wantPath(t, ctx, "/environments/shop-staging/settings/database")
	if got := visibleText(t, ctx, "[data-testid=subtab-database]"); got != "Database" {
		t.Errorf("settings sub-tab = %q, want %q", got, "Database")
	}
	if got := visibleText(t, ctx, "#postgresql-optimization h2"); got != "PostgreSQL Optimization" {
		t.Errorf("first settings card = %q, want %q", got, "PostgreSQL Optimization")
	}
	screenshot(t, ctx, "07-settings-database")

	logOut(t, ctx)
	wantPath(t, ctx, "/login")
	if got := visibleText(t, ctx, "h1"); got != "Log in" {
		t.Errorf("after log out the heading = %q, want %q", got, "Log in")
	}
	// Signed out, the list is out of reach.
	do(t, ctx, "open Environments signed out",
		chromedp.Navigate(srv.at("/environments")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
	wantPath(t, ctx, "/login")
}

// bodyBackground is the page's computed background colour.
func bodyBackground(t *testing.T, ctx context.Context) string {
	t.Helper()
	bg, err := chromedp.Run(ctx, chromedp.Evaluate[string](`getComputedStyle(document.body).backgroundColor`))
	if err != nil {
		t.Fatalf("read the page background: %v", err)
	}
	return bg
}

// badge is a health badge as a person sees it: its word and its colour class.
type badge struct {
	Text  string `json:"text"`
	Class string `json:"class"`
}

// badgeOf reads the word and class of the badge at css at the same moment.
func badgeOf(t *testing.T, ctx context.Context, css string) badge {
	t.Helper()
	b, err := chromedp.Run(ctx, chromedp.Evaluate[badge](fmt.Sprintf(
		`(() => { const e = document.querySelector(%q); return e ? {text: e.innerText.trim(), class: e.className} : {}; })()`, css)))
	if err != nil {
		t.Fatalf("read the badge %s: %v", css, err)
	}
	return b
}
