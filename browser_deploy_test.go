package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestBrowserDeployLifecycle walks issue #3 as a person does in Chromium:
// create an environment and, without reloading, watch its deploy job move
// through its steps to Succeeded and the health badge turn Running; read
// the database details; reveal the password and find the reveal in the
// audit log; Stop (buttons disabled while the job runs) and see Stopped;
// Start and see Running again; read the jobs and a job's log; delete the
// environment (a wrong name first). Screenshots go to
// testdata/out/screenshots/1x-*.png.
func TestBrowserDeployLifecycle(t *testing.T) {
	srv := startServer(t, "--monitor-interval", "1s")
	ctx := newBrowser(t, 4*time.Minute)

	const (
		email    = "owner@example.com"
		password = "correct horse battery"
		name     = "erp-prod"
	)
	const (
		headBadge = ".env-head [data-testid=health-badge]"
		jobWait   = 60 * time.Second // a deploy runs initdb
		healthFor = 30 * time.Second // monitor: 1 s ticks, 2 agreeing checks, 5 s badge refresh
	)
	createOwnerInBrowser(t, ctx, srv, email, password)

	do(t, ctx, "open the new environment form",
		chromedp.Click(chromedp.ID("new-environment")),
		chromedp.WaitVisible(chromedp.ID("environment-form")),
	)
	do(t, ctx, "fill in erp-prod: Odoo 18.0, production, pro",
		chromedp.SendKeys(chromedp.ID("f-name"), name),
		chromedp.SetValue(chromedp.ID("f-odoo_version"), "18.0"),
		chromedp.SetValue(chromedp.ID("f-stage"), "production"),
		chromedp.SetValue(chromedp.ID("f-plan"), "pro"),
	)
	do(t, ctx, "create the environment",
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.ID("environment-name")),
		chromedp.WaitVisible(chromedp.ID("job-strip")),
	)
	wantPath(t, ctx, "/environments/"+name)
	mark := markDocument(t, ctx)

	// The deploy job: watch the strip move on by itself until it ends.
	first := readJobStrip(t, ctx)
	if first.Kind != "deploy" {
		t.Fatalf("right after creating, the strip shows %s, want the deploy job", first)
	}
	var (
		seen        []string // distinct intermediate "step · progress" the strip showed
		shotRunning bool
		last        jobStripView
	)
	eventually(t, ctx, "the deploy job ends", jobWait, func() (bool, string) {
		last = readJobStrip(t, ctx)
		if last.Href != first.Href {
			t.Fatalf("the strip switched from job %s to %s", first.Href, last)
		}
		if last.State == "running" || last.State == "queued" {
			if slices.ContainsFunc(last.Actions, func(b actionButton) bool { return !b.Disabled }) {
				t.Errorf("while the deploy is %s an action is enabled: %+v", last.State, last.Actions)
			}
			pct := strings.TrimSuffix(last.Progress, "%")
			if last.State == "running" && pct != "0" && pct != "100" && last.Step != "" && last.Step != "Waiting for a worker" {
				if s := last.Step + " · " + last.Progress; !slices.Contains(seen, s) {
					seen = append(seen, s)
				}
				if !shotRunning {
					screenshot(t, ctx, "10-job-running")
					shotRunning = true
				}
			}
			return false, last.String()
		}
		return true, last.String()
	})
	t.Logf("deploy steps seen while the page updated itself: %q", seen)
	if len(seen) == 0 {
		t.Errorf("the strip never showed an intermediate step or percentage of the deploy (ended as %s)", last)
	}
	if last.State != "succeeded" || last.Label != "Succeeded" || last.Progress != "100%" {
		t.Fatalf("deploy ended as %s, want Succeeded at 100%%", last)
	}

	eventually(t, ctx, "the health badge turns Running", healthFor, func() (bool, string) {
		h := readHealth(t, ctx, headBadge)
		return h.Status == "running" && h.Text == "Running" && strings.Contains(h.Class, "badge-ok"), h.String()
	})
	stillSameDocument(t, ctx, mark, "creating the environment")
	// What the first deploy made shows up under the tabs without a reload:
	// the connection details, and a delete button no longer held back.
	eventually(t, ctx, "the connection details and an enabled delete button appear", 10*time.Second, func() (bool, string) {
		st := evaluate[string](t, ctx, "read the cards", `(() => {
			const d = document.querySelector('#delete-submit');
			return (document.querySelector('#connection-card #reveal-password') ? 'connection details' : 'no connection details') +
				', delete ' + (d ? (d.disabled ? 'disabled' : 'enabled') : 'missing');
		})()`)
		return st == "connection details, delete enabled", st
	})
	if a := readActions(t, ctx); !sameActions(a, "action-redeploy", "action-restart", "action-stop") || anyDisabled(a) {
		t.Errorf("actions of a running environment = %+v, want Redeploy, Restart, Stop, all enabled", a)
	}

	// The Database card: version, address and when it was last checked.
	eventually(t, ctx, "the Database card shows PostgreSQL 15", healthFor, func() (bool, string) {
		v := textOf(t, ctx, "#db-version")
		return strings.Contains(v, "15"), "version " + v
	})
	if addr := visibleText(t, ctx, "#db-address"); !regexp.MustCompile(`^127\.0\.0\.1:[1-9][0-9]{3,4}$`).MatchString(addr) {
		t.Errorf("database address = %q, want 127.0.0.1:<port>", addr)
	}
	if checked := visibleText(t, ctx, "#db-checked"); !regexp.MustCompile(`^(just now|\d+ s ago)`).MatchString(checked) {
		t.Errorf("Last Checked = %q, want a recent relative time", checked)
	}
	if title := attr(t, ctx, "#db-checked", "title"); !strings.HasSuffix(title, "UTC") {
		t.Errorf("Last Checked hover = %q, want the absolute time", title)
	}
	if got := visibleText(t, ctx, "#db-name"); got == "" {
		t.Errorf("the Database card names no database")
	}
	screenshot(t, ctx, "11-environment-running")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "11-environment-running-dark")
	setColorScheme(t, ctx, "")

	// Reveal the password; the reveal lands in the audit log.
	do(t, ctx, "reveal the database password",
		chromedp.Click(chromedp.ID("reveal-password")),
		chromedp.WaitVisible(chromedp.ID("revealed-password")),
	)
	if pw := visibleText(t, ctx, "#revealed-password"); len(pw) < 12 {
		t.Errorf("revealed password = %q, want a generated secret", pw)
	}
	do(t, ctx, "open the audit log",
		chromedp.Click(chromedp.CSS("[data-testid=nav-audit]")),
		chromedp.WaitVisible(chromedp.ID("audit-table")),
	)
	wantPath(t, ctx, "/audit")
	revealRows := evaluate[int](t, ctx, "count reveal rows", `Array.from(document.querySelectorAll('[data-testid=audit-row]')).filter(r => r.innerText.includes('environment.reveal_password') && r.innerText.includes('erp-prod')).length`)
	if revealRows != 1 {
		t.Errorf("audit rows for environment.reveal_password on erp-prod = %d, want 1", revealRows)
	}

	// Stop: the buttons wait while the job runs, then Start replaces Stop.
	openEnvironment(t, ctx, name)
	mark = markDocument(t, ctx)
	deployJob := readJobStrip(t, ctx).Href
	do(t, ctx, "click Stop", chromedp.Click(chromedp.ID("action-stop")))
	stopJob, sawDisabled := watchJob(t, ctx, "stop", deployJob, jobWait)
	if sawDisabled {
		t.Logf("while the stop job ran the page showed Redeploy disabled")
	} else {
		t.Logf("the stop job ended before the page showed it running; checking the buttons afterwards only")
	}
	if a := readActions(t, ctx); !sameActions(a, "action-redeploy", "action-start") || anyDisabled(a) {
		t.Errorf("actions after Stop = %+v, want Redeploy and Start, enabled", a)
	}
	eventually(t, ctx, "the health badge turns Stopped", healthFor, func() (bool, string) {
		h := readHealth(t, ctx, headBadge)
		return h.Status == "stopped" && h.Text == "Stopped" && strings.Contains(h.Class, "badge-muted"), h.String()
	})
	// The Database card tells the same story as the header soon after.
	eventually(t, ctx, "the Database card's badge agrees: Stopped", 3*time.Second, func() (bool, string) {
		h := readHealth(t, ctx, "#database-card [data-testid=health-badge]")
		return h.Status == "stopped" && h.Text == "Stopped", h.String()
	})
	if up := textOf(t, ctx, "#db-uptime"); up != "–" {
		t.Errorf("uptime of a stopped database = %q, want –", up)
	}
	stillSameDocument(t, ctx, mark, "clicking Stop")
	screenshot(t, ctx, "12-environment-stopped")

	// Start: Running again, without a reload.
	do(t, ctx, "click Start", chromedp.Click(chromedp.ID("action-start")))
	startJob, _ := watchJob(t, ctx, "start", stopJob, jobWait)
	eventually(t, ctx, "the health badge turns Running again", healthFor, func() (bool, string) {
		h := readHealth(t, ctx, headBadge)
		return h.Status == "running" && h.Text == "Running", h.String()
	})
	if a := readActions(t, ctx); !sameActions(a, "action-redeploy", "action-restart", "action-stop") || anyDisabled(a) {
		t.Errorf("actions after Start = %+v, want Redeploy, Restart, Stop, enabled", a)
	}
	stillSameDocument(t, ctx, mark, "clicking Start")

	// The database dies behind pgdeck's back: Error with the reason within
	// a few ticks; Restart, what an operator does then, brings it back.
	pidFile := filepath.Join(srv.DataDir, "envs", name, "primary", "pgdata", "postmaster.pid")
	raw, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatalf("read the postmaster's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(raw), "\n", 2)[0]))
	if err != nil {
		t.Fatalf("postmaster.pid: %v", err)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatalf("kill the postmaster: %v", err)
	}
	eventually(t, ctx, "the health badge turns Error", healthFor, func() (bool, string) {
		h := readHealth(t, ctx, headBadge)
		return h.Status == "error" && h.Text == "Error" && strings.Contains(h.Class, "badge-bad"), h.String()
	})
	eventually(t, ctx, "the Database card says what happened and what to do", 3*time.Second, func() (bool, string) {
		r := evaluate[string](t, ctx, "read the reason", `(document.getElementById('health-reason') || {innerText: ''}).innerText`)
		return strings.Contains(r, "The database stopped unexpectedly") && strings.Contains(r, "Restart the environment"), r
	})
	// The technical detail (the server's last log lines) is folded under
	// the words; opened, it shows the log.
	if r := evaluate[string](t, ctx, "read the reason", `document.getElementById('health-reason').innerText`); strings.Contains(r, "postmaster.pid") {
		t.Errorf("the reason shows the technical detail before it is opened: %q", r)
	}
	screenshot(t, ctx, "12b-environment-error")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "12b-environment-error-dark")
	setColorScheme(t, ctx, "")
	do(t, ctx, "open the technical detail", chromedp.Click(chromedp.CSS(`[data-testid="health-detail"] summary`)))
	eventually(t, ctx, "the technical detail shows the server log", 3*time.Second, func() (bool, string) {
		r := visibleText(t, ctx, `[data-testid="health-detail"]`)
		return strings.Contains(r, "stale postmaster.pid") && strings.Contains(r, "Last lines of the server log"), r
	})
	screenshot(t, ctx, "12b-environment-error-detail")
	do(t, ctx, "click Restart", chromedp.Click(chromedp.ID("action-restart")))
	watchJob(t, ctx, "restart", startJob, jobWait)
	eventually(t, ctx, "the health badge turns Running after Restart", healthFor, func() (bool, string) {
		h := readHealth(t, ctx, headBadge)
		return h.Status == "running" && h.Text == "Running", h.String()
	})
	stillSameDocument(t, ctx, mark, "clicking Restart")

	// Another operator starts a redeploy (a request this page did not
	// make): the page's Stop button is still enabled, its click answers
	// 409, and the message shows at the top of the page instead of the
	// click doing nothing.
	status := evaluate[int](t, ctx, "another operator starts a redeploy", `(() => {
		const x = new XMLHttpRequest();
		x.open('POST', '/environments/erp-prod/actions/redeploy', false);
		const h = JSON.parse(document.body.getAttribute('hx-headers'));
		for (const k in h) x.setRequestHeader(k, h[k]);
		x.setRequestHeader('HX-Request', 'true');
		x.send();
		return x.status;
	})()`)
	if status != 200 && status != 202 {
		t.Fatalf("the other operator's redeploy answered %d", status)
	}
	do(t, ctx, "click Stop while that redeploy runs", chromedp.Click(chromedp.ID("action-stop")))
	eventually(t, ctx, "the 409 message shows", 10*time.Second, func() (bool, string) {
		msg := evaluate[string](t, ctx, "read the error region", `(document.querySelector('#htmx-errors [data-testid=htmx-error]') || {innerText: ''}).innerText`)
		return strings.Contains(msg, "Another job is already queued or running for erp-prod"), msg
	})
	screenshot(t, ctx, "12c-busy-message")
	eventually(t, ctx, "the other operator's redeploy ends", jobWait, func() (bool, string) {
		do(t, ctx, "reload the environment", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("environment-name")))
		a := readActions(t, ctx)
		h := readHealth(t, ctx, headBadge)
		return !anyDisabled(a) && h.Status == "running", fmt.Sprintf("%+v %s", a, h)
	})

	// The jobs page lists the three jobs; the deploy's log tells its steps.
	do(t, ctx, "open Jobs",
		chromedp.Click(chromedp.CSS("[data-testid=nav-jobs]")),
		chromedp.WaitVisible(chromedp.ID("jobs-table")),
	)
	wantPath(t, ctx, "/jobs")
	type jobRow struct {
		Kind  string `json:"kind"`
		State string `json:"state"`
		Word  string `json:"word"`
	}
	rows := evaluate[[]jobRow](t, ctx, "read the jobs", `Array.from(document.querySelectorAll('[data-testid=job-row][data-env="erp-prod"]')).map(r => ({kind: r.dataset.kind, state: r.dataset.state, word: r.querySelector('.badge').innerText.trim()}))`)
	for _, kind := range []string{"deploy", "stop", "start"} {
		i := slices.IndexFunc(rows, func(r jobRow) bool { return r.Kind == kind })
		if i < 0 {
			t.Errorf("the jobs page has no %s job of erp-prod (rows %+v)", kind, rows)
		} else if rows[i].State != "succeeded" || rows[i].Word != "Succeeded" {
			t.Errorf("the %s job reads %+v, want Succeeded", kind, rows[i])
		}
	}
	screenshot(t, ctx, "13-jobs")

	do(t, ctx, "open the deploy job",
		chromedp.Click(chromedp.CSS(`[data-testid=job-row][data-env="erp-prod"][data-kind=deploy] a[href^="/jobs/"]`)),
		chromedp.WaitVisible(chromedp.ID("job-log")),
	)
	wantPath(t, ctx, deployJob)
	if log := visibleText(t, ctx, "#job-log"); !strings.Contains(log, "Creating the PostgreSQL cluster") || !strings.Contains(log, "done in") {
		t.Errorf("deploy log = %q, want its steps and how long it took", log)
	}
	screenshot(t, ctx, "14-job-log")

	// Delete: a wrong name is refused beside the field; the right one deletes.
	openEnvironment(t, ctx, name)
	do(t, ctx, "type a wrong name to delete",
		chromedp.SendKeys(chromedp.ID("f-confirm_name"), "erp-prd"),
		chromedp.Click(chromedp.ID("delete-submit")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=error-confirm_name]")),
	)
	if msg := visibleText(t, ctx, "[data-testid=error-confirm_name]"); !strings.Contains(msg, name) {
		t.Errorf("delete error = %q, want it to name %s", msg, name)
	}
	if got := fieldValue(t, ctx, "#f-confirm_name"); got != "erp-prd" {
		t.Errorf("confirm field after the error = %q, want what was typed", got)
	}
	if h := readHealth(t, ctx, headBadge); h.Status != "running" {
		t.Errorf("after a refused delete the badge reads %s, want Running", h)
	}
	screenshot(t, ctx, "15-delete-error")

	retype(t, ctx, "#f-confirm_name", name)
	do(t, ctx, "delete for real",
		chromedp.Click(chromedp.ID("delete-submit")),
		chromedp.WaitVisible(chromedp.ID("jobs-table")),
	)
	wantPath(t, ctx, "/jobs")
	if got := visibleText(t, ctx, "[data-testid=flash]"); !strings.Contains(got, "Deleting "+name) {
		t.Errorf("flash after delete = %q, want it to say %s is being deleted", got, name)
	}
	do(t, ctx, "go to Environments",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.WaitVisible(chromedp.ID("new-environment")),
	)
	eventually(t, ctx, "erp-prod leaves the environments list", jobWait, func() (bool, string) {
		n := evaluate[int](t, ctx, "count erp-prod rows", `document.querySelectorAll('[data-testid=environment-row][data-name="erp-prod"]').length`)
		if n == 0 {
			return true, "no erp-prod row"
		}
		// The list does not drop rows by itself: reload as a person would.
		do(t, ctx, "reload Environments", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("new-environment")))
		return false, "an erp-prod row"
	})
	if got := visibleText(t, ctx, ".empty-title"); got != "No environments yet" {
		t.Errorf("after deleting the only environment the list shows %q", got)
	}
}

