package main

import (
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserReadReplica walks the operator's replica flow in Chromium:
// check Enable Read Replica and Save Settings, Redeploy from the notice,
// click Deploy Replica and watch the widget go from deploying to Online
// with lag 0 and the lag chart drawn, then Remove through the
// confirmation dialog (Cancel first, then Remove replica). Screenshots:
// testdata/out/screenshots/4x-*.png, light and dark.
func TestBrowserReadReplica(t *testing.T) {
	srv := startServer(t, "--monitor-interval", "1s")
	ctx := newBrowser(t, 6*time.Minute)
	const (
		name    = "shop-rr"
		jobWait = 2 * time.Minute
	)
	createOwnerInBrowser(t, ctx, srv, "owner@example.com", "correct horse battery")
	do(t, ctx, "create a pro environment on Odoo 18",
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

	do(t, ctx, "open Settings → Database",
		chromedp.Click(chromedp.CSS("[data-testid=tab-settings]")),
		chromedp.WaitVisible(chromedp.ID("read-replica")),
	)
	if got := evaluate[string](t, ctx, "read the checklist", `Array.from(document.querySelectorAll('[data-testid=requirement]')).map(r => r.dataset.name + '=' + r.dataset.met).join(' ')`); got != "plan=true odoo_version=true quota=true" {
		t.Errorf("replica requirements on pro, Odoo 18: %s", got)
	}
	do(t, ctx, "enable the read replica and save",
		chromedp.Click(chromedp.ID("read-replica-enabled")),
		chromedp.Click(chromedp.ID("settings-save")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=pending-change][data-name="read_replica.enabled"]`)),
	)
	do(t, ctx, "redeploy from the notice", chromedp.Click(chromedp.ID("pending-redeploy")))
	redeploy, _ := watchJob(t, ctx, "redeploy", deploy.Href, jobWait)

	do(t, ctx, "click Deploy Replica",
		chromedp.WaitVisible(chromedp.ID("replica-deploy")),
		chromedp.Click(chromedp.ID("replica-deploy")),
	)
	eventually(t, ctx, "the widget says deploying", 20*time.Second, func() (bool, string) {
		s := attr(t, ctx, "[data-testid=replica-status]", "data-status")
		return s == "deploying" || s == "online", s
	})
	watchJob(t, ctx, "deploy replica", redeploy, jobWait)
	eventually(t, ctx, "the widget shows Online", time.Minute, func() (bool, string) {
		return attr(t, ctx, "[data-testid=replica-status]", "data-status") == "online", textOf(t, ctx, "#replica-widget")
	})
	if got := textOf(t, ctx, "[data-testid=replica-status]"); !strings.Contains(got, "Online") {
		t.Errorf("the status pill reads %q", got)
	}
	if got := textOf(t, ctx, "[data-testid=replica-lag-bytes]"); !strings.HasPrefix(got, "0") {
		t.Errorf("Lag (Bytes) = %q, want 0", got)
	}
	if got := textOf(t, ctx, "[data-testid=replica-lag-seconds]"); !strings.HasPrefix(got, "0") {
		t.Errorf("Lag (Time) = %q, want 0", got)
	}
	eventually(t, ctx, "the lag chart draws the checks", time.Minute, func() (bool, string) {
		n := evaluate[int](t, ctx, "count the chart's points", `document.querySelectorAll('#replica-chart [data-testid=lag-dot], #replica-chart [data-testid=lag-line]').length`)
		return n > 0, textOf(t, ctx, "#replica-chart")
	})
	if n := evaluate[int](t, ctx, "count the bands", `document.querySelectorAll('#replica-chart [data-testid=band-warning], #replica-chart [data-testid=band-critical]').length`); n < 2 {
		t.Errorf("the chart draws %d threshold bands", n)
	}
	screenshot(t, ctx, "40-replica-online")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "40-replica-online-dark")
	setColorScheme(t, ctx, "")

	// Remove asks first; Cancel keeps the replica.
	do(t, ctx, "open the Remove dialog",
		chromedp.Click(chromedp.ID("replica-remove")),
		chromedp.WaitVisible(chromedp.ID("replica-remove-dialog")),
	)
	screenshot(t, ctx, "41-replica-remove-dialog")
	do(t, ctx, "cancel", chromedp.Click(chromedp.ID("replica-remove-cancel")), chromedp.WaitNotVisible(chromedp.ID("replica-remove-dialog")))
	if s := attr(t, ctx, "[data-testid=replica-status]", "data-status"); s != "online" {
		t.Fatalf("after Cancel the replica is %s", s)
	}
	last := readJobStrip(t, ctx).Href
	do(t, ctx, "remove the replica",
		chromedp.Click(chromedp.ID("replica-remove")),
		chromedp.WaitVisible(chromedp.ID("replica-remove-dialog")),
		chromedp.Click(chromedp.ID("replica-remove-confirm")),
	)
	watchJob(t, ctx, "remove replica", last, jobWait)
	eventually(t, ctx, "the widget says not deployed", 30*time.Second, func() (bool, string) {
		s := attr(t, ctx, "[data-testid=replica-status]", "data-status")
		return s == "not_deployed", s
	})
	if n := evaluate[int](t, ctx, "look for Deploy Replica", `document.querySelectorAll('#replica-deploy').length`); n != 1 {
		t.Error("Deploy Replica is not offered again after the remove")
	}
	screenshot(t, ctx, "42-replica-removed")
}
