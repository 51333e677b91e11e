package main

import (
	"archive/zip"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"
	"github.com/jackc/pgx/v5"

	"pgdeck/internal/testkit"
)

// TestBrowserBackups walks the Backups tab as a person does in Chromium:
// deploy an environment, see "No backups yet" and the no-backup warning,
// Create backup and watch the row go to Succeeded without a reload (and the
// job strip), find the backup's age on the Overview and in the
// Environments list, download the archive (a real download: a zip holding
// dump.sql and manifest.json), Verify it, write a row after the backup and
// Restore through the dialog: the Overview follows the job, the row is
// gone, and a "Before a restore" backup is listed. The Schedule card
// refuses 25:99 under its field and saves 02:30; the Import card refuses a
// file that is not a zip; a backup is deleted through its dialog.
// Screenshots: testdata/out/screenshots/5x-*.png, light and dark.
func TestBrowserBackups(t *testing.T) {
	start := time.Now()
	// Its own window of ports: browser tests of other checkouts may run
	// beside this one, each pgdeck handing out ports from the same default
	// range.
	ports := testkit.FreePortWindow(t, 10)
	srv := startServer(t, "--monitor-interval", "1s", "--port-range", fmt.Sprintf("%d-%d", ports, ports+9))
	ctx := newBrowser(t, 3*time.Minute)
	const (
		name    = "shop-bk"
		jobWait = 90 * time.Second // a deploy runs initdb
		// The list polls every 2 s while a backup is written; the strip
		// every 1 s while a job runs.
		selfUpdate = 30 * time.Second
		probe      = "pgdeck_probe"
	)
	createOwnerInBrowser(t, ctx, srv, "owner@example.com", "correct horse battery")
	do(t, ctx, "open the new environment form",
		chromedp.Click(chromedp.ID("new-environment")),
		chromedp.WaitVisible(chromedp.ID("environment-form")),
	)
	wantPath(t, ctx, "/environments/new")
	do(t, ctx, "create an environment on Odoo 18",
		chromedp.WaitReady(chromedp.ID("f-name")),
		chromedp.SendKeys(chromedp.ID("f-name"), name),
		chromedp.SetValue(chromedp.ID("f-odoo_version"), "18.0"),
		chromedp.SetValue(chromedp.ID("f-stage"), "production"),
		chromedp.SetValue(chromedp.ID("f-plan"), "pro"),
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.ID("job-strip")),
	)
	eventually(t, ctx, "the deploy job ends", jobWait, func() (bool, string) {
		j := readJobStrip(t, ctx)
		return j.State == "succeeded" || j.State == "failed", j.String()
	})
	if j := readJobStrip(t, ctx); j.State != "succeeded" {
		t.Fatalf("deploy ended as %s", j)
	}
	t.Logf("deployed after %s", time.Since(start).Round(time.Second))

	// The environment's credentials, from the odoo.conf the Overview names.
	eventually(t, ctx, "the connection details appear", 10*time.Second, func() (bool, string) {
		p := textOf(t, ctx, "#connection-card p.muted code")
		return strings.HasSuffix(p, "odoo.conf"), "odoo.conf path " + p
	})
	db := envDB{conf: crashReadConf(t, textOf(t, ctx, "#connection-card p.muted code"))}
	db.exec(t, "CREATE TABLE "+probe+" (note text PRIMARY KEY)", "INSERT INTO "+probe+" VALUES ('before the backup')",
		// Some bulk, so that the backup takes long enough to be seen at work.
		"CREATE TABLE pgdeck_filler AS SELECT g AS id, md5(g::text) || md5((g + 1)::text) || md5((g + 2)::text) || md5((g + 3)::text) AS pad FROM generate_series(1, 50000) g")

	// No backup yet: the tab says so, with the warning.
	do(t, ctx, "open the Backups tab",
		chromedp.Click(chromedp.CSS("[data-testid=tab-backups]")),
		chromedp.WaitVisible(chromedp.ID("backups-card")),
	)
	wantPath(t, ctx, "/environments/"+name+"/backups")
	if got := visibleText(t, ctx, "#backup-list .empty-title"); got != "No backups yet" {
		t.Errorf("the empty list says %q, want No backups yet", got)
	}
	if got := visibleText(t, ctx, "#backups-card [data-testid=backup-age]"); !strings.Contains(got, "No backup") || !strings.Contains(got, "No good backup") {
		t.Errorf("the warning reads %q", got)
	}
	if c := attr(t, ctx, "#backups-card [data-testid=backup-age] .badge", "class"); !strings.Contains(c, "badge-warn") {
		t.Errorf("the No backup badge has class %q, want badge-warn", c)
	}
	screenshot(t, ctx, "50-backups-empty")

	// Create backup: the row appears and goes to Succeeded by itself.
	mark := markDocument(t, ctx)
	deployJob := readJobStrip(t, ctx).Href
	if got := fieldValue(t, ctx, "#f-format"); got != "zip" {
		t.Errorf("the format select starts on %q, want zip", got)
	}
	do(t, ctx, "click Create backup", chromedp.Click(chromedp.ID("backup-create")))
	var (
		states   []string // the row's states as the page showed them
		strips   []string // the job strip's states for the backup job
		polled   bool     // the list polled while the job ran
		manual   backupRowView
		lastSeen string
	)
	eventually(t, ctx, "the backup's row reads Succeeded without a reload", selfUpdate, func() (bool, string) {
		rows := readBackupRows(t, ctx)
		j := readJobStrip(t, ctx)
		if strings.Contains(listTrigger(t, ctx), "every 2s") {
			polled = true
		}
		if j.Href != deployJob && j.Kind == "backup" && (len(strips) == 0 || strips[len(strips)-1] != j.State) {
			strips = append(strips, j.State)
		}
		i := slices.IndexFunc(rows, func(r backupRowView) bool { return r.Kind == "manual" })
		if i < 0 {
			lastSeen = fmt.Sprintf("no manual row (rows %+v; %s)", rows, j)
			return false, lastSeen
		}
		manual = rows[i]
		if len(states) == 0 || states[len(states)-1] != manual.State {
			states = append(states, manual.State)
			if manual.State == "running" {
				screenshot(t, ctx, "50b-backup-running")
			}
		}
		lastSeen = fmt.Sprintf("%+v; %s", manual, j)
		return manual.State == "succeeded" || manual.State == "failed", lastSeen
	})
	t.Logf("the row showed %q, the strip %q (%s)", states, strips, readJobStrip(t, ctx).Step)
	if !polled {
		t.Errorf("the list did not poll while the backup job ran")
	}
	if !slices.Contains(strips, "queued") && !slices.Contains(strips, "running") {
		t.Errorf("the job strip never showed the backup job at work (it showed %q)", strips)
	}
	if manual.State != "succeeded" || manual.Word != "Succeeded" {
		t.Fatalf("the backup ended as %+v", manual)
	}
	if !slices.Contains(states, "running") {
		t.Logf("the backup was written before the page showed it running")
	}
	stillSameDocument(t, ctx, mark, "clicking Create backup")
	if !regexp.MustCompile(`^[0-9.]+ (B|kB|KB|MB)$`).MatchString(manual.Size) {
		t.Errorf("the backup's size reads %q", manual.Size)
	}
	if manual.Verified != "Not checked" {
		t.Errorf("a new backup's Verified column reads %q", manual.Verified)
	}
	// The strip follows the backup job to its end.
	eventually(t, ctx, "the job strip shows the backup job succeeded", selfUpdate, func() (bool, string) {
		j := readJobStrip(t, ctx)
		return j.Kind == "backup" && j.State == "succeeded" && j.Progress == "100%", j.String()
	})
	eventually(t, ctx, "the list stops polling", 5*time.Second, func() (bool, string) {
		tr := listTrigger(t, ctx)
		return !strings.Contains(tr, "every"), "hx-trigger " + tr
	})
	eventually(t, ctx, "the age line says Recent", selfUpdate, func() (bool, string) {
		s := textOf(t, ctx, "#backups-card [data-testid=backup-age]")
		return strings.Contains(s, "Recent"), s
	})
	listFits(t, ctx)
	screenshot(t, ctx, "51-backups-list")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "51-backups-list-dark")
	setColorScheme(t, ctx, "")

	// The Overview's Backups card and the list's Last backup column.
	recent := regexp.MustCompile(`^(just now|\d+ s ago|1 min ago)$`)
	do(t, ctx, "open the Overview",
		chromedp.Click(chromedp.CSS("[data-testid=tab-overview]")),
		chromedp.WaitVisible(chromedp.ID("backup-summary")),
	)
	if got := strings.Join(strings.Fields(visibleText(t, ctx, "#backup-summary [data-testid=backup-age]")), " "); !regexp.MustCompile(`^Recent Newest good backup (just now|\d+ s ago|1 min ago)\.$`).MatchString(got) {
		t.Errorf("the Overview's Backups card reads %q", got)
	}
	if got := visibleText(t, ctx, "#delete-backup-note"); !strings.Contains(got, "pre-delete backup") {
		t.Errorf("the delete card's note reads %q", got)
	}
	screenshot(t, ctx, "53-overview-backups")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "53-overview-backups-dark")
	setColorScheme(t, ctx, "")
	cell := `[data-testid=environment-row][data-name="` + name + `"] [data-testid=backup-cell]`
	do(t, ctx, "open Environments",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.WaitVisible(chromedp.CSS(cell)),
	)
	if got := visibleText(t, ctx, cell); !recent.MatchString(got) {
		t.Errorf("the Last backup column reads %q, want a recent age", got)
	}
	if title := attr(t, ctx, cell+" span", "title"); !strings.HasSuffix(title, "UTC") {
		t.Errorf("the Last backup hover reads %q, want the absolute time", title)
	}

	// Download: a real download into a folder, its end awaited.
	openEnvironment(t, ctx, name)
	do(t, ctx, "open the Backups tab",
		chromedp.Click(chromedp.CSS("[data-testid=tab-backups]")),
		chromedp.WaitVisible(chromedp.ID("backups-table")),
	)
	archive := downloadBackup(t, ctx, "#backup-download-"+manual.ID)
	entries := zipEntries(t, archive)
	for _, want := range []string{"dump.sql", "manifest.json"} {
		if !slices.Contains(entries, want) {
			t.Errorf("the downloaded archive holds %q, want %s among them", entries, want)
		}
	}
	if !slices.ContainsFunc(entries, func(e string) bool { return strings.HasPrefix(e, "filestore/") }) {
		t.Logf("the archive has no filestore/ entry (the environment has no attachments): %q", entries)
	}

	// Verify: the row says Verified, by itself.
	mark = markDocument(t, ctx)
	do(t, ctx, "click Verify", chromedp.Click(chromedp.ID("backup-verify-"+manual.ID)))
	eventually(t, ctx, "the row says Verified without a reload", selfUpdate, func() (bool, string) {
		r, ok := backupRowByID(readBackupRows(t, ctx), manual.ID)
		return ok && r.Verified == "Verified", fmt.Sprintf("%+v; %s", r, readJobStrip(t, ctx))
	})
	stillSameDocument(t, ctx, mark, "clicking Verify")

	// A row written after the backup, then Restore through the dialog.
	db.exec(t, "INSERT INTO "+probe+" VALUES ('after the backup')")
	if got := db.notes(t, probe); !slices.Equal(got, []string{"after the backup", "before the backup"}) {
		t.Fatalf("before the restore the probe holds %q", got)
	}
	dialog := "#restore-dialog-" + manual.ID
	do(t, ctx, "click Restore…",
		chromedp.Click(chromedp.ID("backup-restore-"+manual.ID)),
		chromedp.WaitVisible(chromedp.CSS(dialog)),
	)
	if open := evaluate[bool](t, ctx, "is the dialog modal", `document.querySelector('`+dialog+`').matches(':modal')`); !open {
		t.Errorf("the restore dialog is not open as a modal")
	}
	text := visibleText(t, ctx, dialog)
	for _, want := range []string{"Restore this backup?", "database", "filestore", "pre-restore backup"} {
		if !strings.Contains(text, want) {
			t.Errorf("the restore dialog does not say %q: %q", want, text)
		}
	}
	if got := fieldValue(t, ctx, "#f-target-"+manual.ID); got != name {
		t.Errorf("Restore into starts on %q, want %s", got, name)
	}
	if on := evaluate[bool](t, ctx, "read Neutralize", `document.querySelector('#f-neutralize-`+manual.ID+`').checked`); on {
		t.Errorf("Neutralize starts ticked")
	}
	dialogFits(t, ctx, dialog)
	viewportScreenshot(t, ctx, "52-restore-dialog")
	setColorScheme(t, ctx, "dark")
	viewportScreenshot(t, ctx, "52-restore-dialog-dark")
	setColorScheme(t, ctx, "")
	backupJob := readJobStrip(t, ctx).Href
	do(t, ctx, "confirm the restore",
		chromedp.Click(chromedp.ID("restore-confirm-"+manual.ID)),
		chromedp.WaitVisible(chromedp.ID("overview-body")),
	)
	wantPath(t, ctx, "/environments/"+name)
	if got := visibleText(t, ctx, "[data-testid=flash]"); !strings.Contains(got, "Restoring the backup") {
		t.Errorf("the flash after Restore reads %q", got)
	}
	if j := readJobStrip(t, ctx); j.Kind != "restore" {
		t.Errorf("right after Restore the strip shows %s, want the restore job", j)
	}
	watchJob(t, ctx, "restore", backupJob, jobWait)
	if got := db.notes(t, probe); !slices.Equal(got, []string{"before the backup"}) {
		t.Errorf("after the restore the probe holds %q, want only the row written before the backup", got)
	}
	do(t, ctx, "open the Backups tab",
		chromedp.Click(chromedp.CSS("[data-testid=tab-backups]")),
		chromedp.WaitVisible(chromedp.ID("backups-table")),
	)
	rows := readBackupRows(t, ctx)
	pre := slices.IndexFunc(rows, func(r backupRowView) bool { return r.Kind == "pre-restore" })
	if pre < 0 {
		t.Fatalf("after the restore the list has no pre-restore backup: %+v", rows)
	}
	if r := rows[pre]; r.KindWord != "Before a restore" || r.State != "succeeded" {
		t.Errorf("the pre-restore backup reads %+v", r)
	}
	listFits(t, ctx)

	// Schedule: a bad time is refused under its field, a good one saves.
	retype(t, ctx, "#f-time", "25:99")
	do(t, ctx, "save 25:99",
		chromedp.Click(chromedp.ID("schedule-save")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=error-time]")),
	)
	if msg := visibleText(t, ctx, "[data-testid=error-time]"); !strings.Contains(msg, "HH:MM") {
		t.Errorf("the message under Time reads %q", msg)
	}
	if got := fieldValue(t, ctx, "#f-time"); got != "25:99" {
		t.Errorf("after the refusal Time holds %q, want what was typed", got)
	}
	if same := evaluate[bool](t, ctx, "locate the message", `document.querySelector('[data-testid=error-time]').closest('.field') === document.querySelector('#f-time').closest('.field')`); !same {
		t.Errorf("the message is not under the Time field")
	}
	screenshot(t, ctx, "54-schedule-refused")
	retype(t, ctx, "#f-time", "02:30")
	do(t, ctx, "save 02:30",
		chromedp.Click(chromedp.ID("schedule-save")),
		chromedp.WaitVisible(chromedp.CSS("#schedule-card .saved-note")),
	)
	if got := visibleText(t, ctx, "#schedule-card .saved-note"); got != "Saved." {
		t.Errorf("after the save the card says %q", got)
	}
	if got := fieldValue(t, ctx, "#f-time"); got != "02:30" {
		t.Errorf("after the save Time holds %q", got)
	}
	if got := textOf(t, ctx, "#schedule-card .field-error"); got != "" {
		t.Errorf("a message is left after the save: %q", got)
	}

	// Import: a file that is not a zip is refused under the file field.
	notZip := filepath.Join(t.TempDir(), "notes.zip")
	if err := os.WriteFile(notZip, []byte("these are notes, not an archive\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	do(t, ctx, "upload a file that is not a zip",
		chromedp.SetUploadFiles(chromedp.ID("f-file"), []string{notZip}),
		chromedp.Click(chromedp.ID("import-upload")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=error-file]")),
	)
	if msg := visibleText(t, ctx, "[data-testid=error-file]"); !strings.HasPrefix(msg, "The file is not a zip archive") || !strings.HasSuffix(msg, ".") {
		t.Errorf("the message under the file field reads %q, want a sentence saying it is not a zip archive", msg)
	} else {
		t.Logf("import refusal: %q", msg)
	}
	if n := len(readBackupRows(t, ctx)); n != len(rows) {
		t.Errorf("the refused import changed the list: %d rows, was %d", n, len(rows))
	}
	screenshot(t, ctx, "55-import-refused")

	// Delete the manual backup through its dialog: Cancel first.
	del := "#delete-backup-dialog-" + manual.ID
	do(t, ctx, "open the delete dialog",
		chromedp.Click(chromedp.ID("backup-delete-"+manual.ID)),
		chromedp.WaitVisible(chromedp.CSS(del)),
	)
	if got := visibleText(t, ctx, del); !strings.Contains(got, "cannot be undone") || !strings.Contains(got, ".zip") {
		t.Errorf("the delete dialog reads %q", got)
	}
	dialogFits(t, ctx, del)
	viewportScreenshot(t, ctx, "56-delete-dialog")
	do(t, ctx, "cancel", chromedp.Click(chromedp.CSS(del+" form[method=dialog] button")), chromedp.WaitNotVisible(chromedp.CSS(del)))
	if _, ok := backupRowByID(readBackupRows(t, ctx), manual.ID); !ok {
		t.Fatalf("Cancel deleted the backup")
	}
	do(t, ctx, "delete the backup",
		chromedp.Click(chromedp.ID("backup-delete-"+manual.ID)),
		chromedp.WaitVisible(chromedp.CSS(del)),
		chromedp.Click(chromedp.ID("delete-backup-confirm-"+manual.ID)),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=flash]")),
	)
	wantPath(t, ctx, "/environments/"+name+"/backups")
	if got := visibleText(t, ctx, "[data-testid=flash]"); !strings.Contains(got, "Deleted the backup") {
		t.Errorf("the flash after the delete reads %q", got)
	}
	if _, ok := backupRowByID(readBackupRows(t, ctx), manual.ID); ok {
		t.Errorf("the deleted backup is still listed")
	}
	if _, err := os.Stat(archiveOnServer(srv, name, manual.File)); !os.IsNotExist(err) {
		t.Errorf("the deleted backup's archive is still on the server (%v)", err)
	}
	t.Logf("the walk took %s", time.Since(start).Round(time.Second))
}

