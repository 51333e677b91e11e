package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"pgdeck/internal/testkit"
)

// Helpers for the browser tests: the real server in-process, a headless
// Debian Chromium driven through chromedp, screenshots and the steps that
// many flows share (set up the owner, log in, log out).

// chromiumPath is Debian's Chromium; the browser tests need it and fail
// (never skip) when it is missing.
const chromiumPath = "/usr/bin/chromium"

// screenshotDir is where the browser tests write their PNGs (gitignored).
var screenshotDir = filepath.Join("testdata", "out", "screenshots")

// testServer is pgdeck serving in this process on a free 127.0.0.1 port,
// with its own data directory and embedded control-plane PostgreSQL.
type testServer struct {
	URL     string // http://127.0.0.1:port, no trailing slash
	DataDir string
	logs    *lockedBuffer
}

// setupCode reads the one-time setup code from the server's log, as a
// person installing pgdeck does.
func (s *testServer) setupCode(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`setup_code=(\S+)`).FindStringSubmatch(s.logs.String())
	if m == nil {
		t.Fatalf("the server log has no setup_code:\n%s", s.logs.String())
	}
	return m[1]
}

// at returns the absolute URL of path on the server.
func (s *testServer) at(path string) string { return s.URL + path }

// startServer runs serve in a goroutine with a fresh short data directory
// (the control-plane socket path must stay under 107 bytes) and waits until
// /healthz answers 200. extraArgs are more serve flags, e.g.
// "--monitor-interval", "500ms". On cleanup it cancels serve's context and
// waits for serve to return, which stops the embedded PostgreSQL.
func startServer(t *testing.T, extraArgs ...string) *testServer {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgd-")
	if err != nil {
		t.Fatalf("data dir: %v", err)
	}
	addr := testkit.FreeAddr(t)
	args := append([]string{"--addr", addr, "--data-dir", dir}, extraArgs...)

	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	logs := &lockedBuffer{}
	var serveErr error
	go func() {
		defer close(done)
		serveErr = serve(ctx, args, testGetenv, io.MultiWriter(os.Stderr, logs))
	}()
	t.Cleanup(func() {
		cancel()
		select {
		case <-done:
			if serveErr != nil {
				t.Errorf("serve returned: %v", serveErr)
			}
			// Environment databases outlive pgdeck by design; the test
			// started them, so it stops them before deleting their files.
			testkit.StopLeftovers(t, dir)
			os.RemoveAll(dir)
		case <-time.After(2 * time.Minute):
			// Keep the data dir: a PostgreSQL may still run from it.
			t.Errorf("serve did not return within 2 min of cancel; data dir %s kept", dir)
		}
	})

	srv := &testServer{URL: "http://" + addr, DataDir: dir, logs: logs}
	client := &http.Client{Timeout: 2 * time.Second}
	deadline := time.Now().Add(2 * time.Minute) // the first initdb can be slow
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		resp, err := client.Get(srv.at("/healthz"))
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return srv
			}
		}
		select {
		case <-done:
			t.Fatalf("serve returned before /healthz answered: %v", serveErr)
		case <-tick.C:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 within 2 min (last error: %v)", srv.URL, err)
		}
	}
}

// testGetenv keeps the developer's PGDECK_* settings out of the test server,
// except where to find PostgreSQL and how much to log (warn by default, so
// that request logs do not drown the test output).
func testGetenv(key string) string {
	switch key {
	case "PGDECK_PG_BIN_DIR":
		return os.Getenv(key)
	case "PGDECK_LOG_LEVEL":
		if v := os.Getenv(key); v != "" {
			return v
		}
		return "warn"
	}
	return ""
}

