package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
	"pgdeck/web"
)

// cliPassword is the password the CLI tests give on stdin.
const cliPassword = "password123456"

// cliEnv is a getenv that sees only vars, where to find PostgreSQL, and a
// quiet log level: the developer's own PGDECK_* settings stay out.
func cliEnv(vars map[string]string) func(string) string {
	return func(k string) string {
		if v, ok := vars[k]; ok {
			return v
		}
		switch k {
		case "PGDECK_PG_BIN_DIR":
			return os.Getenv(k)
		case "PGDECK_LOG_LEVEL":
			return "warn"
		}
		return ""
	}
}

// cliDataDir returns a fresh short data directory (the control-plane socket
// path must stay under 107 bytes). When the test ends, a control-plane
// cluster still running from it is stopped and the directory removed.
func cliDataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgd-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if pidFileExists(dir) {
			bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
			if err == nil {
				var runAs pgexec.RunAs
				if runAs, err = pgexec.DefaultRunAs(); err == nil {
					var emb *pgexec.ControlPlane
					if emb, err = pgexec.NewControlPlane(dir, bin, runAs, slog.New(slog.DiscardHandler)); err == nil {
						ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
						err = emb.Stop(ctx)
						cancel()
					}
				}
			}
			if err != nil {
				t.Errorf("stop the control-plane cluster left in %s: %v", dir, err)
				return // keep the files of a server that may still run
			}
		}
		// A safety net: these tests deploy no environment, but should one
		// run, it is stopped before its files go.
		if pids := testkit.WorkingIn(dir); len(pids) > 0 {
			t.Errorf("processes %v were left running in %s; stopping them", pids, dir)
			if _, err := testkit.StopPostgres(dir, 30*time.Second); err != nil {
				t.Errorf("stop them: %v", err)
			}
		}
		os.RemoveAll(dir)
	})
	return dir
}

// pidFilePath is the control-plane cluster's postmaster.pid under dir.
func pidFilePath(dir string) string { return filepath.Join(dir, "control", "pgdata", "postmaster.pid") }

func pidFileExists(dir string) bool {
	_, err := os.Stat(pidFilePath(dir))
	return err == nil
}

// postmasterPID reads the pid on the first line of postmaster.pid.
func postmasterPID(t *testing.T, dir string) int {
	t.Helper()
	b, err := os.ReadFile(pidFilePath(dir))
	if err != nil {
		t.Fatalf("the control-plane cluster is not running: %v", err)
	}
	first, _, _ := strings.Cut(string(b), "\n")
	pid, err := strconv.Atoi(strings.TrimSpace(first))
	if err != nil || pid <= 1 {
		t.Fatalf("postmaster.pid first line %q is not a pid", first)
	}
	return pid
}

// wantClusterStopped fails the test unless no control-plane PostgreSQL runs from dir.
func wantClusterStopped(t *testing.T, dir string) {
	t.Helper()
	if pidFileExists(dir) {
		t.Errorf("%s still exists: the control-plane cluster was not stopped", pidFilePath(dir))
	}
	control := filepath.Join(dir, "control")
	if pids := testkit.WorkingIn(control); len(pids) > 0 {
		t.Errorf("processes %v still work in %s", pids, control)
	}
}

// runCLI runs a pgdeck command and returns what it printed.
func runCLI(t *testing.T, args []string, env map[string]string, stdin string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	err := run(context.Background(), args, cliEnv(env), strings.NewReader(stdin), &out)
	return out.String(), err
}

// lastWord is the last word of the last line of s.
func lastWord(s string) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	f := strings.Fields(lines[len(lines)-1])
	if len(f) == 0 {
		return ""
	}
	return f[len(f)-1]
}

func TestVersionCommand(t *testing.T) {
	out, err := runCLI(t, []string{"version"}, nil, "")
	if err != nil {
		t.Fatal(err)
	}
	if out != "pgdeck "+version+"\n" {
		t.Errorf("version printed %q, want %q", out, "pgdeck "+version+"\n")
	}
}

func TestUnknownCommand(t *testing.T) {
	for _, args := range [][]string{{"frobnicate"}, {"user", "delete"}, {"token"}} {
		_, err := runCLI(t, args, nil, "")
		if err == nil || !strings.Contains(err.Error(), "unknown command") || !strings.Contains(err.Error(), "user add") {
			t.Errorf("run(%v) err = %v, want unknown command listing the commands", args, err)
		}
	}
}

