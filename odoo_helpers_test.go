//go:build odoo

package main

// Helpers for the real-Odoo tests (make test-odoo): the Odoo source, the
// unprivileged OS user Odoo runs as, running `odoo-bin` once or as a server
// on an environment's odoo.conf, and calling it over JSON-RPC. Each run's
// output is kept under testdata/out/odoo/<test>/.

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/cookiejar"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"pgdeck/internal/testkit"
)

// odooOSUser is the unprivileged OS user the tests run Odoo as.
const odooOSUser = "pgdeck-odoo"

// odooPython is Debian's interpreter, which sees Debian's python3-* packages
// (the first python3 on PATH may be another one).
const odooPython = "/usr/bin/python3"

// odooHowTo says how to give the tests an Odoo 18.
const odooHowTo = "run `make test-odoo ODOO_TARBALL=../shared/odoo/odoo-18.0-20250506-min.tar.gz` " +
	"(or ODOO_SRC=<an Odoo 18 source tree>); Odoo Community 18.0 source: https://nightly.odoo.com/18.0/nightly/src/ or https://github.com/odoo/odoo/tree/18.0"

// odooSource returns the Odoo source tree named by ODOO_SRC (the Makefile
// unpacks ODOO_TARBALL into its cache and sets it).
func odooSource(t *testing.T) string {
	t.Helper()
	src := os.Getenv("ODOO_SRC")
	if src == "" {
		t.Fatalf("no Odoo source: %s", odooHowTo)
	}
	if _, err := os.Stat(filepath.Join(src, "odoo-bin")); err != nil {
		t.Fatalf("ODOO_SRC=%s holds no odoo-bin: %v; %s", src, err, odooHowTo)
	}
	if _, err := os.Stat(odooPython); err != nil {
		t.Fatalf("%s is missing: apt-get install -y python3", odooPython)
	}
	return src
}

// odooAccount is the OS user Odoo runs as.
type odooAccount struct {
	Name     string
	UID, GID int
	// Home is a folder the user owns (Odoo and Python write small files
	// under $HOME).
	Home string
}

// ensureOdooAccount creates the unprivileged system user pgdeck-odoo when it
// is missing. Creating a user needs root; Odoo refuses to run as root.
func ensureOdooAccount(t *testing.T) odooAccount {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Fatalf("the real-Odoo tests create and switch to the OS user %s: run them as root (sudo make test-odoo …)", odooOSUser)
	}
	if _, err := user.Lookup(odooOSUser); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", odooOSUser).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			t.Fatalf("useradd %s: %v\n%s", odooOSUser, err, out)
		}
	}
	u, err := user.Lookup(odooOSUser)
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	home, err := os.MkdirTemp("", "pgd-odoo-home-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(home, uid, gid); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(home) })
	return odooAccount{Name: odooOSUser, UID: uid, GID: gid, Home: home}
}

// odooLogDir is where this test keeps each Odoo run's output.
func odooLogDir(t *testing.T) string {
	t.Helper()
	dir := filepath.Join("testdata", "out", "odoo", strings.NewReplacer("/", "_", " ", "_").Replace(t.Name()))
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	abs, _ := filepath.Abs(dir)
	return abs
}

var odooRuns atomic.Int32

// odooCommand prepares odoo-bin with args, as the Odoo user, its output to
// a new log file under the test's output folder.
func odooCommand(t *testing.T, src string, acct odooAccount, what string, args ...string) (*exec.Cmd, string) {
	t.Helper()
	logPath := filepath.Join(odooLogDir(t), fmt.Sprintf("%02d-%s.log", odooRuns.Add(1), what))
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	cmd := exec.Command(odooPython, append([]string{filepath.Join(src, "odoo-bin")}, args...)...)
	cmd.Dir = acct.Home
	cmd.Env = []string{"PATH=/usr/bin:/bin", "LANG=C.UTF-8", "HOME=" + acct.Home, "USER=" + acct.Name, "LOGNAME=" + acct.Name}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Setpgid:    true,
		Credential: &syscall.Credential{Uid: uint32(acct.UID), Gid: uint32(acct.GID)},
	}
	return cmd, logPath
}

