package monitor

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	dto "github.com/prometheus/client_model/go"

	"pgdeck/internal/testkit"
	"pgdeck/store"
)

func TestRunStops(t *testing.T) {
	f := newFixture(t)
	env := f.addRunningEnv("shop")

	t.Run("cancel twice", func(t *testing.T) {
		m := f.monitor(Config{Interval: 50 * time.Millisecond, Timeout: 5 * time.Second})
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- m.Run(ctx) }()
		// A check at start, then one per tick: wait for a few.
		before := len(f.history(env))
		testkit.Eventually(t, "three more checks are recorded", 10*time.Second, func() (bool, string) {
			n := len(f.history(env))
			return n >= before+3, fmt.Sprintf("%d history rows, %d before", n, before)
		})
		if err := m.Run(ctx); err == nil {
			t.Error("a second Run while one runs returned nil")
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after cancel, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after cancel")
		}
		cancel()
		m.Stop()
		// Nothing is checked once Run returned.
		n := len(f.history(env))
		time.Sleep(200 * time.Millisecond)
		if len(f.history(env)) != n {
			t.Error("checks continued after Run returned")
		}
	})

	t.Run("stop twice", func(t *testing.T) {
		m := f.monitor(Config{Interval: 50 * time.Millisecond, Timeout: 5 * time.Second})
		m.Stop() // not running: nothing to do
		done := make(chan error, 1)
		go func() { done <- m.Run(context.Background()) }()
		before := len(f.history(env))
		testkit.Eventually(t, "a check is recorded", 10*time.Second, func() (bool, string) {
			n := len(f.history(env))
			return n > before, fmt.Sprintf("%d history rows, %d before", n, before)
		})
		m.Stop()
		// Stop returned once Run's work ended; its return value follows.
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("Run returned %v after Stop, want nil", err)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("Run did not return after Stop")
		}
		m.mu.Lock()
		left := len(m.inFlight)
		m.mu.Unlock()
		if left != 0 {
			t.Errorf("%d checks still in flight after Stop", left)
		}
		m.Stop()
		// It can run again after a stop.
		ctx, cancel := context.WithCancel(context.Background())
		go func() { done <- m.Run(ctx) }()
		before = len(f.history(env))
		testkit.Eventually(t, "a check is recorded", 10*time.Second, func() (bool, string) {
			n := len(f.history(env))
			return n > before, fmt.Sprintf("%d history rows, %d before", n, before)
		})
		cancel()
		if err := <-done; err != nil {
			t.Errorf("second Run returned %v", err)
		}
	})
}

// syncBuffer is a log destination safe for concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// checksDone is how many checks the monitor has finished.
func checksDone(t *testing.T, m *Monitor) uint64 {
	t.Helper()
	var mm dto.Metric
	if err := m.checkDuration.Write(&mm); err != nil {
		t.Fatal(err)
	}
	return mm.GetHistogram().GetSampleCount()
}