// TestServeRefusesABadOdooUser: pgdeck does not start when PGDECK_ODOO_USER
// names a user that does not exist, or root, and says why.
func TestServeRefusesABadOdooUser(t *testing.T) {
	for _, tc := range []struct{ user, want string }{
		{"pgdeck-no-such-user", `PGDECK_ODOO_USER: no OS user "pgdeck-no-such-user" on this machine`},
		{"root", "PGDECK_ODOO_USER: \"root\" is root; Odoo refuses to run as root"},
	} {
		dir := t.TempDir()
		_, err := runCLI(t, []string{"--odoo-user", tc.user}, map[string]string{"PGDECK_DATA_DIR": dir, "PGDECK_ADDR": "127.0.0.1:0"}, "")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("serve with --odoo-user %s: %v, want an error saying %q", tc.user, err, tc.want)
		}
		if entries, _ := os.ReadDir(dir); len(entries) != 0 {
			t.Errorf("serve with --odoo-user %s made %d entries in the data folder before refusing", tc.user, len(entries))
		}
	}
}

func TestUserAddRefusesBadInput(t *testing.T) {
	dir := cliDataDir(t)
	cases := []struct {
		name  string
		args  []string
		stdin string
		want  string
	}{
		{"bad role", []string{"--email", "a@b.c", "--role", "superuser"}, cliPassword + "\n", `--role must be owner, admin or viewer, got "superuser"`},
		{"short password", []string{"--email", "a@b.c", "--role", "admin"}, "short\n", "password from stdin: Use at least 12 characters."},
		{"empty stdin", []string{"--email", "a@b.c", "--role", "admin"}, "", "password from stdin: Enter a password."},
		{"no email", []string{"--role", "admin"}, cliPassword + "\n", "--email must be an email address"},
		{"not an email", []string{"--email", "alice", "--role", "admin"}, cliPassword + "\n", "--email must be an email address"},
		// The same validation as /setup: an @ is not enough.
		{"email with a name", []string{"--email", "Ada <ada@example.com>", "--role", "admin"}, cliPassword + "\n", "--email must be an email address"},
		{"two @", []string{"--email", "a@b@c", "--role", "admin"}, cliPassword + "\n", "--email must be an email address"},
		{"control character", []string{"--email", "a\u202e@b.c", "--role", "admin"}, cliPassword + "\n", "--email must be an email address"},
		{"bad configuration", []string{"--email", "a@b.c", "--workers", "0"}, cliPassword + "\n", "PGDECK_WORKERS"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"user", "add", "--data-dir", dir}, tc.args...)
			out, err := runCLI(t, args, nil, tc.stdin)
			if err == nil {
				t.Fatalf("user add %v succeeded: %q", tc.args, out)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error %q does not contain %q", err, tc.want)
			}
			if out != "" {
				t.Errorf("a failed command printed %q", out)
			}
		})
	}
	// Refused before anything was started or written.
	if _, err := os.Stat(filepath.Join(dir, "control")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("refused commands created the control-plane cluster (%v)", err)
	}
}

