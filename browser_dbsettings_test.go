package main

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"pgdeck/provisioner/render"
)

// TestBrowserDatabaseSettings walks Settings → Database as a person does
// in Chromium: deploy a pro environment, open Settings → Database and see
// the running server's values read back, type work_mem = 8 MiB and Save
// (the message shows under the field, the field keeps it), fix it to 8MB
// and Save: the notice under the tabs lists the change, on Overview too.
// Redeploy from the notice: when the job ends the notice is gone and the
// applied column reads 8MB; Reset puts the recommendation back (pending
// again). On a starter environment the PgBouncer row is disabled and says
// why. Screenshots go to
// testdata/out/screenshots/3x-*.png, light and dark.
func TestBrowserDatabaseSettings(t *testing.T) {
	srv := startServer(t, "--monitor-interval", "1s")
	ctx := newBrowser(t, 5*time.Minute)

	const (
		email    = "owner@example.com"
		password = "correct horse battery"
		name     = "shop-prod"
		jobWait  = 90 * time.Second // a deploy runs initdb
		// monitor: 1 s ticks; the applied column follows the badge's 5 s refresh
		readBack = 30 * time.Second
	)
	// The plan's recommendation for work_mem, what the deploy applies.
	var recommended string
	for _, p := range render.Recommend(render.Plans()[1].Resources) {
		if p.Name == "work_mem" {
			recommended = p.Value
		}
	}
	if render.Plans()[1].Name != render.PlanPro || recommended == "" {
		t.Fatalf("no pro plan or no work_mem recommendation (%q)", recommended)
	}

	createOwnerInBrowser(t, ctx, srv, email, password)
	do(t, ctx, "create a pro environment",
		chromedp.Click(chromedp.ID("new-environment")),
		chromedp.WaitVisible(chromedp.ID("environment-form")),
		chromedp.SendKeys(chromedp.ID("f-name"), name),
		chromedp.SetValue(chromedp.ID("f-odoo_version"), "18.0"),
		chromedp.SetValue(chromedp.ID("f-stage"), "production"),
		chromedp.SetValue(chromedp.ID("f-plan"), "pro"),
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.ID("job-strip")),
	)
	deploy := readJobStrip(t, ctx)
	eventually(t, ctx, "the deploy job ends", jobWait, func() (bool, string) {
		j := readJobStrip(t, ctx)
		return j.State == "succeeded" || j.State == "failed", j.String()
	})
	if j := readJobStrip(t, ctx); j.State != "succeeded" {
		t.Fatalf("deploy ended as %s", j)
	}

	do(t, ctx, "open Settings → Database",
		chromedp.Click(chromedp.CSS("[data-testid=tab-settings]")),
		chromedp.WaitVisible(chromedp.ID("parameters-table")),
	)
	wantPath(t, ctx, "/environments/"+name+"/settings/database")
	mark := markDocument(t, ctx)
	if got := textOf(t, ctx, "#pending-notice"); got != "" {
		t.Errorf("right after the deploy the page shows a notice: %q", got)
	}
	if got := visibleText(t, ctx, `[data-name="work_mem"] [data-testid=recommended]`); got != recommended {
		t.Errorf("recommended work_mem = %q, want %q", got, recommended)
	}
	if p := attr(t, ctx, "#param-work_mem", "placeholder"); p != recommended {
		t.Errorf("work_mem's input placeholder = %q, want the recommendation", p)
	}
	// The monitor reads the running server's values back.
	eventually(t, ctx, "the applied column shows what the server runs", readBack, func() (bool, string) {
		got := textOf(t, ctx, "#applied-work_mem")
		return got == recommended, "applied work_mem " + got
	})
	if got := textOf(t, ctx, `[data-name="shared_buffers"] [data-testid=applied]`); got != "1GB" {
		t.Errorf("applied shared_buffers = %q, want 1GB", got)
	}
	if got := textOf(t, ctx, `[data-name="shared_buffers"] .tag`); got != "restart" {
		t.Errorf("shared_buffers' tag = %q, want restart", got)
	}
	if got := textOf(t, ctx, `[data-name="work_mem"] .tag`); got != "reload" {
		t.Errorf("work_mem's tag = %q, want reload", got)
	}
	if align := evaluate[string](t, ctx, "read the alignment", `getComputedStyle(document.querySelector('[data-name="work_mem"] [data-testid=recommended]')).textAlign`); align != "right" {
		t.Errorf("numbers are aligned %s, want right", align)
	}
	screenshot(t, ctx, "30-settings-database")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "30-settings-database-dark")
	setColorScheme(t, ctx, "")

	// A unit PostgreSQL does not know: refused beside the field.
	retype(t, ctx, "#param-work_mem", "8 MiB")
	do(t, ctx, "save 8 MiB",
		chromedp.Click(chromedp.ID("settings-save")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid="error-parameters.work_mem"]`)),
	)
	if msg := visibleText(t, ctx, `[data-testid="error-parameters.work_mem"]`); !strings.Contains(msg, `"MiB" is not a unit PostgreSQL knows`) || !strings.Contains(msg, "8MB") {
		t.Errorf("message under work_mem = %q", msg)
	}
	if got := fieldValue(t, ctx, "#param-work_mem"); got != "8 MiB" {
		t.Errorf("work_mem's field keeps %q, want what was typed", got)
	}
	if got := textOf(t, ctx, "[data-testid=pending-notice]"); got != "" {
		t.Errorf("a refused save shows a notice: %q", got)
	}
	// The message sits under its own field, in the same table cell.
	if same := evaluate[bool](t, ctx, "locate the message", `document.querySelector('[data-testid="error-parameters.work_mem"]').closest('td') === document.querySelector('#param-work_mem').closest('td')`); !same {
		t.Error("the message is not beside the work_mem field")
	}
	screenshot(t, ctx, "31-settings-refused")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "31-settings-refused-dark")
	setColorScheme(t, ctx, "")

	// Fixed: saved, and the notice lists the change at once.
	retype(t, ctx, "#param-work_mem", "8MB")
	do(t, ctx, "save 8MB",
		chromedp.Click(chromedp.ID("settings-save")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=pending-notice]")),
	)
	stillSameDocument(t, ctx, mark, "saving")
	if got := pendingChanges(t, ctx); got != "work_mem: "+recommended+" → 8MB" {
		t.Errorf("the notice lists %q, want %q", got, "work_mem: "+recommended+" → 8MB")
	}
	if got := visibleText(t, ctx, "[data-testid=settings-saved]"); got != "Saved. Redeploy to apply." {
		t.Errorf("the card says %q after the save", got)
	}
	if got := textOf(t, ctx, `[data-name="work_mem"] [data-testid=saved]`); got != "8MB" {
		t.Errorf("saved work_mem = %q", got)
	}
	if got := strings.Join(strings.Fields(textOf(t, ctx, "#applied-work_mem")), " "); got != recommended+" pending" {
		t.Errorf("applied work_mem after the save = %q, want the running %s marked pending", got, recommended)
	}
	if got := textOf(t, ctx, ".field-error"); got != "" {
		t.Errorf("a message is left after the save: %q", got)
	}
	screenshot(t, ctx, "32-settings-pending")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "32-settings-pending-dark")
	setColorScheme(t, ctx, "")

	// The notice sits under the tabs on Overview too.
	do(t, ctx, "open Overview",
		chromedp.Click(chromedp.CSS("[data-testid=tab-overview]")),
		chromedp.WaitVisible(chromedp.ID("database-card")),
	)
	if got := pendingChanges(t, ctx); got != "work_mem: "+recommended+" → 8MB" {
		t.Errorf("Overview's notice lists %q", got)
	}
	screenshot(t, ctx, "33-overview-pending")

	// Redeploy from the notice: when the job ends the notice goes away
	// and the server runs 8MB.
	do(t, ctx, "back to Settings → Database",
		chromedp.Click(chromedp.CSS("[data-testid=tab-settings]")),
		chromedp.WaitVisible(chromedp.ID("parameters-table")),
	)
	mark = markDocument(t, ctx)
	do(t, ctx, "click Redeploy in the notice", chromedp.Click(chromedp.ID("pending-redeploy")))
	watchJob(t, ctx, "redeploy", deploy.Href, jobWait)
	eventually(t, ctx, "the notice goes away", 10*time.Second, func() (bool, string) {
		got := textOf(t, ctx, "#pending-notice")
		return got == "", "notice " + got
	})
	eventually(t, ctx, "the applied column reads 8MB", readBack, func() (bool, string) {
		got := textOf(t, ctx, "#applied-work_mem")
		return got == "8MB", "applied work_mem " + got
	})
	stillSameDocument(t, ctx, mark, "redeploying")
	screenshot(t, ctx, "34-settings-applied")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "34-settings-applied-dark")
	setColorScheme(t, ctx, "")

	// Reset: back to the recommendation, which now waits for a redeploy.
	do(t, ctx, "reset work_mem",
		chromedp.Click(chromedp.CSS(`[data-name="work_mem"] [data-testid=reset]`)),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=pending-notice]")),
	)
	stillSameDocument(t, ctx, mark, "resetting")
	if got := pendingChanges(t, ctx); got != "work_mem: 8MB → "+recommended {
		t.Errorf("after the reset the notice lists %q", got)
	}
	if got := fieldValue(t, ctx, "#param-work_mem"); got != "" {
		t.Errorf("work_mem's field holds %q after the reset", got)
	}
	if got := textOf(t, ctx, `[data-name="work_mem"] [data-testid=saved]`); got != "—" {
		t.Errorf("saved work_mem after the reset = %q", got)
	}

	// PgBouncer: on, pool size 30, saved, redeployed; the pooling card then
	// shows PgBouncer's own figures and the Overview its health beside the
	// database's.
	do(t, ctx, "turn PgBouncer on with a pool of 30",
		chromedp.Click(chromedp.ID("pgbouncer-enabled")),
	)
	retype(t, ctx, "#pgbouncer-pool_size", "30")
	do(t, ctx, "save PgBouncer",
		chromedp.Click(chromedp.ID("settings-save")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=pending-change][data-name="pgbouncer.enabled"]`)),
	)
	if got := pendingChanges(t, ctx); !strings.Contains(got, "pgbouncer.enabled: off → on") || !strings.Contains(got, "pgbouncer.pool_size: 20 → 30") {
		t.Errorf("after saving PgBouncer the notice lists %q", got)
	}
	if got := visibleText(t, ctx, "[data-testid=pooling-off]"); !strings.Contains(got, "PgBouncer is off") {
		t.Errorf("before the redeploy the pooling card says %q", got)
	}
	do(t, ctx, "click Redeploy in the notice", chromedp.Click(chromedp.ID("pending-redeploy")))
	watchJob(t, ctx, "redeploy", deploy.Href, jobWait)
	eventually(t, ctx, "the pooling card shows PgBouncer's figures", readBack, func() (bool, string) {
		got := textOf(t, ctx, "#pool-stats [data-testid=pool-cl_waiting]")
		return got == "0", "clients waiting " + got + "; card: " + textOf(t, ctx, "#connection-pooling")
	})
	if got := textOf(t, ctx, "#connection-pooling .badge"); !strings.Contains(got, "Running") {
		t.Errorf("the pooling card's badge reads %q, want Running", got)
	}
	if got := textOf(t, ctx, "[data-testid=sizing-hint]"); got == "" {
		t.Error("the pooling card gives no sizing hint")
	}
	if got := fieldValue(t, ctx, "#pgbouncer-pool_size"); got != "30" {
		t.Errorf("pool size field after the redeploy = %q, want 30", got)
	}
	screenshot(t, ctx, "36-settings-pooling")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "36-settings-pooling-dark")
	setColorScheme(t, ctx, "")
	do(t, ctx, "open Overview",
		chromedp.Click(chromedp.CSS("[data-testid=tab-overview]")),
		chromedp.WaitVisible(chromedp.ID("database-card")),
	)
	eventually(t, ctx, "the Overview shows PgBouncer Running", readBack, func() (bool, string) {
		got := textOf(t, ctx, "#pooler-health")
		return strings.Contains(got, "Running"), "PgBouncer " + got
	})
	if got := textOf(t, ctx, "#pooler-address"); !strings.HasPrefix(got, "127.0.0.1:") || got == textOf(t, ctx, "#db-address") {
		t.Errorf("Odoo connects to %q (the database is at %q)", got, textOf(t, ctx, "#db-address"))
	}
	if got, want := textOf(t, ctx, "#conn-port"), strings.SplitN(textOf(t, ctx, "#pooler-address"), ":", 2)[1]; got != want {
		t.Errorf("Connection details give port %q, want odoo.conf's PgBouncer port %s", got, want)
	}
	screenshot(t, ctx, "37-overview-pooler")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "37-overview-pooler-dark")
	setColorScheme(t, ctx, "")

	// On the starter plan PgBouncer is out of reach, and says why.
	do(t, ctx, "create a starter environment",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.WaitVisible(chromedp.ID("new-environment")),
		chromedp.Click(chromedp.ID("new-environment")),
		chromedp.WaitVisible(chromedp.ID("environment-form")),
		chromedp.SendKeys(chromedp.ID("f-name"), "shop-dev"),
		chromedp.SetValue(chromedp.ID("f-odoo_version"), "17.0"),
		chromedp.SetValue(chromedp.ID("f-stage"), "development"),
		chromedp.SetValue(chromedp.ID("f-plan"), "starter"),
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.ID("environment-name")),
		chromedp.Click(chromedp.CSS("[data-testid=tab-settings]")),
		chromedp.WaitVisible(chromedp.ID("pgbouncer-settings")),
	)
	if off := evaluate[bool](t, ctx, "is the toggle disabled", `document.querySelector('#pgbouncer-enabled').matches(':disabled')`); !off {
		t.Error("Enable PgBouncer can be clicked on the starter plan")
	}
	if got := visibleText(t, ctx, "[data-testid=pgbouncer-gate]"); !strings.HasPrefix(got, "Requires Pro plan") || !strings.Contains(got, "Upgrade to Pro") {
		t.Errorf("the PgBouncer row says %q", got)
	}
	if got := evaluate[string](t, ctx, "read the checklist", `Array.from(document.querySelectorAll('[data-testid=requirement]')).map(r => r.dataset.name + '=' + r.dataset.met).join(' ')`); got != "plan=false odoo_version=false quota=false" {
		t.Errorf("replica requirements on starter, Odoo 17: %s", got)
	}
	screenshot(t, ctx, "35-settings-starter")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "35-settings-starter-dark")
	setColorScheme(t, ctx, "")
}

// pendingChanges is the notice's lines as a person reads them, joined by
// " | ".
func pendingChanges(t *testing.T, ctx context.Context) string {
	t.Helper()
	return evaluate[string](t, ctx, "read the notice", `Array.from(document.querySelectorAll('[data-testid=pending-notice] [data-testid=pending-change]')).map(li => li.innerText.replace(/\s+/g, ' ').trim()).join(' | ')`)
}