// monitorLockHolders lists the sessions holding the monitor's lock.
func monitorLockHolders(t *testing.T, f *fixture) []int32 {
	t.Helper()
	rows, _ := f.st.Pool.Query(context.Background(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND objid = $1 AND objsubid = 2
			AND database = (SELECT oid FROM pg_database WHERE datname = current_database())`, store.LockMonitor)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

const waitingLine = "another pgdeck instance runs the monitor"

// TestOneMonitorPerStore runs two monitors (two pgdeck instances) on one
// store: only the one holding the lock checks; when it stops, the other
// takes over within a few intervals.
func TestOneMonitorPerStore(t *testing.T) {
	f := newFixture(t)
	env := f.addRunningEnv("shop")
	cfg := Config{Interval: 50 * time.Millisecond, Timeout: 5 * time.Second}
	var logA, logB syncBuffer
	a := New(cfg, f.st, f.runtime(), f.box, slog.New(slog.NewTextHandler(&logA, nil)))
	b := New(cfg, f.st, f.runtime(), f.box, slog.New(slog.NewTextHandler(&logB, nil)))
	doneA, doneB := make(chan error, 1), make(chan error, 1)
	go func() { doneA <- a.Run(context.Background()) }()
	defer a.Stop()
	testkit.Eventually(t, "the first monitor runs two checks", 10*time.Second, func() (bool, string) {
		n := checksDone(t, a)
		return n >= 2, fmt.Sprintf("%d checks", n)
	})
	go func() { doneB <- b.Run(context.Background()) }()
	defer b.Stop()
	testkit.Eventually(t, "the second monitor runs", 10*time.Second, func() (bool, string) {
		b.mu.Lock()
		defer b.mu.Unlock()
		return b.cancel != nil, "not running yet"
	})

	// Several intervals, each one a retry for B and a round for A.
	fromA := checksDone(t, a)
	time.Sleep(10 * cfg.Interval)
	if n := checksDone(t, b); n != 0 {
		t.Fatalf("the second monitor ran %d checks while the first held the lock", n)
	}
	if checksDone(t, a) <= fromA {
		t.Error("the first monitor stopped checking once the second started")
	}
	if n := strings.Count(logB.String(), waitingLine); n != 1 {
		t.Errorf("the waiting monitor logged %q %d times, want once:\n%s", waitingLine, n, logB.String())
	}
	if got := monitorLockHolders(t, f); len(got) != 1 {
		t.Errorf("monitor lock holders: %v, want one", got)
	}

	a.Stop()
	if err := <-doneA; err != nil {
		t.Errorf("first Run: %v", err)
	}
	rows := len(f.history(env))
	// A few intervals: B retries every one.
	testkit.Eventually(t, "the second monitor takes over and checks", 3*time.Second, func() (bool, string) {
		n := checksDone(t, b)
		return n > 0, fmt.Sprintf("%d checks", n)
	})
	testkit.Eventually(t, "the second monitor records a check", 3*time.Second, func() (bool, string) {
		n := len(f.history(env))
		return n > rows, fmt.Sprintf("%d history rows, %d before", n, rows)
	})
	if !strings.Contains(logB.String(), "taking over the monitor") {
		t.Errorf("the second monitor did not log that it took over:\n%s", logB.String())
	}
	fromA = checksDone(t, a)
	b.Stop()
	if err := <-doneB; err != nil {
		t.Errorf("second Run: %v", err)
	}
	if checksDone(t, a) != fromA {
		t.Error("the stopped monitor kept checking")
	}
	// Both stopped: the lock is free (once the server has ended a session
	// that Release had to close rather than unlock).
	testkit.Eventually(t, "the monitor lock is free", 10*time.Second, func() (bool, string) {
		got := monitorLockHolders(t, f)
		return len(got) == 0, fmt.Sprintf("holders %v", got)
	})
}

// TestMonitorRetakesLostLock ends the session holding the monitor's lock
// (its connection broke): the monitor notices at its next round, takes the
// lock again on a new session and goes on checking.
func TestMonitorRetakesLostLock(t *testing.T) {
	f := newFixture(t)
	f.addRunningEnv("shop")
	var logs syncBuffer
	m := New(Config{Interval: 50 * time.Millisecond, Timeout: 5 * time.Second}, f.st, f.runtime(), f.box, slog.New(slog.NewTextHandler(&logs, nil)))
	done := make(chan error, 1)
	go func() { done <- m.Run(context.Background()) }()
	defer m.Stop()
	testkit.Eventually(t, "the monitor runs a check", 10*time.Second, func() (bool, string) {
		n := checksDone(t, m)
		return n >= 1, fmt.Sprintf("%d checks", n)
	})
	holders := monitorLockHolders(t, f)
	if len(holders) != 1 {
		t.Fatalf("monitor lock holders: %v, want one", holders)
	}
	var ok bool
	if err := f.st.Pool.QueryRow(context.Background(), "SELECT pg_terminate_backend($1, 10000)", holders[0]).Scan(&ok); err != nil || !ok {
		t.Fatalf("terminate the lock's session: %v, %v", ok, err)
	}
	testkit.Eventually(t, "the monitor takes the lock again on a new session", 10*time.Second, func() (bool, string) {
		got := monitorLockHolders(t, f)
		return len(got) == 1 && got[0] != holders[0], fmt.Sprintf("holders %v, first %v", got, holders)
	})
	if !strings.Contains(logs.String(), "lost the connection holding the monitor lock") {
		t.Errorf("no log line about the lost lock:\n%s", logs.String())
	}
	n := checksDone(t, m)
	testkit.Eventually(t, "the monitor goes on checking", 10*time.Second, func() (bool, string) {
		got := checksDone(t, m)
		return got > n, fmt.Sprintf("%d checks, %d before", got, n)
	})
	m.Stop()
	if err := <-done; err != nil {
		t.Errorf("Run: %v", err)
	}
	if got := monitorLockHolders(t, f); len(got) != 0 {
		t.Errorf("monitor lock holders after Stop: %v", got)
	}
}