// newBrowser starts a headless Chromium with a fresh profile and a
// 1280×800 viewport and returns its tab's context. Everything done in the
// tab, browser start included, must finish within timeout. Uncaught
// JavaScript exceptions in the page fail the test.
func newBrowser(t *testing.T, timeout time.Duration) context.Context {
	t.Helper()
	if _, err := os.Stat(chromiumPath); err != nil {
		t.Fatalf("Chromium is missing (%v): install it with: apt-get install -y chromium", err)
	}
	profile, err := os.MkdirTemp("", "pgd-chromium-")
	if err != nil {
		t.Fatalf("browser profile dir: %v", err)
	}
	var out lockedBuffer
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromiumPath),
		chromedp.UserDataDir(profile),
		chromedp.NoSandbox, // we run as root
		chromedp.Headless,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-quic", true),
		chromedp.WindowSize(1280, 800),
		chromedp.CombinedOutput(&out),
	)

	tctx, cancelTimeout := context.WithTimeout(context.Background(), timeout)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(tctx, opts...)
	ctx, cancelTab := chromedp.NewContext(allocCtx)
	t.Cleanup(func() {
		cancelTab()
		cancelAlloc() // also waits for the browser process to exit
		cancelTimeout()
		os.RemoveAll(profile)
		if t.Failed() {
			t.Logf("chromium output (tail, D-Bus noise left out):\n%s", tail(withoutDBus(out.String()), 40))
		}
	})

	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1280, 800)); err != nil {
		t.Fatalf("start %s: %v\nchromium output:\n%s", chromiumPath, err, tail(withoutDBus(out.String()), 40))
	}
	watchPageExceptions(t, ctx)
	return ctx
}

// watchPageExceptions records the page's uncaught exceptions and console
// errors; exceptions fail the test at cleanup, console errors are logged.
func watchPageExceptions(t *testing.T, ctx context.Context) {
	t.Helper()
	var (
		mu         sync.Mutex
		exceptions []string
		errs       []string
	)
	messages := chromedp.Console(ctx)
	go func() {
		for m, err := range messages {
			if err != nil {
				return
			}
			mu.Lock()
			switch {
			case m.IsException():
				exceptions = append(exceptions, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
			case m.Type == chromedp.ConsoleError && !strings.Contains(m.String(), "Failed to load resource"):
				// Failed loads are the 401/404/422 answers the flows expect.
				errs = append(errs, fmt.Sprintf("%s:%d %s", m.URL, m.Line+1, m))
			}
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		mu.Lock()
		defer mu.Unlock()
		for _, e := range errs {
			t.Logf("browser console error: %s", e)
		}
		for _, e := range exceptions {
			t.Errorf("uncaught exception in the page: %s", e)
		}
	})
}

// do runs browser actions as one named step and fails the test with the
// step's name and the page's address when one of them fails.
func do(t *testing.T, ctx context.Context, step string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v (page: %s)", step, err, location(ctx))
	}
}

// visibleText waits until the element is visible and returns its text as a
// person reads it, trimmed.
func visibleText(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	do(t, ctx, "wait for "+css, chromedp.WaitVisible(chromedp.CSS(css)))
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(css), chromedp.NodeVisible))
	if err != nil {
		t.Fatalf("read the text of %s: %v (page: %s)", css, err, location(ctx))
	}
	return strings.TrimSpace(s)
}

// fieldValue returns the current value of an input or select.
func fieldValue(t *testing.T, ctx context.Context, css string) string {
	t.Helper()
	s, err := chromedp.Run(ctx, chromedp.Value(chromedp.CSS(css)))
	if err != nil {
		t.Fatalf("read the value of %s: %v (page: %s)", css, err, location(ctx))
	}
	return s
}

// attr returns an attribute of the element.
func attr(t *testing.T, ctx context.Context, css, name string) string {
	t.Helper()
	res, err := chromedp.Run(ctx, chromedp.AttributeValue(chromedp.CSS(css), name))
	if err != nil {
		t.Fatalf("read %s of %s: %v (page: %s)", name, css, err, location(ctx))
	}
	return res.Value
}

// retype replaces what a text field holds as a person does: go to the end,
// erase, type.
func retype(t *testing.T, ctx context.Context, css, text string) {
	t.Helper()
	erase := strings.Repeat(kb.Backspace, utf8.RuneCountInString(fieldValue(t, ctx, css)))
	do(t, ctx, "retype "+css, chromedp.SendKeys(chromedp.CSS(css), kb.End+erase+text))
	if got := fieldValue(t, ctx, css); got != text {
		t.Fatalf("%s holds %q after retyping, want %q", css, got, text)
	}
}