func TestUserAddAndTokenAdd(t *testing.T) {
	t.Parallel()
	dir := cliDataDir(t)

	out, err := runCLI(t, []string{"user", "add", "--email", "a@b.c", "--role", "admin", "--data-dir", dir}, nil, cliPassword+"\n")
	if err != nil {
		t.Fatalf("user add: %v", err)
	}
	if !strings.Contains(out, "admin") || !strings.Contains(out, "a@b.c") {
		t.Errorf("user add printed %q, want the role and the email", out)
	}
	// A CLI command stops the cluster it started.
	wantClusterStopped(t, dir)

	t.Run("duplicate email", func(t *testing.T) {
		_, err := runCLI(t, []string{"user", "add", "--email", "A@B.C", "--role", "viewer", "--data-dir", dir}, nil, cliPassword+"\n")
		if err == nil || !strings.Contains(err.Error(), "already exists") {
			t.Errorf("err = %v, want an account already exists", err)
		}
	})

	t.Run("token for an unknown account", func(t *testing.T) {
		_, err := runCLI(t, []string{"token", "add", "--email", "nobody@b.c", "--data-dir", dir}, nil, "")
		if err == nil || !strings.Contains(err.Error(), `no account with email "nobody@b.c"`) {
			t.Errorf("err = %v, want no account", err)
		}
	})

	// The data directory comes from PGDECK_DATA_DIR just as well.
	out, err = runCLI(t, []string{"token", "add", "--email", "a@b.c", "--name", "deploy"}, map[string]string{"PGDECK_DATA_DIR": dir}, "")
	if err != nil {
		t.Fatalf("token add: %v", err)
	}
	tok := lastWord(out)
	if !strings.HasPrefix(tok, "pgd_") {
		t.Fatalf("token add printed %q; its last word %q is not a token", out, tok)
	}
	wantClusterStopped(t, dir)

	// What the commands wrote is in the store.
	cfg, err := configFrom([]string{"--data-dir", dir}, map[string]string{"PGDECK_PG_BIN_DIR": os.Getenv("PGDECK_PG_BIN_DIR")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	st, closeStore, err := openStore(ctx, cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	u, err := st.UserByTokenHash(ctx, web.HashAPIToken(tok))
	if err != nil {
		t.Fatalf("the printed token is not stored: %v", err)
	}
	if u.Email != "a@b.c" || u.Role != store.RoleAdmin {
		t.Errorf("token acts as %s (%s), want a@b.c (admin)", u.Email, u.Role)
	}
	if ok, err := web.CheckPassword(u.PasswordHash, cliPassword); err != nil || !ok {
		t.Errorf("the password from stdin does not match the stored hash (%v)", err)
	}
	if n, _ := st.CountUsers(ctx); n != 1 {
		t.Errorf("%d accounts, want 1", n)
	}
	es, err := st.ListAudit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range es {
		if e.Actor == "cli" {
			actions[e.Action] = true
		}
	}
	if !actions["user.create"] || !actions["token.create"] {
		t.Errorf("audit by cli = %v, want user.create and token.create", actions)
	}
	closeStore()

	// The owner's account commands.
	out, err = runCLI(t, []string{"token", "add", "--email", "a@b.c", "--expires", "7d", "--data-dir", dir}, nil, "")
	if err != nil || !strings.Contains(out, "expires") {
		t.Fatalf("token add --expires: %q, %v", out, err)
	}
	for _, cmd := range []string{"disable", "enable", "logout"} {
		if _, err := runCLI(t, []string{"user", cmd, "--email", "a@b.c", "--data-dir", dir}, nil, ""); err != nil {
			t.Errorf("user %s: %v", cmd, err)
		}
	}
	if _, err := runCLI(t, []string{"user", "password", "--email", "a@b.c", "--data-dir", dir}, nil, "a brand new password\n"); err != nil {
		t.Errorf("user password: %v", err)
	}
	if _, err := runCLI(t, []string{"user", "disable", "--email", "a@b.c", "--data-dir", dir}, nil, ""); err != nil {
		t.Errorf("user disable: %v", err)
	}
	st, closeStore, err = openStore(ctx, cfg, slog.New(slog.DiscardHandler), true)
	if err != nil {
		t.Fatal(err)
	}
	defer closeStore()
	u, err = st.UserByEmail(ctx, "a@b.c")
	if err != nil {
		t.Fatal(err)
	}
	if !u.Disabled() || !u.SessionsValidAfter.After(u.CreatedAt) {
		t.Errorf("after user disable: %+v", u)
	}
	if ok, _ := web.CheckPassword(u.PasswordHash, "a brand new password"); !ok {
		t.Error("user password did not set the new password")
	}
	if _, err := st.UserByTokenHash(ctx, web.HashAPIToken(tok)); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a disabled account's token still works: %v", err)
	}
}

// servingPgdeck is serve running in a goroutine.
type servingPgdeck struct {
	url    string
	cancel context.CancelFunc
	done   chan error
}

// startServing runs serve on dir and a free port and waits for /healthz 200.
func startServing(t *testing.T, dir string) *servingPgdeck {
	t.Helper()
	addr := testkit.FreeAddr(t)

	ctx, cancel := context.WithCancel(context.Background())
	s := &servingPgdeck{url: "http://" + addr, cancel: cancel, done: make(chan error, 1)}
	env := map[string]string{"PGDECK_ADDR": addr, "PGDECK_DATA_DIR": dir}
	go func() { s.done <- run(ctx, nil, cliEnv(env), strings.NewReader(""), io.Discard) }()
	t.Cleanup(func() { s.stop(t) })

	client := &http.Client{Timeout: 5 * time.Second}
	deadline := time.Now().Add(2 * time.Minute) // initdb on a slow machine
	for {
		res, err := client.Get(s.url + "/healthz")
		if err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return s
			}
		}
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("serve returned before answering /healthz: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/healthz did not answer 200 (last error %v)", s.url, err)
		}
	}
}

