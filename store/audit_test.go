package store_test

import (
	"context"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestAudit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	if es, err := st.ListAudit(ctx, 10); err != nil || len(es) != 0 {
		t.Fatalf("ListAudit on a fresh store = %v, %v", es, err)
	}
	for _, e := range []store.AuditEntry{
		{Actor: "ada@example.com", Action: "login", RemoteAddr: "192.0.2.1"},
		{Actor: "ada@example.com", Action: "environment.create", Target: "shop", Detail: "odoo 18.0"},
		{Actor: "cli", Action: "user.create", Target: "bob@example.com", Detail: "viewer"},
	} {
		if err := st.Audit(ctx, e); err != nil {
			t.Fatal(err)
		}
	}

	es, err := st.ListAudit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range es {
		actions = append(actions, e.Action)
	}
	want := []string{"user.create", "environment.create", "login"}
	if len(actions) != len(want) {
		t.Fatalf("ListAudit actions = %v, want newest first %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Fatalf("ListAudit actions = %v, want newest first %v", actions, want)
		}
	}
	e := es[1]
	if e.Actor != "ada@example.com" || e.Target != "shop" || e.Detail != "odoo 18.0" || e.At.IsZero() || e.ID == 0 {
		t.Errorf("entry = %+v", e)
	}
	if es[2].RemoteAddr != "192.0.2.1" {
		t.Errorf("remote address = %q, want 192.0.2.1", es[2].RemoteAddr)
	}

	if es, err := st.ListAudit(ctx, 2); err != nil || len(es) != 2 || es[0].Action != "user.create" {
		t.Errorf("ListAudit(limit 2) = %v, %v", es, err)
	}
}

func TestAuditClipsCoalescesAndFilters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	huge := strings.Repeat("é", 1<<19) + "\x00\xff"
	if err := st.Audit(ctx, store.AuditEntry{Actor: "anonymous", Action: "login.failed", Target: huge, Detail: huge, RemoteAddr: "192.0.2.1"}); err != nil {
		t.Fatalf("a 1 MB target with NUL and invalid UTF-8 is refused: %v", err)
	}
	for range 50 {
		if err := st.AuditCoalesced(ctx, store.AuditEntry{Actor: "anonymous", Action: "login.rate_limited", Target: "x@y.z", RemoteAddr: "192.0.2.1", PeerAddr: "192.0.2.1"}, time.Minute); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.Audit(ctx, store.AuditEntry{Actor: "Ada@example.com", Action: "environment.create", Target: "shop"}); err != nil {
		t.Fatal(err)
	}
	es, err := st.ListAudit(ctx, 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(es) != 3 {
		t.Fatalf("%d entries, want 3 (the 50 rate-limited attempts coalesced into one)", len(es))
	}
	if es[1].Action != "login.rate_limited" || es[1].Repeats != 50 || es[1].LastAt == nil || es[1].PeerAddr != "192.0.2.1" {
		t.Errorf("coalesced entry = %+v, want 50 repeats", es[1])
	}
	if len(es[2].Target) > 254 || len(es[2].Detail) > 1024 || !utf8.ValidString(es[2].Target) || strings.Contains(es[2].Detail, "\x00") {
		t.Errorf("stored target %d bytes, detail %d bytes: not clipped", len(es[2].Target), len(es[2].Detail))
	}

	page, err := st.FindAudit(ctx, store.AuditFilter{Action: "login.", Limit: 10})
	if err != nil || len(page) != 2 {
		t.Errorf("filter login.: %d entries, %v; want 2", len(page), err)
	}
	page, err = st.FindAudit(ctx, store.AuditFilter{Actor: "ada@example.com", Limit: 10})
	if err != nil || len(page) != 1 || page[0].Target != "shop" {
		t.Errorf("filter by actor: %+v, %v", page, err)
	}
	page, err = st.FindAudit(ctx, store.AuditFilter{Before: es[0].ID, Limit: 1})
	if err != nil || len(page) != 1 || page[0].ID != es[1].ID {
		t.Errorf("next page after %d: %+v, %v", es[0].ID, page, err)
	}
}