// wantPath fails the test unless the page's path is path.
func wantPath(t *testing.T, ctx context.Context, path string) {
	t.Helper()
	loc := location(ctx)
	if got := strings.TrimRight(pathOf(loc), "/"); got != strings.TrimRight(path, "/") {
		t.Fatalf("page is %s, want path %s", loc, path)
	}
}

// location is the page's address, for messages.
func location(ctx context.Context) string {
	loc, err := chromedp.Run(ctx, chromedp.Location())
	if err != nil {
		return "unknown: " + err.Error()
	}
	return loc
}

// pathOf strips scheme, host, query and fragment from a URL.
func pathOf(u string) string {
	if i := strings.Index(u, "://"); i >= 0 {
		u = u[i+3:]
		if j := strings.IndexByte(u, '/'); j >= 0 {
			u = u[j:]
		} else {
			u = "/"
		}
	}
	if i := strings.IndexAny(u, "?#"); i >= 0 {
		u = u[:i]
	}
	return u
}

// screenshot saves a full-page PNG as testdata/out/screenshots/<name>.png.
func screenshot(t *testing.T, ctx context.Context, name string) string {
	t.Helper()
	buf, err := chromedp.Run(ctx, chromedp.FullScreenshot(100)) // 100: PNG
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
	return path
}

// setColorScheme makes the page see prefers-color-scheme: scheme ("light"
// or "dark"); "" goes back to the browser's own.
func setColorScheme(t *testing.T, ctx context.Context, scheme string) {
	t.Helper()
	params := emulation.SetEmulatedMediaParams{}
	if scheme != "" {
		params.Features = []*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: scheme}}
	}
	if _, err := chromedp.Call(ctx, emulation.SetEmulatedMedia, params); err != nil {
		t.Fatalf("emulate prefers-color-scheme %q: %v", scheme, err)
	}
	if scheme != "" {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`matchMedia("(prefers-color-scheme: `+scheme+`)").matches`))
		if err != nil || !ok {
			t.Fatalf("prefers-color-scheme %s is not in effect (err %v)", scheme, err)
		}
	}
}

// createOwnerInBrowser fills the first-start form that a fresh server shows
// at / and waits for the Environments page.
func createOwnerInBrowser(t *testing.T, ctx context.Context, srv *testServer, email, password string) {
	t.Helper()
	do(t, ctx, "open the setup form",
		chromedp.Navigate(srv.at("/")),
		chromedp.WaitVisible(chromedp.ID("setup-form")),
	)
	do(t, ctx, "fill the setup form",
		chromedp.SendKeys(chromedp.ID("f-setup_code"), srv.setupCode(t)),
		chromedp.SendKeys(chromedp.ID("f-email"), email),
		chromedp.SendKeys(chromedp.ID("f-password"), password),
		chromedp.SendKeys(chromedp.ID("f-password_confirm"), password),
		chromedp.Click(chromedp.ID("setup-submit")),
		chromedp.WaitVisible(chromedp.ID("new-environment")),
	)
}

// logOut clicks "Log out" in the top bar and waits for the login form.
func logOut(t *testing.T, ctx context.Context) {
	t.Helper()
	do(t, ctx, "log out",
		chromedp.Click(chromedp.ID("logout")),
		chromedp.WaitVisible(chromedp.ID("login-form")),
	)
}

// lockedBuffer is a bytes.Buffer safe for the browser's output goroutine.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// withoutDBus drops the D-Bus complaints a headless Chromium prints in a
// container without a system bus.
func withoutDBus(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		if !strings.Contains(l, "dbus/") {
			keep = append(keep, l)
		}
	}
	return strings.Join(keep, "\n")
}

// eventually waits (testkit.EventuallyContext) until check reports true,
// and fails the test with what and the page's last state (check's second
// result, and where the page is) when timeout passes first.
func eventually(t *testing.T, ctx context.Context, what string, timeout time.Duration, check func() (bool, string)) {
	t.Helper()
	testkit.EventuallyContext(ctx, t, what, timeout, func() (bool, string) {
		ok, state := check()
		if ok {
			return true, ""
		}
		return false, fmt.Sprintf("the page shows %s (page: %s)", state, location(ctx))
	})
}