// stop cancels serve's context and returns what serve returned (nil when
// already stopped).
func (s *servingPgdeck) stop(t *testing.T) error {
	t.Helper()
	if s.cancel == nil {
		return nil
	}
	s.cancel()
	s.cancel = nil
	select {
	case err := <-s.done:
		return err
	case <-time.After(3 * time.Minute):
		t.Fatal("serve did not return after its context was cancelled")
		return nil
	}
}

// browserClient keeps cookies and never follows redirects.
func browserClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{
		Jar:           jar,
		Timeout:       30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// fetch GETs a page and returns its status and parsed HTML.
func fetch(t *testing.T, c *http.Client, u string) (int, *goquery.Document) {
	t.Helper()
	res, err := c.Get(u)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	doc, err := goquery.NewDocumentFromReader(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, doc
}

// submit GETs formPage for its CSRF token, then posts form to action and
// returns the status and Location.
func submit(t *testing.T, c *http.Client, base, formPage, action string, form url.Values) (int, string) {
	t.Helper()
	_, doc := fetch(t, c, base+formPage)
	token, _ := doc.Find(`input[name="_csrf"]`).First().Attr("value")
	if token == "" {
		t.Fatalf("%s has no CSRF token", formPage)
	}
	form.Set("_csrf", token)
	res, err := c.PostForm(base+action, form)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode, res.Header.Get("Location")
}

// apiGet calls the API with a token and returns the status.
func apiGet(t *testing.T, u, token string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, u, nil)
	req.Header.Set("Authorization", "Bearer "+token)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	return res.StatusCode
}

func TestServeStopsCleanlyAndRestartKeepsState(t *testing.T) {
	t.Parallel()
	dir := cliDataDir(t)
	if _, err := runCLI(t, []string{"user", "add", "--email", "owner@b.c", "--role", "owner", "--data-dir", dir}, nil, cliPassword+"\n"); err != nil {
		t.Fatalf("user add: %v", err)
	}

	srv := startServing(t, dir)
	pid := postmasterPID(t, dir)

	// A CLI command next to the server leaves the server's cluster running.
	out, err := runCLI(t, []string{"token", "add", "--email", "owner@b.c", "--data-dir", dir}, nil, "")
	if err != nil {
		t.Fatalf("token add next to a server: %v", err)
	}
	tok := lastWord(out)
	if got := postmasterPID(t, dir); got != pid {
		t.Fatalf("the control-plane postmaster changed from %d to %d", pid, got)
	}
	if code := apiGet(t, srv.url+"/api/v1/environments", tok); code != http.StatusOK {
		t.Fatalf("API with the CLI token: status %d", code)
	}

	// Sign in as a browser does.
	browser := browserClient(t)
	code, loc := submit(t, browser, srv.url, "/login", "/login", url.Values{"email": {"owner@b.c"}, "password": {cliPassword}})
	if code != http.StatusSeeOther || loc != "/environments" {
		t.Fatalf("login: %d → %q", code, loc)
	}
	// Record an environment through a second connection to the running
	// cluster (as another pgdeck instance would): created from the web it
	// would also be deployed, and its PostgreSQL would outlive pgdeck.
	cfg, err := configFrom([]string{"--data-dir", dir}, map[string]string{"PGDECK_PG_BIN_DIR": os.Getenv("PGDECK_PG_BIN_DIR")})
	if err != nil {
		t.Fatal(err)
	}
	side, closeSide, err := openStore(context.Background(), cfg, slog.New(slog.DiscardHandler), false)
	if err != nil {
		t.Fatal(err)
	}
	_, err = side.CreateEnvironment(context.Background(), store.Environment{Name: "kept-env", OdooVersion: "18.0", Stage: "staging", Plan: "starter"})
	closeSide()
	if err != nil {
		t.Fatal(err)
	}
	if code, doc := fetch(t, browser, srv.url+"/environments"); code != http.StatusOK ||
		doc.Find(`[data-testid=environment-row][data-name="kept-env"]`).Length() != 1 {
		t.Fatalf("GET /environments = %d, without kept-env", code)
	}

	if err := srv.stop(t); err != nil {
		t.Errorf("serve returned %v after cancel, want nil", err)
	}
	wantClusterStopped(t, dir)
	if err := syscall.Kill(pid, 0); err == nil {
		if st, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat"); !strings.Contains(string(st), ") Z ") {
			t.Errorf("postmaster %d still runs after serve returned", pid)
		}
	}

	// Restart on the same data directory: users, sessions and environments are kept.
	srv = startServing(t, dir)
	code, doc := fetch(t, browser, srv.url+"/environments")
	if code != http.StatusOK {
		t.Fatalf("after a restart the session is gone: GET /environments = %d", code)
	}
	if doc.Find(`[data-testid=environment-row][data-name="kept-env"]`).Length() != 1 {
		t.Error("after a restart kept-env is not listed")
	}
	if got := strings.TrimSpace(doc.Find("[data-testid=nav-account]").Text()); got != "owner@b.c" {
		t.Errorf("after a restart the signed-in account is %q", got)
	}
	if code := apiGet(t, srv.url+"/api/v1/environments/kept-env", tok); code != http.StatusOK {
		t.Errorf("after a restart the API token gets %d", code)
	}
	fresh := browserClient(t)
	if code, loc := submit(t, fresh, srv.url, "/login", "/login", url.Values{"email": {"owner@b.c"}, "password": {cliPassword}}); code != http.StatusSeeOther {
		t.Errorf("after a restart the owner cannot log in: %d → %q", code, loc)
	}
	if code, _ := fetch(t, fresh, srv.url+"/setup"); code != http.StatusNotFound {
		t.Errorf("after a restart /setup answers %d, want 404", code)
	}

	if err := srv.stop(t); err != nil {
		t.Errorf("second serve returned %v, want nil", err)
	}
	wantClusterStopped(t, dir)
}