// openEnvironment goes to Environments and opens name from its row.
func openEnvironment(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	row := `[data-testid=environment-row][data-name="` + name + `"]`
	do(t, ctx, "open "+name+" from Environments",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.WaitVisible(chromedp.CSS(row)),
		chromedp.Click(chromedp.CSS(row+" a")),
		chromedp.WaitVisible(chromedp.ID("environment-name")),
	)
	wantPath(t, ctx, "/environments/"+name)
}

// watchJob waits on the environment page for a new job of kind (the strip
// no longer shows the job previous) to end in Succeeded. It reports the
// new job's link and whether, while the job was queued or running, the
// page showed the conflicting Redeploy button disabled; when it did, every
// action must have been disabled.
func watchJob(t *testing.T, ctx context.Context, kind, previous string, timeout time.Duration) (string, bool) {
	t.Helper()
	var (
		last        jobStripView
		sawDisabled bool
	)
	eventually(t, ctx, "the "+kind+" job ends", timeout, func() (bool, string) {
		last = readJobStrip(t, ctx)
		if last.Href == previous || last.Kind != kind {
			return false, last.String()
		}
		if last.State == "queued" || last.State == "running" {
			if i := slices.IndexFunc(last.Actions, func(b actionButton) bool { return b.ID == "action-redeploy" }); i >= 0 && last.Actions[i].Disabled {
				sawDisabled = true
			}
			if slices.ContainsFunc(last.Actions, func(b actionButton) bool { return !b.Disabled }) {
				t.Errorf("while the %s job is %s an action is enabled: %+v", kind, last.State, last.Actions)
			}
			return false, last.String()
		}
		return true, last.String()
	})
	if last.State != "succeeded" || last.Label != "Succeeded" || last.Progress != "100%" {
		t.Fatalf("the %s job ended as %s, want Succeeded at 100%%", kind, last)
	}
	return last.Href, sawDisabled
}

// textOf is the element's text as a person reads it, or "" when absent.
func textOf(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	return evaluate[string](t, ctx, "read "+css, `(() => { const e = document.querySelector(`+jsString(css)+`); return e ? e.innerText.trim() : ''; })()`)
}

func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// sameActions reports whether the buttons are exactly ids, in that order.
func sameActions(a []actionButton, ids ...string) bool {
	got := make([]string, len(a))
	for i, b := range a {
		got[i] = b.ID
	}
	return slices.Equal(got, ids)
}

func anyDisabled(a []actionButton) bool {
	return slices.ContainsFunc(a, func(b actionButton) bool { return b.Disabled })
}