// stylesLoaded waits until the page has loaded its stylesheet: a layout
// measured before it is the unstyled page's.
func stylesLoaded(t *testing.T, ctx context.Context) {
	t.Helper()
	eventually(t, ctx, "the page loads its styles", 10*time.Second, func() (bool, string) {
		st := evaluate[string](t, ctx, "read the load state", `document.readyState + ', ' + document.styleSheets.length + ' stylesheets'`)
		return strings.HasPrefix(st, "complete") && !strings.HasSuffix(st, " 0 stylesheets"), st
	})
}

// listTrigger is what makes the list refresh itself (hx-trigger).
func listTrigger(t *testing.T, ctx context.Context) string {
	t.Helper()
	return evaluate[string](t, ctx, "read the list's trigger", `(document.querySelector('#backup-list') || {getAttribute: () => ''}).getAttribute('hx-trigger') || ''`)
}

// listFits fails the test when a row's buttons wrap onto a second line or
// the list is wider than its card.
func listFits(t *testing.T, ctx context.Context) {
	t.Helper()
	stylesLoaded(t, ctx)
	if got := evaluate[string](t, ctx, "lay out the buttons", `Array.from(document.querySelectorAll('#backups-table tbody tr')).map(r => {
		const tops = new Set(Array.from(r.querySelectorAll('td.actions .btn')).filter(b => b.offsetParent).map(b => Math.round(b.getBoundingClientRect().top)));
		return tops.size > 1 ? r.id + ': ' + tops.size + ' lines' : '';
	}).filter(Boolean).join('; ')`); got != "" {
		t.Errorf("the row's buttons wrap: %s", got)
	}
	if got := evaluate[string](t, ctx, "measure the list", `(() => { const s = document.querySelector('#backup-list .table-scroll'); return s.scrollWidth > s.clientWidth ? s.scrollWidth + ' px of table in ' + s.clientWidth + ' px' : ''; })()`); got != "" {
		t.Errorf("the list is wider than its card: %s", got)
	}
}

