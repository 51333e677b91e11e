package provisioner_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// BenchmarkDeploy compares the deploy of one environment through the
// provisioner (Enqueue + RunOne) with the raw steps it wraps, run from the
// same process: initdb, pg_ctl start -w, createuser, createdb. Each
// iteration runs both, one after the other, so that a slow disk moment
// weighs on both sides alike; it reports raw-ms/op, pgdeck-ms/op and their
// ratio x-raw (goal: ≤ 1.2). Removing what an iteration made is not timed.
// Run with: make bench, or go test -run '^$' -bench Deploy -benchtime 5x ./provisioner/
func BenchmarkDeploy(b *testing.B) {
	// Keep the figures readable: pgexec logs through the default logger.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })

	h := newHarness(b)
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		b.Fatal(err)
	}
	runAs, err := pgexec.DefaultRunAs()
	if err != nil {
		b.Fatal(err)
	}
	r := &rawCluster{b: b, bin: bin, runAs: runAs}
	b.Cleanup(r.remove)

	var raw, pgdeck time.Duration
	var lastJob int64
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		r.prepare(filepath.Join(h.root, fmt.Sprintf("raw%d", i)), h.freePort())
		start := time.Now()
		r.deploy()
		raw += time.Since(start)
		r.remove()

		name := fmt.Sprintf("bench%d", i)
		h.createEnv(name)
		start = time.Now()
		j := h.enqueue(name, provisioner.KindDeploy)
		h.runOne()
		pgdeck += time.Since(start)
		h.wantSucceeded(h.job(j.ID))
		lastJob = j.ID
		if i == b.N-1 {
			b.Logf("steps of the last deploy: %s", stepDurations(b, h, lastJob))
		}
		h.succeed(name, provisioner.KindDelete)
	}
	n := float64(b.N)
	b.ReportMetric(float64(raw.Milliseconds())/n, "raw-ms/op")
	b.ReportMetric(float64(pgdeck.Milliseconds())/n, "pgdeck-ms/op")
	b.ReportMetric(float64(pgdeck)/float64(raw), "x-raw")
	b.Logf("deploy through pgdeck: %v per environment, raw steps: %v, ratio %.2f (goal ≤ 1.2)",
		(pgdeck / time.Duration(b.N)).Round(time.Millisecond), (raw / time.Duration(b.N)).Round(time.Millisecond), float64(pgdeck)/float64(raw))
}

// stepDurations tells how long each step of a job took, from its log.
func stepDurations(b *testing.B, h *harness, id int64) string {
	ls, err := h.st.JobLog(context.Background(), id)
	if err != nil {
		b.Fatal(err)
	}
	var out []string
	for i := 0; i+1 < len(ls); i++ {
		out = append(out, fmt.Sprintf("%s %v", ls[i].Line, ls[i+1].At.Sub(ls[i].At).Round(time.Millisecond)))
	}
	return strings.Join(out, "; ")
}

// rawCluster runs the PostgreSQL binaries directly, the way pgexec does (as
// the postgres user when root, with a clean environment).
type rawCluster struct {
	b     *testing.B
	bin   string
	runAs pgexec.RunAs

	dir, data, sock string
	port            int
}

// prepare makes the folders of one iteration (outside the timer).
func (r *rawCluster) prepare(dir string, port int) {
	r.dir, r.data, r.sock, r.port = dir, filepath.Join(dir, "pgdata"), filepath.Join(dir, "run"), port
	for _, d := range []struct {
		path string
		mode os.FileMode
	}{{r.dir, 0o755}, {r.data, 0o700}, {r.sock, 0o700}} {
		if err := os.MkdirAll(d.path, d.mode); err != nil {
			r.b.Fatal(err)
		}
		if r.runAs.Set {
			if err := os.Chown(d.path, r.runAs.UID, r.runAs.GID); err != nil {
				r.b.Fatal(err)
			}
		}
	}
}

// deploy is what the benchmark times: the four raw steps.
func (r *rawCluster) deploy() {
	r.run(false, "initdb", "-D", r.data, "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
		"--encoding=UTF8", "--locale=C.UTF-8")
	r.run(true, "pg_ctl", "start", "-w", "-t", "60", "-D", r.data, "-l", filepath.Join(r.dir, "postgresql.log"),
		"-o", "-c listen_addresses=127.0.0.1 -p "+strconv.Itoa(r.port)+" -k "+r.sock)
	r.run(false, "createuser", "odoo_raw")
	r.run(false, "createdb", "--owner=odoo_raw", "--encoding=UTF8", "--template=template0", "raw")
}

// remove stops the server and deletes the folder (outside the timer).
func (r *rawCluster) remove() {
	if r.dir == "" {
		return
	}
	if _, err := os.Stat(filepath.Join(r.data, "postmaster.pid")); err == nil {
		r.run(false, "pg_ctl", "stop", "-w", "-t", "60", "-m", "fast", "-D", r.data)
	}
	os.RemoveAll(r.dir)
	r.dir = ""
}

func (r *rawCluster) run(setsid bool, name string, args ...string) {
	r.runEnv(setsid, nil, name, args...)
}

// runEnv is run with more environment variables (they win over run's).
func (r *rawCluster) runEnv(setsid bool, extra []string, name string, args ...string) []byte {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(r.bin, name), args...)
	cmd.Dir = "/"
	home := "/"
	if r.runAs.Home != "" {
		home = r.runAs.Home
	}
	cmd.Env = []string{"HOME=" + home, "LANG=C.UTF-8", "PATH=" + r.bin + ":/usr/bin:/bin",
		"PGHOST=" + r.sock, "PGPORT=" + strconv.Itoa(r.port), "PGUSER=postgres"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: setsid}
	if r.runAs.Set && r.runAs.UID != os.Geteuid() {
		cmd.SysProcAttr.Credential = &syscall.Credential{Uid: uint32(r.runAs.UID), Gid: uint32(r.runAs.GID)}
	}
	cmd.Env = append(cmd.Env, extra...)
	cmd.WaitDelay = 10 * time.Second
	out, err := cmd.CombinedOutput()
	if err != nil {
		r.b.Fatalf("%s %v: %v\n%s", name, args, err, out)
	}
	return out
}
