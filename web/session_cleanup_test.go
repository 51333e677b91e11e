package web_test

import (
	"context"
	"testing"
	"time"
)

// TestSessionCleanupLoop: the loop deletes expired sessions at once, keeps
// live ones, and returns when its context ends (and can be run again).
func TestSessionCleanupLoop(t *testing.T) {
	a := newApp(t)
	ctx := context.Background()
	ss := a.st.Sessions()
	if err := ss.CommitCtx(ctx, "expired", []byte("x"), time.Now().Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ss.CommitCtx(ctx, "live", []byte("y"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	for run := 1; run <= 2; run++ {
		lctx, cancel := context.WithCancel(ctx)
		done := make(chan error, 1)
		go func() { done <- a.srv.RunSessionCleanup(lctx) }()
		deadline := time.Now().Add(10 * time.Second)
		for {
			var n int
			if err := a.st.Pool.QueryRow(ctx, "SELECT count(*) FROM sessions WHERE token = 'expired'").Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the expired session was not deleted")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Errorf("run %d: %v", run, err)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("run %d: the loop did not stop with its context", run)
		}
	}
	if _, ok, err := ss.FindCtx(ctx, "live"); err != nil || !ok {
		t.Errorf("the live session went: %v, %v", ok, err)
	}
}
