package main

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/docker/docker/api/types/container"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
)

// TestBrowserServers walks the Servers page as a person does in Chromium,
// on pgdeck with PGDECK_RUNTIME=docker over a private engine (the built-in
// server): the built-in server shows Online; registering a bad endpoint
// shows the reason beside the field and keeps what was typed; a second
// private engine is registered and shows Online, is removed through its
// confirmation (which a refresh of the table does not close) and
// registered again; then an environment is created on it through the New
// environment form, runs, and names its server in its header and in the
// Environments list, whose server's Remove now explains why it cannot.
// Screenshots: testdata/out/screenshots/6x-*.png, light and dark.
func TestBrowserServers(t *testing.T) {
	start := time.Now()
	engines := startEngines(t, 2)
	builtin, second := engines[0], engines[1]
	t.Logf("two engines with the test image after %s", time.Since(start).Round(time.Second))

	ports := testkit.FreePortWindow(t, 10)
	srv := startServer(t, "--runtime", "docker", "--docker-host", builtin.Host, "--docker-image", dockertest.ImageTag,
		"--monitor-interval", "1s", "--port-range", fmt.Sprintf("%d-%d", ports, ports+9))
	ctx := newBrowser(t, 4*time.Minute)
	const (
		name     = "shop-d2"
		server   = "dock-2"
		jobWait  = 90 * time.Second // a deploy runs initdb in a container
		healthUp = 30 * time.Second // monitor: 1 s ticks, 2 agreeing checks, 5 s badge refresh
		// The table refreshes every 5 s.
		tableFor = 15 * time.Second
	)
	row := func(server string) string { return `[data-testid=server-row][data-name="` + server + `"]` }
	createOwnerInBrowser(t, ctx, srv, "owner@example.com", "correct horse battery")

	// The built-in server: this host's engine, Online once the monitor
	// has checked it.
	do(t, ctx, "open Servers",
		chromedp.Click(chromedp.CSS("[data-testid=nav-servers]")),
		chromedp.WaitVisible(chromedp.ID("servers-table")),
	)
	wantPath(t, ctx, "/servers")
	mark := markDocument(t, ctx)
	eventually(t, ctx, "the built-in server shows Online", tableFor, func() (bool, string) {
		s := textOf(t, ctx, row("local")+" [data-testid=server-status]")
		return s == "Online", "status " + s
	})
	stillSameDocument(t, ctx, mark, "the table refreshed")
	if got := textOf(t, ctx, row("local")+" [data-testid=server-endpoint]"); got != builtin.Host {
		t.Errorf("the built-in server's endpoint = %q, want %s", got, builtin.Host)
	}
	if got := textOf(t, ctx, row("local")+" [data-testid=server-runtime]"); !strings.HasPrefix(got, "Docker") {
		t.Errorf("the built-in server's runtime = %q, want Docker", got)
	}
	if n := evaluate[int](t, ctx, "count Remove buttons", `document.querySelectorAll('`+row("local")+` button').length`); n != 0 {
		t.Errorf("the built-in server has %d buttons, want no Remove", n)
	}

	// A bad endpoint: the reason beside the field, what was typed kept.
	do(t, ctx, "register an engine that is not there",
		chromedp.SendKeys(chromedp.ID("f-name"), "dock-bad"),
		chromedp.SendKeys(chromedp.ID("f-docker_host"), "unix:///nonexistent.sock"),
		chromedp.SendKeys(chromedp.ID("f-memory"), "8"),
		chromedp.Click(chromedp.ID("server-submit")),
		chromedp.WaitVisible(chromedp.CSS("[data-testid=error-docker_host]")),
	)
	if got := visibleText(t, ctx, "[data-testid=error-docker_host]"); !strings.Contains(got, "unix:///nonexistent.sock does not answer") {
		t.Errorf("message beside the endpoint = %q", got)
	}
	for field, want := range map[string]string{"#f-name": "dock-bad", "#f-docker_host": "unix:///nonexistent.sock", "#f-memory": "8"} {
		if got := fieldValue(t, ctx, field); got != want {
			t.Errorf("%s holds %q after the refusal, want %q", field, got, want)
		}
	}
	if n := evaluate[int](t, ctx, "count rows", `document.querySelectorAll('[data-testid=server-row]').length`); n != 1 {
		t.Errorf("%d servers listed after a refused registration, want 1", n)
	}
	scrollTo(t, ctx, "#register-server")
	viewportScreenshot(t, ctx, "60-server-register-refused")
	setColorScheme(t, ctx, "dark")
	viewportScreenshot(t, ctx, "60-server-register-refused-dark")
	setColorScheme(t, ctx, "")

	// The second engine: Online as soon as it is registered.
	register := func(step string) {
		t.Helper()
		retype(t, ctx, "#f-name", server)
		retype(t, ctx, "#f-docker_host", second.Host)
		retype(t, ctx, "#f-memory", "")
		do(t, ctx, step,
			chromedp.Click(chromedp.ID("server-submit")),
			chromedp.WaitVisible(chromedp.CSS(row(server))),
		)
		if got := textOf(t, ctx, row(server)+" [data-testid=server-status]"); got != "Online" {
			t.Errorf("%s shows %q after registering, want Online", server, got)
		}
		if got := textOf(t, ctx, "[data-testid=flash]"); !strings.Contains(got, "Server "+server+" registered: Online") {
			t.Errorf("flash = %q", got)
		}
	}
	register("register the second engine")
	if got := textOf(t, ctx, row(server)+" [data-testid=server-capacity]"); !strings.Contains(got, "GB memory") || !strings.Contains(got, "CPU") {
		t.Errorf("%s's capacity = %q, want what its engine has", server, got)
	}
	screenshot(t, ctx, "61-servers")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "61-servers-dark")
	setColorScheme(t, ctx, "")

	// Remove asks first, and the table refreshing under the open dialog
	// does not close it.
	dialog := "#remove-server-dialog-" + server
	do(t, ctx, "click Remove…",
		chromedp.Click(chromedp.ID("server-remove-"+server)),
		chromedp.WaitVisible(chromedp.CSS(dialog)),
	)
	evaluate[bool](t, ctx, "mark the table", `document.querySelector('#servers-live').dataset.old = '1'; true`)
	eventually(t, ctx, "the table refreshes under the dialog", tableFor, func() (bool, string) {
		fresh := evaluate[bool](t, ctx, "is the table new", `!document.querySelector('#servers-live').dataset.old`)
		return fresh, "the table as it was"
	})
	if open := evaluate[bool](t, ctx, "is the dialog open", `document.querySelector('`+dialog+`').matches(':modal')`); !open {
		t.Fatalf("the table's refresh closed the Remove dialog")
	}
	if got := visibleText(t, ctx, dialog); !strings.Contains(got, "Remove server "+server+"?") || !strings.Contains(got, second.Host) {
		t.Errorf("the dialog says %q", got)
	}
	viewportScreenshot(t, ctx, "62-server-remove-dialog")
	setColorScheme(t, ctx, "dark")
	viewportScreenshot(t, ctx, "62-server-remove-dialog-dark")
	setColorScheme(t, ctx, "")
	do(t, ctx, "confirm the removal", chromedp.Click(chromedp.ID("server-remove-confirm-"+server)))
	eventually(t, ctx, "the page says the server was removed", 10*time.Second, func() (bool, string) {
		got := textOf(t, ctx, "[data-testid=flash]")
		return strings.Contains(got, "Server "+server+" removed"), "flash " + got
	})
	if n := evaluate[int](t, ctx, "count its rows", `document.querySelectorAll('`+row(server)+`').length`); n != 0 {
		t.Fatalf("%s is still listed after the removal", server)
	}
	register("register the second engine again")

	// An environment on the second engine, through the New environment form.
	do(t, ctx, "open the new environment form",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.Click(chromedp.ID("new-environment")),
		chromedp.WaitVisible(chromedp.ID("environment-form")),
	)
	opts := evaluate[[]string](t, ctx, "read the server choices", `Array.from(document.querySelectorAll('#f-server option')).map(o => o.value + '=' + o.textContent.trim())`)
	if len(opts) != 3 || !strings.HasPrefix(opts[0], "=Automatic") || !strings.HasPrefix(opts[1], "local=local — Online") ||
		!strings.HasPrefix(opts[2], server+"="+server+" — Online") || !strings.HasSuffix(opts[2], "free") {
		t.Errorf("server choices = %q, want Automatic, local and %s with status and free capacity", opts, server)
	}
	do(t, ctx, "create "+name+" on "+server,
		chromedp.WaitReady(chromedp.ID("f-name")),
		chromedp.SendKeys(chromedp.ID("f-name"), name),
		chromedp.SetValue(chromedp.ID("f-plan"), "starter"),
		chromedp.SetValue(chromedp.ID("f-server"), server),
	)
	screenshot(t, ctx, "63-new-environment-server")
	do(t, ctx, "submit",
		chromedp.Click(chromedp.ID("environment-submit")),
		chromedp.WaitVisible(chromedp.ID("environment-name")),
	)
	wantPath(t, ctx, "/environments/"+name)
	if got := visibleText(t, ctx, "#environment-server"); got != server {
		t.Errorf("the header names server %q, want %s", got, server)
	}
	eventually(t, ctx, "the environment shows Running", jobWait+healthUp, func() (bool, string) {
		h := readHealth(t, ctx, ".env-head [data-testid=health-badge]")
		return h.Status == "running" && h.Text == "Running", h.String()
	})
	t.Logf("%s running on %s after %s", name, server, time.Since(start).Round(time.Second))
	eventually(t, ctx, "the connection details appear", 10*time.Second, func() (bool, string) {
		has := evaluate[bool](t, ctx, "look for the connection details", `!!document.querySelector('#connection-card')`)
		return has, "no connection details"
	})
	if n := containersOn(t, second, name); n == 0 {
		t.Errorf("the engine of %s runs no container of %s", server, name)
	}
	if n := containersOn(t, builtin, name); n != 0 {
		t.Errorf("the built-in engine runs %d containers of %s, want none", n, name)
	}
	screenshot(t, ctx, "64-environment-on-server")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "64-environment-on-server-dark")
	setColorScheme(t, ctx, "")

	do(t, ctx, "open Environments",
		chromedp.Click(chromedp.CSS("[data-testid=nav-environments]")),
		chromedp.WaitVisible(chromedp.CSS(`[data-testid=environment-row][data-name="`+name+`"]`)),
	)
	if got := textOf(t, ctx, `[data-testid=environment-row][data-name="`+name+`"] [data-testid=server-cell]`); got != server {
		t.Errorf("the Environments list says server %q, want %s", got, server)
	}
	screenshot(t, ctx, "65-environments-servers")

	// The server now holds the environment: its Remove explains instead.
	do(t, ctx, "open Servers again",
		chromedp.Click(chromedp.CSS("[data-testid=nav-servers]")),
		chromedp.WaitVisible(chromedp.CSS(row(server))),
	)
	if got := textOf(t, ctx, row(server)+" [data-testid=server-environments]"); !strings.HasPrefix(got, "1") || !strings.Contains(got, name) {
		t.Errorf("%s's environments = %q, want 1 (%s)", server, got, name)
	}
	do(t, ctx, "click Remove…",
		chromedp.Click(chromedp.ID("server-remove-"+server)),
		chromedp.WaitVisible(chromedp.CSS(dialog+" [data-testid=server-remove-blocked]")),
	)
	if got := visibleText(t, ctx, dialog+" [data-testid=server-remove-blocked]"); !strings.Contains(got, name) {
		t.Errorf("the dialog says %q, want it to name %s", got, name)
	}
	viewportScreenshot(t, ctx, "66-server-remove-blocked")
	do(t, ctx, "close the dialog",
		chromedp.Click(chromedp.ID("server-remove-close-"+server)),
		chromedp.WaitNotVisible(chromedp.CSS(dialog)),
	)

	// The second engine stops: its server turns Offline with the reason,
	// and its environment shows Error saying so. Started again, both
	// come back by themselves.
	if err := second.Stop(); err != nil {
		t.Fatal(err)
	}
	mark = markDocument(t, ctx)
	eventually(t, ctx, server+" shows Offline", tableFor, func() (bool, string) {
		s := textOf(t, ctx, row(server)+" [data-testid=server-status]")
		return s == "Offline" && textOf(t, ctx, row(server)+" [data-testid=server-reason]") != "", "status " + s
	})
	stillSameDocument(t, ctx, mark, "the engine stopped")
	t.Logf("%s offline: %s", server, textOf(t, ctx, row(server)+" [data-testid=server-reason]"))
	screenshot(t, ctx, "67-server-offline")
	setColorScheme(t, ctx, "dark")
	screenshot(t, ctx, "67-server-offline-dark")
	setColorScheme(t, ctx, "")
	openEnvironment(t, ctx, name)
	eventually(t, ctx, name+" shows Error: its server is offline", healthUp, func() (bool, string) {
		h := readHealth(t, ctx, ".env-head [data-testid=health-badge]")
		headline := textOf(t, ctx, "[data-testid=health-headline]")
		return h.Status == "error" && headline == "Server "+server+", where this environment lives, is offline", h.String() + ", headline " + headline
	})
	screenshot(t, ctx, "68-environment-server-offline")

	if err := second.Restart(); err != nil {
		t.Fatal(err)
	}
	eventually(t, ctx, name+" runs again", jobWait, func() (bool, string) {
		h := readHealth(t, ctx, ".env-head [data-testid=health-badge]")
		return h.Status == "running", h.String()
	})
	t.Logf("done after %s", time.Since(start).Round(time.Second))
}

