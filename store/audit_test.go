package store_test

import (
	"context"
	"testing"

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
