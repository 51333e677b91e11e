package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// crashStep is the deploy step during which the test kills pgdeck: initdb
// takes long enough (~2 s) to be caught in it.
const crashStep = "Creating the PostgreSQL cluster"

// crashBox is a real pgdeck binary run as a subprocess on its own data
// folder, address and port window.
type crashBox struct {
	t     *testing.T
	bin   string
	data  string
	addr  string
	env   []string
	binPG string

	mu   sync.Mutex
	cmd  *exec.Cmd
	done chan struct{}
	logs *lockedBuffer
	runs int
}

// buildPgdeck builds the real binary into a temporary folder.
func buildPgdeck(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "pgd-bin-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	// go test puts its own GOROOT/bin first on PATH.
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is not on PATH: %v", err)
	}
	bin := filepath.Join(dir, "pgdeck")
	if out, err := exec.Command(goBin, "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

func newCrashBox(t *testing.T, bin string) *crashBox {
	t.Helper()
	binPG, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("the PostgreSQL server binaries are required (install them with: apt-get install -y postgresql): %v", err)
	}
	// Short: unix socket paths are limited to 107 bytes.
	tmp := testkit.TempDir(t)

	addr := testkit.FreeAddr(t)
	lo := 20000 + mrand.IntN(60)*200 // below the kernel's ephemeral ports (32768+)
	b := &crashBox{t: t, bin: bin, data: filepath.Join(tmp, "data"), addr: addr, binPG: binPG}
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PGDECK_") && !strings.HasPrefix(kv, "PG") {
			b.env = append(b.env, kv)
		}
	}
	b.env = append(b.env,
		"PGDECK_DATA_DIR="+b.data,
		"PGDECK_ADDR="+addr,
		fmt.Sprintf("PGDECK_PORT_RANGE=%d-%d", lo, lo+199),
		"PGDECK_PG_BIN_DIR="+binPG,
		"PGDECK_LOG_LEVEL=debug",
		// Health is what the test reads in the end: check it often.
		"PGDECK_MONITOR_INTERVAL=200ms",
	)
	t.Cleanup(b.cleanup)
	return b
}