// evaluate runs a JavaScript expression in the page and decodes its value.
func evaluate[T any](t *testing.T, ctx context.Context, what, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr))
	if err != nil {
		t.Fatalf("%s: %v (page: %s)", what, err, location(ctx))
	}
	return v
}

// markDocument leaves a mark on the page's window; stillSameDocument tells
// later whether the page is still that document (htmx swapped parts of it)
// or the browser loaded another one.
func markDocument(t *testing.T, ctx context.Context) string {
	t.Helper()
	mark := strconv.FormatInt(time.Now().UnixNano(), 36)
	evaluate[string](t, ctx, "mark the document", `window.__pgdeckMark = `+strconv.Quote(mark))
	return mark
}

// stillSameDocument fails the test when the page was loaded again since
// markDocument returned mark.
func stillSameDocument(t *testing.T, ctx context.Context, mark, since string) {
	t.Helper()
	got := evaluate[string](t, ctx, "read the document's mark", `String(window.__pgdeckMark)`)
	if got != mark {
		t.Fatalf("the page was loaded again since %s (mark %q, want %q): it should have updated itself in place", since, got, mark)
	}
}

// jobStripView is the job strip under the environment header as a person
// reads it.
type jobStripView struct {
	Present  bool   `json:"present"`
	Href     string `json:"href"`     // link to the job's log: /jobs/N
	Kind     string `json:"kind"`     // deploy, stop, start, … (lower case)
	State    string `json:"state"`    // data-state
	Label    string `json:"label"`    // the state badge's word
	Step     string `json:"step"`     // #job-step
	Progress string `json:"progress"` // #job-progress, e.g. "20%"
	// Actions are the header's buttons, read at the same moment.
	Actions []actionButton `json:"actions"`
}

func (j jobStripView) String() string {
	if !j.Present {
		return "no job strip"
	}
	return fmt.Sprintf("job strip %s %s [%s] %q %q %s", j.Href, j.Kind, j.State, j.Label, j.Step, j.Progress)
}

// readJobStrip reads the whole job strip at one moment.
func readJobStrip(t *testing.T, ctx context.Context) jobStripView {
	t.Helper()
	return evaluate[jobStripView](t, ctx, "read the job strip", `(() => {
		const actions = Array.from(document.querySelectorAll('#env-actions button')).map(b => ({id: b.id, label: b.innerText.trim(), disabled: b.disabled}));
		const s = document.querySelector('#job-strip');
		if (!s) return {present: false, actions};
		const text = (sel) => { const e = s.querySelector(sel); return e ? e.innerText.replace(/\s+/g, ' ').trim() : ''; };
		const link = s.querySelector('a[href^="/jobs/"]');
		const kind = s.querySelector('strong');
		return {
			present: true,
			href: link ? link.getAttribute('href') : '',
			kind: kind ? kind.textContent.trim().toLowerCase() : '',
			state: s.dataset.state || '',
			label: text('[data-testid=job-state]'),
			step: text('#job-step'),
			progress: text('#job-progress'),
			actions,
		};
	})()`)
}

// healthView is a health badge: its status, word and colour class.
type healthView struct {
	Status string `json:"status"`
	Text   string `json:"text"`
	Class  string `json:"class"`
}

func (h healthView) String() string {
	return fmt.Sprintf("badge %q (%s, %s)", h.Text, h.Status, h.Class)
}

// readHealth reads the health badge at css at one moment.
func readHealth(t *testing.T, ctx context.Context, css string) healthView {
	t.Helper()
	return evaluate[healthView](t, ctx, "read the health badge "+css, fmt.Sprintf(`(() => {
		const e = document.querySelector(%q);
		return e ? {status: e.dataset.status || '', text: e.innerText.trim(), class: e.className} : {};
	})()`, css))
}

// actionButton is one button of the environment header's actions.
type actionButton struct {
	ID       string `json:"id"`
	Label    string `json:"label"`
	Disabled bool   `json:"disabled"`
}

// readActions reads the environment header's action buttons in order.
func readActions(t *testing.T, ctx context.Context) []actionButton {
	t.Helper()
	return evaluate[[]actionButton](t, ctx, "read the action buttons", `Array.from(document.querySelectorAll('#env-actions button')).map(b => ({id: b.id, label: b.innerText.trim(), disabled: b.disabled}))`)
}
