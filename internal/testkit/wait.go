package testkit

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// Eventually polls check every 50 ms until it reports true, and fails the
// test with what and check's last observed state (its second result) when
// timeout passes first. It waits; it asserts nothing by sleeping.
func Eventually(tb testing.TB, what string, timeout time.Duration, check func() (bool, string)) {
	tb.Helper()
	EventuallyContext(context.Background(), tb, what, timeout, check)
}

// EventuallyContext is Eventually that also gives up, failing the test, when
// ctx ends (a browser or server the check reads from went away).
func EventuallyContext(ctx context.Context, tb testing.TB, what string, timeout time.Duration, check func() (bool, string)) {
	tb.Helper()
	deadline := time.Now().Add(timeout)
	for {
		ok, state := check()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			tb.Fatalf("%s: not within %s; last seen: %s", what, timeout, state)
		}
		select {
		case <-ctx.Done():
			tb.Fatalf("%s: gave up waiting (%v); last seen: %s", what, ctx.Err(), state)
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// TempDir returns a fresh short temporary folder, removed when the test
// ends: unix socket paths are limited to 107 bytes, which t.TempDir can
// exceed.
func TempDir(tb testing.TB) string {
	tb.Helper()
	d, err := os.MkdirTemp("", "pgd-")
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { os.RemoveAll(d) })
	return filepath.Clean(d)
}
