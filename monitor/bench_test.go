package monitor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"sync"
	"syscall"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/store"
	"pgdeck/store/storetest"
)

// BenchmarkTick measures one monitor round over 20 and 50 deployed, running
// environments, each its own PostgreSQL cluster (copied from one template
// data folder, so that setting up 50 does not take 50 initdb runs) with
// the monitoring role a deploy makes. Besides wall time per round it
// reports pgdeck's own CPU time per round (the clusters' CPU is not
// counted), the process's peak RSS, and the first round's wall time
// (first-ms: every check opens its connection, as after a start; later
// rounds reuse them).
//
// Goal: a round over 50 environments in under 1 s on 2 cores
// (go test -run '^$' -bench Tick -cpu 2 ./monitor/).
func BenchmarkTick(b *testing.B) {
	// pgexec logs every cluster start through the default logger.
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })

	const most = 50
	f := newFixture(b)
	setup := time.Now()
	f.makeTemplate()
	names := make([]string, most)
	ports := testkit.FreePorts(b, most)
	var (
		wg   sync.WaitGroup
		mu   sync.Mutex
		errs []error
		slot = make(chan struct{}, 4)
	)
	for i := range names {
		names[i] = fmt.Sprintf("bench-%02d", i+1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			slot <- struct{}{}
			defer func() { <-slot }()
			if err := f.startCluster(names[i], ports[i]); err != nil {
				mu.Lock()
				errs = append(errs, err)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		b.Fatal(err)
	}
	b.Logf("set up %d clusters in %v", most, time.Since(setup).Round(time.Millisecond))

	for _, n := range []int{20, most} {
		b.Run(fmt.Sprintf("envs=%d", n), func(b *testing.B) {
			// A store holding only the first n environments.
			g := *f
			g.tb, g.st = b, storetest.New(b)
			for i := range n {
				g.recordMonitorRole(g.addEnv(names[i], ports[i]), testMonitorPassword)
			}
			m := g.monitor(Config{Timeout: 3 * time.Second})
			b.Cleanup(m.conns.closeAll)
			ctx := context.Background()
			// The first round stores every environment's first check and
			// opens its connection.
			first := time.Now()
			tick(b, m)
			firstRound := time.Since(first)

			var before, after syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &before)
			start := time.Now()
			rounds := 0
			for b.Loop() {
				if err := m.Tick(ctx); err != nil {
					b.Fatal(err)
				}
				m.checks.Wait()
				rounds++
			}
			wall := time.Since(start)
			syscall.Getrusage(syscall.RUSAGE_SELF, &after)

			cpu := time.Duration(syscall.TimevalToNsec(after.Utime) - syscall.TimevalToNsec(before.Utime) +
				syscall.TimevalToNsec(after.Stime) - syscall.TimevalToNsec(before.Stime))
			b.ReportMetric(float64(cpu.Microseconds())/1000/float64(rounds), "cpu-ms/tick")
			b.ReportMetric(float64(after.Maxrss)/1024, "rss-MB") // Maxrss is in KiB on Linux
			b.ReportMetric(float64(firstRound.Milliseconds()), "first-ms")

			all, err := g.st.HealthAll(ctx)
			if err != nil {
				b.Fatal(err)
			}
			running := 0
			for _, h := range all {
				if h.Status == store.HealthRunning && !h.Stale {
					running++
				}
			}
			if running != n {
				b.Fatalf("%d of %d environments running after the rounds", running, n)
			}
			perTick := wall / time.Duration(rounds)
			if n == most {
				verdict := "met"
				if perTick >= time.Second {
					verdict = "MISSED"
				}
				b.Logf("goal: a tick over %d environments under 1s on 2 cores: %v per tick with GOMAXPROCS=%d (%d CPUs): %s",
					n, perTick.Round(time.Millisecond), runtime.GOMAXPROCS(0), runtime.NumCPU(), verdict)
			}
		})
	}
}
