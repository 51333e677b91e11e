package store_test

import (
	"context"
	"testing"
	"time"

	"github.com/alexedwards/scs/v2"

	"pgdeck/store/storetest"
)

func TestSessions(t *testing.T) {
	ctx := context.Background()
	st := storetest.New(t)
	var ss scs.CtxStore = st.Sessions()
	if err := ss.CommitCtx(ctx, "live", []byte("a"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ss.CommitCtx(ctx, "live", []byte("b"), time.Now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := ss.CommitCtx(ctx, "old", []byte("x"), time.Now().Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if b, ok, err := ss.FindCtx(ctx, "live"); err != nil || !ok || string(b) != "b" {
		t.Errorf("find live = %q, %v, %v; want the replaced data", b, ok, err)
	}
	if _, ok, err := ss.FindCtx(ctx, "old"); err != nil || ok {
		t.Errorf("an expired session was found: %v, %v", ok, err)
	}
	if n, err := st.DeleteExpiredSessions(ctx); err != nil || n != 1 {
		t.Errorf("DeleteExpiredSessions = %d, %v; want 1", n, err)
	}
	if err := ss.DeleteCtx(ctx, "live"); err != nil {
		t.Fatal(err)
	}
	var left int
	if err := st.Pool.QueryRow(ctx, "SELECT count(*) FROM sessions").Scan(&left); err != nil || left != 0 {
		t.Errorf("sessions left: %d, %v", left, err)
	}
}