// runOdoo runs odoo-bin to its end (e.g. -i base --stop-after-init) and
// returns its exit code and output.
func runOdoo(t *testing.T, src string, acct odooAccount, what string, timeout time.Duration, args ...string) (int, string) {
	t.Helper()
	cmd, logPath := odooCommand(t, src, acct, what, args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(timeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		t.Fatalf("odoo-bin %s did not end within %s; its log: %s\n%s", strings.Join(args, " "), timeout, logPath, tail(readFile(logPath), 3000))
	}
	return cmd.ProcessState.ExitCode(), readFile(logPath)
}

func readFile(path string) string {
	b, _ := os.ReadFile(path)
	return string(b)
}

// odooServer is a running Odoo HTTP server.
type odooServer struct {
	t       *testing.T
	URL     string
	LogPath string
	cmd     *exec.Cmd
	done    chan struct{}
}

// startOdoo starts Odoo's HTTP server on 127.0.0.1 with the given odoo.conf
// and waits until /web/login answers 200. It is stopped at the end of the
// test (or by Stop).
func startOdoo(t *testing.T, src string, acct odooAccount, conf string, extra ...string) *odooServer {
	t.Helper()
	port := testkit.FreePort(t)
	args := append([]string{"-c", conf, "--http-interface", "127.0.0.1", "--http-port", strconv.Itoa(port)}, extra...)
	cmd, logPath := odooCommand(t, src, acct, "server", args...)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	o := &odooServer{t: t, URL: fmt.Sprintf("http://127.0.0.1:%d", port), LogPath: logPath, cmd: cmd, done: make(chan struct{})}
	go func() { cmd.Wait(); close(o.done) }()
	t.Cleanup(o.Stop)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		select {
		case <-o.done:
			t.Fatalf("Odoo exited before serving (%v); its log %s:\n%s", cmd.ProcessState, logPath, tail(o.Log(), 4000))
		default:
		}
		resp, err := http.Get(o.URL + "/web/login")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return o
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("Odoo does not answer /web/login with 200 (last: %v); its log %s:\n%s", err, logPath, tail(o.Log(), 4000))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// Log is the server's output so far.
func (o *odooServer) Log() string { return readFile(o.LogPath) }

// Stop stops Odoo (SIGTERM, then SIGKILL of its process group after 20 s)
// and waits for it; it can be called twice.
func (o *odooServer) Stop() {
	select {
	case <-o.done:
		return
	default:
	}
	syscall.Kill(-o.cmd.Process.Pid, syscall.SIGTERM)
	select {
	case <-o.done:
	case <-time.After(20 * time.Second):
		syscall.Kill(-o.cmd.Process.Pid, syscall.SIGKILL)
		<-o.done
	}
	// Nothing of its process group may be left.
	for i := 0; syscall.Kill(-o.cmd.Process.Pid, 0) == nil; i++ {
		if i > 100 {
			o.t.Errorf("Odoo's process group %d outlived it", o.cmd.Process.Pid)
			syscall.Kill(-o.cmd.Process.Pid, syscall.SIGKILL)
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// odooClient calls Odoo over JSON-RPC with a session cookie.
type odooClient struct {
	base string
	http *http.Client
	id   int
}

// Client returns a new JSON-RPC client (its own session) for the server.
func (o *odooServer) Client() *odooClient {
	jar, _ := cookiejar.New(nil)
	return &odooClient{base: o.URL, http: &http.Client{Jar: jar, Timeout: time.Minute}}
}

// odooRPCError is an error answered by Odoo.
type odooRPCError struct {
	Message string
	Data    struct {
		Name    string `json:"name"`
		Message string `json:"message"`
		Debug   string `json:"debug"`
	}
}

func (e *odooRPCError) Error() string {
	return fmt.Sprintf("odoo: %s: %s (%s)", e.Message, e.Data.Message, e.Data.Name)
}

// Call posts a JSON-RPC "call" to path and decodes its result into out.
func (c *odooClient) Call(path string, params, out any) error {
	c.id++
	body, err := json.Marshal(map[string]any{"jsonrpc": "2.0", "method": "call", "id": c.id, "params": params})
	if err != nil {
		return err
	}
	resp, err := c.http.Post(c.base+path, "application/json", bytes.NewReader(body))
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("POST %s: %d %s", path, resp.StatusCode, tail(string(raw), 500))
	}
	var answer struct {
		Result json.RawMessage `json:"result"`
		Error  *odooRPCError   `json:"error"`
	}
	if err := json.Unmarshal(raw, &answer); err != nil {
		return fmt.Errorf("POST %s: %v: %s", path, err, tail(string(raw), 500))
	}
	if answer.Error != nil {
		return answer.Error
	}
	if out == nil {
		return nil
	}
	return json.Unmarshal(answer.Result, out)
}

// Authenticate signs in and returns the user's id.
func (c *odooClient) Authenticate(db, login, password string) (int, error) {
	var res struct {
		UID any `json:"uid"`
	}
	if err := c.Call("/web/session/authenticate", map[string]any{"db": db, "login": login, "password": password}, &res); err != nil {
		return 0, err
	}
	uid, ok := res.UID.(float64)
	if !ok || uid <= 0 {
		return 0, errors.New("odoo: authenticate answered no uid")
	}
	return int(uid), nil
}

// CallKW calls model.method(*args, **kwargs) through /web/dataset/call_kw.
func (c *odooClient) CallKW(model, method string, args []any, kwargs map[string]any, out any) error {
	if kwargs == nil {
		kwargs = map[string]any{}
	}
	return c.Call("/web/dataset/call_kw/"+model+"/"+method,
		map[string]any{"model": model, "method": method, "args": args, "kwargs": kwargs}, out)
}

// odooLogLine matches Odoo's log lines: time, pid, level, database, logger.
var odooLogLine = regexp.MustCompile(`^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d+ \d+ (DEBUG|INFO|WARNING|ERROR|CRITICAL) `)

// odooErrors returns the ERROR and CRITICAL lines of an Odoo log.
func odooErrors(log string) []string {
	var out []string
	sc := bufio.NewScanner(strings.NewReader(log))
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if m := odooLogLine.FindStringSubmatch(sc.Text()); m != nil && (m[1] == "ERROR" || m[1] == "CRITICAL") {
			out = append(out, sc.Text())
		}
	}
	return out
}