func TestOpenStoreAfterACrash(t *testing.T) {
	t.Parallel()
	dir := cliDataDir(t)
	cfg, err := configFrom([]string{"--data-dir", dir}, map[string]string{"PGDECK_PG_BIN_DIR": os.Getenv("PGDECK_PG_BIN_DIR")})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	log := slog.New(slog.DiscardHandler)

	st, closeStore, err := openStore(ctx, cfg, log, true)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateUser(ctx, "survivor@b.c", "h", store.RoleAdmin); err != nil {
		closeStore()
		t.Fatal(err)
	}

	// Kill the postmaster as a power cut would, leaving postmaster.pid behind.
	pid := postmasterPID(t, dir)
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		closeStore()
		t.Fatalf("kill -9 %d: %v", pid, err)
	}
	// Gone, or a zombie nobody reaps.
	testkit.Eventually(t, fmt.Sprintf("postmaster %d is gone after SIGKILL", pid), time.Minute, func() (bool, string) {
		p, ok := testkit.Stat(pid)
		return !testkit.Alive(pid), fmt.Sprintf("%+v (exists: %v)", p, ok)
	})
	st.Close() // the pool only; the cluster is dead
	if !pidFileExists(dir) {
		t.Fatal("no stale postmaster.pid after kill -9; the test proves nothing")
	}

	st, closeStore, err = openStore(ctx, cfg, log, true)
	if err != nil {
		t.Fatalf("openStore after a crash: %v", err)
	}
	u, err := st.UserByEmail(ctx, "survivor@b.c")
	if err != nil || u.Role != store.RoleAdmin {
		t.Errorf("after the crash: %+v, %v", u, err)
	}
	if got := postmasterPID(t, dir); got == pid {
		t.Errorf("postmaster.pid still names the killed postmaster %d", pid)
	}
	closeStore()
	wantClusterStopped(t, dir)
}
