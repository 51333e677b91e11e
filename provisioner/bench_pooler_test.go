package provisioner_test

import (
	"io"
	"log/slog"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"pgdeck/provisioner"
	"pgdeck/store"
)

var tpsRE = regexp.MustCompile(`(?m)^tps = ([0-9.]+)`)

// pgbench runs the host's pgbench against 127.0.0.1:port as the
// environment's role and returns transactions per second.
func (h *harness) pgbench(e store.Environment, port int, args ...string) float64 {
	h.t.Helper()
	bin, err := exec.LookPath("pgbench")
	if err != nil {
		h.t.Fatal("pgbench is required (install it with: apt-get install -y postgresql-contrib postgresql-client)")
	}
	cmd := exec.Command(bin, append([]string{"-h", "127.0.0.1", "-p", strconv.Itoa(port), "-U", e.DBUser}, append(args, e.DBName)...)...)
	cmd.Env = append(os.Environ(), "PGPASSWORD="+h.password(e), "PGSSLMODE=disable")
	out, err := cmd.CombinedOutput()
	if err != nil {
		h.t.Fatalf("pgbench %v: %v\n%s", args, err, out)
	}
	m := tpsRE.FindSubmatch(out)
	if m == nil {
		return 0
	}
	tps, _ := strconv.ParseFloat(string(m[1]), 64)
	return tps
}

// BenchmarkPgBouncer compares pgbench with a new connection per transaction
// (-C, 20 clients, select-only) straight at an environment's PostgreSQL and
// through its PgBouncer (transaction pooling, pool size 20), in the same
// run, one after the other in every iteration. It reports direct-tps,
// pgbouncer-tps and their ratio x-direct (goal: ≥ 10). Printed, never
// asserted. Run with: make bench, or
// go test -run '^$' -bench PgBouncer -benchtime 3x ./provisioner/
func BenchmarkPgBouncer(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })

	h := newHarness(b)
	e := h.deploy("bench")
	h.savePooler(e, store.PoolerSettings{Enabled: true, PoolSize: 20, PoolMode: "transaction", MaxClientConn: 200})
	h.succeed("bench", provisioner.KindRedeploy)
	e = h.env("bench")
	pooled := h.poolerPort(e)
	h.pgbench(e, *e.Port, "-i", "-q", "-s", "1")

	run := []string{"-n", "-C", "-S", "-c", "20", "-j", "2", "-T", "3"}
	var direct, through float64
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		direct += h.pgbench(e, *e.Port, run...)
		through += h.pgbench(e, pooled, run...)
	}
	b.StopTimer()
	direct /= float64(b.N)
	through /= float64(b.N)
	b.ReportMetric(direct, "direct-tps")
	b.ReportMetric(through, "pgbouncer-tps")
	if direct > 0 {
		b.ReportMetric(through/direct, "x-direct")
	}
	b.ReportMetric(0, "ns/op")
}