// dialogFits fails the test when the open dialog's content is wider than
// the dialog (text cut off at its edge) or its title is not on the left.
func dialogFits(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	stylesLoaded(t, ctx)
	got := evaluate[string](t, ctx, "measure the dialog", `(() => {
		const d = document.querySelector(`+jsString(css)+`);
		const wide = Array.from(d.querySelectorAll('h3, p, label, div')).filter(e => e.scrollWidth > e.clientWidth + 1).map(e => e.tagName);
		if (d.scrollWidth > d.clientWidth + 1) wide.push('DIALOG');
		const h = d.querySelector('h3');
		const left = h.getBoundingClientRect().left - d.getBoundingClientRect().left;
		return (wide.length ? 'cut off: ' + wide.join(',') + '; ' : '') + (left > 40 ? 'title ' + Math.round(left) + ' px from the left' : '');
	})()`)
	if got != "" {
		t.Errorf("the dialog %s does not fit: %s", css, got)
	}
}

// viewportScreenshot saves what the window shows (a modal dialog's backdrop
// covers the window, not the whole page) as testdata/out/screenshots/<name>.png.
func viewportScreenshot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		t.Fatalf("screenshot %s: %v", name, err)
	}
	if err := os.MkdirAll(screenshotDir, 0o755); err != nil {
		t.Fatalf("screenshot dir: %v", err)
	}
	path := filepath.Join(screenshotDir, name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		t.Fatalf("write screenshot: %v", err)
	}
	t.Logf("screenshot %s", path)
}