// startEngines starts n private Docker engines and loads the test image
// into each; they stop when the test ends (after pgdeck, whose cleanup was
// registered later). The engines start one after the other (two dockerds
// starting at once race to create the same iptables chains); the images
// load at once.
func startEngines(t *testing.T, n int) []*dockertest.Daemon {
	t.Helper()
	out := make([]*dockertest.Daemon, n)
	for i := range out {
		out[i] = dockertest.Engine(t)
	}
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i, d := range out {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = dockertest.LoadImage(context.Background(), d.Host)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

// containersOn counts the containers of env on an engine.
func containersOn(t *testing.T, d *dockertest.Daemon, env string) int {
	t.Helper()
	c, err := d.Client()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	cs, err := c.ContainerList(context.Background(), container.ListOptions{All: true})
	if err != nil {
		t.Fatalf("list containers on %s: %v", d.Host, err)
	}
	n := 0
	for _, ct := range cs {
		if ct.Labels["pgdeck.env"] == env {
			n++
		}
	}
	return n
}

// scrollTo brings an element into the window.
func scrollTo(t *testing.T, ctx context.Context, css string) {
	t.Helper()
	evaluate[bool](t, ctx, "scroll to "+css, `document.querySelector('`+css+`').scrollIntoView({block: 'start'}); true`)
}