// start starts pgdeck and waits until it serves.
func (b *crashBox) start() {
	b.t.Helper()
	b.mu.Lock()
	b.runs++
	b.logs = &lockedBuffer{}
	cmd := exec.Command(b.bin)
	cmd.Env = b.env
	cmd.Stdout, cmd.Stderr = b.logs, b.logs
	if err := cmd.Start(); err != nil {
		b.mu.Unlock()
		b.t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	b.cmd, b.done = cmd, done
	b.mu.Unlock()

	for i := 0; ; i++ {
		select {
		case <-done:
			b.t.Fatalf("pgdeck (run %d) exited before serving: %v\n%s", b.runs, cmd.ProcessState, b.logs)
		default:
		}
		resp, err := http.Get("http://" + b.addr + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if i > 1200 {
			b.t.Fatalf("pgdeck (run %d) does not serve /healthz: %v\n%s", b.runs, err, b.logs)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// kill sends sig to pgdeck (only the pgdeck process, not its children) and
// waits for it to exit.
func (b *crashBox) kill(sig syscall.Signal) {
	b.t.Helper()
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd == nil {
		return
	}
	if err := cmd.Process.Signal(sig); err != nil {
		b.t.Fatalf("signal pgdeck: %v", err)
	}
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		b.t.Fatalf("pgdeck did not exit on %v\n%s", sig, b.logs)
	}
	b.mu.Lock()
	b.cmd = nil
	b.mu.Unlock()
}

// cli runs a pgdeck command on the same data folder.
func (b *crashBox) cli(stdin string, args ...string) string {
	b.t.Helper()
	cmd := exec.Command(b.bin, args...)
	cmd.Env = b.env
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		b.t.Fatalf("pgdeck %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// api calls the JSON API and decodes the answer into out.
func (b *crashBox) api(method, path, token, body string, out any) int {
	b.t.Helper()
	req, err := http.NewRequest(method, "http://"+b.addr+path, strings.NewReader(body))
	if err != nil {
		b.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			b.t.Fatalf("%s %s: %d %s: %v", method, path, resp.StatusCode, raw, err)
		}
	}
	return resp.StatusCode
}

type crashJob struct {
	ID          int64    `json:"id"`
	Environment string   `json:"environment"`
	Kind        string   `json:"kind"`
	State       string   `json:"state"`
	Step        string   `json:"step"`
	Error       string   `json:"error"`
	Log         []string `json:"log"`
}

func (b *crashBox) job(token string, id int64) crashJob {
	b.t.Helper()
	var j crashJob
	if code := b.api(http.MethodGet, "/api/v1/jobs/"+strconv.FormatInt(id, 10), token, "", &j); code != http.StatusOK {
		b.t.Fatalf("GET job %d: %d", id, code)
	}
	return j
}

func (b *crashBox) controlData() string { return filepath.Join(b.data, "control", "pgdata") }

func (b *crashBox) envData(name string) string {
	return filepath.Join(b.data, "envs", name, "primary", "pgdata")
}

// cleanup leaves nothing running: pgdeck, the environments' clusters, the
// control-plane cluster and any initdb orphaned by the kill.
func (b *crashBox) cleanup() {
	b.mu.Lock()
	cmd, done := b.cmd, b.done
	b.mu.Unlock()
	if cmd != nil {
		cmd.Process.Kill()
		<-done
	}
	// pg_ctl stops the clusters (the environments' and the control
	// plane's); an initdb orphaned by the kill gets SIGKILL.
	if _, err := testkit.StopPostgres(filepath.Dir(b.data), 90*time.Second); err != nil {
		b.t.Errorf("cleanup: %v", err)
	}
}

func crashReadConf(t *testing.T, path string) map[string]string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok {
			out[strings.TrimSpace(k)] = strings.TrimSpace(v)
		}
	}
	return out
}

// TestCrashDuringDeploy kills pgdeck (kill -9) while a deploy runs initdb,
// starts it again, and checks what the operator would: the environment ends
// Running (its health through the API, its role connecting), or the job
// failed with a stated reason shown on the environment and nothing is left
// half-made (no folder, no process, no port taken).
func TestCrashDuringDeploy(t *testing.T) {
	bin := buildPgdeck(t)
	t.Run("as the step starts", func(t *testing.T) { testCrashDuringDeploy(t, bin, false, syscall.SIGKILL) })
	t.Run("while initdb runs", func(t *testing.T) { testCrashDuringDeploy(t, bin, true, syscall.SIGKILL) })
	// A clean stop whose grace ends before the deploy does: the job is
	// cancelled, goes back to the queue and resumes at the next start.
	t.Run("SIGTERM while initdb runs, grace over", func(t *testing.T) { testCrashDuringDeploy(t, bin, true, syscall.SIGTERM) })
}

// testCrashDuringDeploy stops pgdeck with sig as soon as the job reports the
// step, or, with duringInitdb, once initdb runs for the environment.
func testCrashDuringDeploy(t *testing.T, bin string, duringInitdb bool, sig syscall.Signal) {
	b := newCrashBox(t, bin)
	if sig == syscall.SIGTERM {
		b.env = append(b.env, "PGDECK_SHUTDOWN_GRACE=10ms")
	}
	b.start()
	b.cli("a long enough password\n", "user", "add", "--email", "ops@example.com", "--role", "owner")
	out := b.cli("", "token", "add", "--email", "ops@example.com")
	lines := strings.Split(strings.TrimSpace(out), "\n")
	fields := strings.Fields(lines[len(lines)-1])
	token := fields[len(fields)-1]

	var created map[string]any
	body := `{"name": "crash", "odoo_version": "18.0", "stage": "staging", "plan": "pro"}`
	if code := b.api(http.MethodPost, "/api/v1/environments", token, body, &created); code != http.StatusCreated {
		t.Fatalf("POST /api/v1/environments: %d %v\n%s", code, created, b.logs)
	}
	// The first job of a fresh pgdeck is the deploy that creating queued.
	const jobID = 1
	j := b.job(token, jobID)
	if j.Environment != "crash" || j.Kind != "deploy" {
		t.Fatalf("job %d = %+v, want the deploy of crash", jobID, j)
	}
	for i := 0; !(j.State == "running" && j.Step == crashStep); i++ {
		if j.State == "succeeded" || j.State == "failed" || i > 6000 {
			t.Fatalf("never saw the job in step %q: %+v\n%s", crashStep, j, b.logs)
		}
		time.Sleep(20 * time.Millisecond)
		j = b.job(token, jobID)
	}
	if duringInitdb {
		for i := 0; len(testkit.ProcessesUnder(b.data, "initdb")) == 0; i++ {
			if j = b.job(token, jobID); j.Step != crashStep || i > 20000 {
				t.Fatalf("initdb never ran during %q: %+v\n%s", crashStep, j, b.logs)
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
	b.kill(sig)
	firstLogs := b.logs.String()
	t.Logf("stopped pgdeck (%v) during %q", sig, j.Step)
	// initdb dies with pgdeck: an orphan would race with the resumed job.
	for i := 0; len(testkit.ProcessesUnder(b.data, "initdb")) > 0; i++ {
		if i > 200 {
			t.Errorf("initdb outlived the killed pgdeck: %v", testkit.ProcessesUnder(b.data, "initdb"))
			break
		}
		time.Sleep(50 * time.Millisecond)
	}

	b.start()
	for i := 0; j.State == "queued" || j.State == "running"; i++ {
		if i > 6000 {
			t.Fatalf("the job did not end after the restart: %+v\nfirst run:\n%s\nsecond run:\n%s", j, firstLogs, b.logs)
		}
		time.Sleep(50 * time.Millisecond)
		j = b.job(token, jobID)
	}
	t.Logf("after the restart the job ended %s (error %q); log:\n%s", j.State, j.Error, strings.Join(j.Log, "\n"))
	if strings.Contains(b.logs.String(), "removing what an interrupted initdb left") {
		t.Log("the restarted pgdeck removed the folder of the interrupted initdb")
	}
	said := `pgdeck restarted during step "` + crashStep + `"`
	if sig == syscall.SIGTERM {
		said = `pgdeck stopped during step "` + crashStep + `" before the job ended; it resumes at the next start`
	}
	if !strings.Contains(strings.Join(j.Log, "\n"), said) {
		t.Errorf("the job's log does not say %q", said)
	}

	type health struct {
		Status string `json:"status"`
		Reason string `json:"reason"`
	}
	var env struct {
		Name         string `json:"name"`
		DesiredState string `json:"desired_state"`
		Port         *int   `json:"port"`
		Database     string `json:"database"`
		User         string `json:"user"`
		Health       health `json:"health"`
	}
	getEnv := func() {
		t.Helper()
		if code := b.api(http.MethodGet, "/api/v1/environments/crash", token, "", &env); code != http.StatusOK {
			t.Fatalf("GET environment: %d", code)
		}
	}
	getEnv()
	dataDir := b.envData("crash")
	switch j.State {
	case "succeeded":
		// What the operator checks: the environment ends Running. The
		// monitor confirms it after a few checks; its other words
		// ("checking", then a confirmed status) come first.
		for i := 0; env.Health.Status != "running"; i++ {
			if env.Health.Status == "error" || env.Health.Status == "stopped" || i > 2400 {
				t.Fatalf("after the resumed deploy the environment's health is %+v, want running\n%s", env.Health, b.logs)
			}
			time.Sleep(50 * time.Millisecond)
			getEnv()
		}
		if env.DesiredState != "running" {
			t.Errorf("desired_state %q after the resumed deploy, want running", env.DesiredState)
		}
		if env.Port == nil || env.Database != "crash" || env.User != "odoo_crash" {
			t.Fatalf("after a resumed deploy: %+v", env)
		}
		conf := crashReadConf(t, filepath.Join(b.data, "envs", "crash", "odoo.conf"))
		if conf["db_port"] != strconv.Itoa(*env.Port) || conf["db_user"] != env.User || conf["db_name"] != env.Database {
			t.Errorf("odoo.conf %v does not match the environment %+v", conf, env)
		}
		ctx := t.Context()
		cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=10")
		if err != nil {
			t.Fatal(err)
		}
		cfg.Port = uint16(*env.Port)
		cfg.Database, cfg.User, cfg.Password = conf["db_name"], conf["db_user"], conf["db_password"]
		conn, err := pgx.ConnectConfig(ctx, cfg)
		if err != nil {
			t.Fatalf("the role cannot connect after the resumed deploy: %v", err)
		}
		var super bool
		if err := conn.QueryRow(ctx, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user").Scan(&super); err != nil || super {
			t.Errorf("rolsuper = %v, %v", super, err)
		}
		conn.Close(ctx)
		// Isolation holds after a resumed deploy: no superuser over TCP.
		cfg.User, cfg.Database, cfg.Password = "postgres", "postgres", ""
		if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
			conn.Close(ctx)
			t.Error("the superuser connected over TCP after a resumed deploy")
		} else if !strings.Contains(err.Error(), "pg_hba.conf rejects connection") {
			t.Errorf("superuser over TCP: %v, want pg_hba.conf rejecting it", err)
		}
		if left, _ := filepath.Glob(dataDir + ".initdb-*"); len(left) != 0 {
			t.Errorf("an interrupted initdb's folder is left: %v", left)
		}
		if pm := testkit.Postmasters(dataDir); len(pm) != 1 {
			t.Errorf("postmasters for %s: %v, want exactly one", dataDir, pm)
		}
	case "failed":
		// A failure must say why in words an operator can act on, the
		// same on the environment's health as on the job.
		if reason := strings.TrimSpace(j.Error); reason == "" || reason == "context canceled" || strings.HasPrefix(reason, "signal: ") {
			t.Errorf("the job failed without a stated reason: %q", j.Error)
		}
		if env.Health.Status != "error" || !strings.Contains(env.Health.Reason, j.Error) {
			t.Errorf("health after the failed deploy = %+v, want error saying %q", env.Health, j.Error)
		}
		if env.Port != nil && !testkit.PortFree(*env.Port) {
			t.Errorf("something still listens on the failed deploy's port %d", *env.Port)
		}
		if pids := testkit.PostgresUnder(filepath.Join(b.data, "envs", "crash")); len(pids) != 0 {
			t.Errorf("a failed deploy left PostgreSQL processes: %v", pids)
		}
		// A failed first deploy removes what it made.
		if _, err := os.Lstat(filepath.Join(b.data, "envs", "crash")); !os.IsNotExist(err) {
			t.Errorf("a failed deploy left its folder: %v", err)
		}
	default:
		t.Fatalf("job state %q", j.State)
	}
	if left := testkit.ProcessesUnder(b.data, "initdb"); len(left) != 0 {
		t.Errorf("initdb processes still running: %v", left)
	}

	// A clean stop stops the control-plane cluster; environments' clusters
	// outlive pgdeck by design.
	b.kill(syscall.SIGTERM)
	if _, err := os.Stat(filepath.Join(b.controlData(), "postmaster.pid")); !os.IsNotExist(err) {
		t.Errorf("control-plane postmaster.pid after SIGTERM: %v\n%s", err, b.logs)
	}
	if pids := testkit.PostgresUnder(b.controlData()); len(pids) != 0 {
		t.Errorf("control-plane processes after SIGTERM: %v", pids)
	}
	if j.State == "succeeded" {
		if pm := testkit.Postmasters(dataDir); len(pm) != 1 {
			t.Errorf("the environment's cluster did not outlive pgdeck: postmasters %v", pm)
		}
	}
	if st, err := testkit.StopPostgres(dataDir, 90*time.Second); err != nil {
		t.Error(err)
	} else if len(st.Killed) > 0 {
		t.Errorf("PostgreSQL processes in %s that pg_ctl could not stop: %v", dataDir, st.Killed)
	}
	if pids := testkit.PostgresUnder(b.data); len(pids) != 0 {
		t.Errorf("PostgreSQL processes after stopping everything: %v", pids)
	}
}