// backupRowView is a row of the backups list as a person reads it.
type backupRowView struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`  // data-kind
	State    string `json:"state"` // data-state
	KindWord string `json:"kindWord"`
	Word     string `json:"word"` // the status badge's word
	Size     string `json:"size"`
	Verified string `json:"verified"`
	File     string `json:"file"` // from the delete dialog
}

// readBackupRows reads the list at one moment.
func readBackupRows(t *testing.T, ctx context.Context) []backupRowView {
	t.Helper()
	return evaluate[[]backupRowView](t, ctx, "read the backups", `Array.from(document.querySelectorAll('#backups-table tbody tr')).map(r => {
		const text = (sel) => { const e = r.querySelector(sel); return e ? e.innerText.replace(/\s+/g, ' ').trim() : ''; };
		const file = r.querySelector('dialog[id^="delete-backup-dialog-"] code');
		return {
			id: r.id.replace(/^backup-/, ''), kind: r.dataset.kind || '', state: r.dataset.state || '',
			kindWord: r.cells[1].innerText.trim(), word: text('[data-testid=backup-state]'),
			size: r.cells[3].innerText.trim(), verified: text('[data-testid=backup-verified]'),
			file: file ? file.textContent.trim() : '',
		};
	})`)
}

func backupRowByID(rows []backupRowView, id string) (backupRowView, bool) {
	i := slices.IndexFunc(rows, func(r backupRowView) bool { return r.ID == id })
	if i < 0 {
		return backupRowView{}, false
	}
	return rows[i], true
}

// archiveOnServer is where a backup's archive is kept: the default backup
// folder under the data directory.
func archiveOnServer(srv *testServer, env, file string) string {
	if file == "" {
		return filepath.Join(srv.DataDir, "backups", env, "(unknown)")
	}
	return filepath.Join(srv.DataDir, "backups", filepath.FromSlash(file))
}

// downloadBackup clicks the Download link at css with Chromium saving
// downloads into a folder, waits for the download to complete and returns
// the file.
func downloadBackup(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	dir := t.TempDir()
	on := true
	if _, err := chromedp.CallBrowser(ctx, browser.SetDownloadBehavior, browser.SetDownloadBehaviorParams{
		Behavior: browser.SetDownloadBehaviorBehaviorAllowAndName, DownloadPath: dir, EventsEnabled: &on,
	}); err != nil {
		t.Fatalf("let Chromium download into %s: %v", dir, err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	begins := chromedp.BrowserEvents(wctx, browser.DownloadWillBegin)
	progress := chromedp.BrowserEvents(wctx, browser.DownloadProgress)
	href := attr(t, ctx, css, "href")
	do(t, ctx, "click Download", chromedp.Click(chromedp.CSS(css)))
	var begin browser.EventDownloadWillBegin
	for ev, err := range begins {
		if err != nil {
			t.Fatalf("the download of %s did not begin: %v", href, err)
		}
		begin = ev
		break
	}
	if !strings.HasSuffix(begin.URL, href) || !strings.HasSuffix(begin.SuggestedFilename, ".zip") {
		t.Errorf("the download is %s named %q, want %s, a .zip", begin.URL, begin.SuggestedFilename, href)
	}
	for ev, err := range progress {
		if err != nil {
			t.Fatalf("the download of %s did not complete: %v", href, err)
		}
		if ev.GUID != begin.GUID {
			continue
		}
		switch ev.State {
		case browser.DownloadProgressStateCompleted:
			path := ev.FilePath
			if path == "" {
				path = filepath.Join(dir, begin.GUID) // allowAndName names it by its guid
			}
			t.Logf("downloaded %s (%s, %.0f bytes)", begin.SuggestedFilename, href, ev.ReceivedBytes)
			return path
		case browser.DownloadProgressStateCanceled:
			t.Fatalf("the download of %s was canceled after %.0f bytes", href, ev.ReceivedBytes)
		}
	}
	t.Fatalf("the download of %s ended without completing", href)
	return ""
}

// zipEntries opens a zip archive and lists its entries.
func zipEntries(t *testing.T, path string) []string {
	t.Helper()
	z, err := zip.OpenReader(path)
	if err != nil {
		head, _ := os.ReadFile(path)
		t.Fatalf("the download is not a zip (%v); it starts %q", err, string(head[:min(len(head), 120)]))
	}
	defer z.Close()
	var out []string
	for _, f := range z.File {
		out = append(out, f.Name)
	}
	return out
}

// envDB reaches an environment's database with the credentials of its
// odoo.conf, as Odoo does.
type envDB struct{ conf map[string]string }

func (d envDB) connect(t *testing.T) (*pgx.Conn, context.Context, context.CancelFunc) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	cfg, err := pgx.ParseConfig("")
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	port, err := strconv.Atoi(d.conf["db_port"])
	if err != nil {
		cancel()
		t.Fatalf("odoo.conf db_port %q: %v", d.conf["db_port"], err)
	}
	cfg.Host, cfg.Port, cfg.User, cfg.Password, cfg.Database = d.conf["db_host"], uint16(port), d.conf["db_user"], d.conf["db_password"], d.conf["db_name"]
	cfg.Fallbacks, cfg.TLSConfig = nil, nil
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		cancel()
		t.Fatalf("connect to %s on %s:%d as %s: %v", cfg.Database, cfg.Host, cfg.Port, cfg.User, err)
	}
	return conn, ctx, cancel
}

func (d envDB) exec(t *testing.T, stmts ...string) {
	t.Helper()
	conn, ctx, cancel := d.connect(t)
	defer cancel()
	defer conn.Close(context.Background())
	for _, s := range stmts {
		if _, err := conn.Exec(ctx, s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

// notes lists the probe table's rows, sorted.
func (d envDB) notes(t *testing.T, table string) []string {
	t.Helper()
	conn, ctx, cancel := d.connect(t)
	defer cancel()
	defer conn.Close(context.Background())
	rows, _ := conn.Query(ctx, "SELECT note FROM "+table+" ORDER BY note")
	out, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatalf("read %s: %v", table, err)
	}
	return out
}
