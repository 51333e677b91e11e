package store_test

import (
	"context"
	"errors"
	"testing"
	"time"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestUsers(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	if n, err := st.CountUsers(ctx); err != nil || n != 0 {
		t.Fatalf("CountUsers on a fresh store = %d, %v; want 0", n, err)
	}
	u, err := st.CreateUser(ctx, "Ada@Example.com", "hash-1", store.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	if u.ID == 0 || u.Email != "Ada@Example.com" || u.Role != store.RoleAdmin || u.PasswordHash != "hash-1" || u.CreatedAt.IsZero() {
		t.Errorf("CreateUser returned %+v", u)
	}
	if !u.CanChange() {
		t.Error("an admin cannot change anything")
	}

	t.Run("duplicate email differing in case is a conflict", func(t *testing.T) {
		for _, email := range []string{"Ada@Example.com", "ada@example.com", "ADA@EXAMPLE.COM"} {
			_, err := st.CreateUser(ctx, email, "hash-2", store.RoleViewer)
			if !errors.Is(err, store.ErrConflict) {
				t.Errorf("CreateUser(%q) err = %v, want ErrConflict", email, err)
			}
		}
		if n, _ := st.CountUsers(ctx); n != 1 {
			t.Errorf("CountUsers = %d after refused duplicates, want 1", n)
		}
	})

	t.Run("UserByEmail ignores case", func(t *testing.T) {
		for _, email := range []string{"ada@example.com", "ADA@example.COM", "Ada@Example.com"} {
			got, err := st.UserByEmail(ctx, email)
			if err != nil {
				t.Errorf("UserByEmail(%q): %v", email, err)
				continue
			}
			if got.ID != u.ID {
				t.Errorf("UserByEmail(%q) = user %d, want %d", email, got.ID, u.ID)
			}
		}
	})

	t.Run("unknown accounts are ErrNotFound", func(t *testing.T) {
		if _, err := st.UserByEmail(ctx, "nobody@example.com"); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByEmail(unknown) err = %v, want ErrNotFound", err)
		}
		if _, err := st.UserByID(ctx, u.ID+1000); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByID(unknown) err = %v, want ErrNotFound", err)
		}
		got, err := st.UserByID(ctx, u.ID)
		if err != nil || got.Email != u.Email {
			t.Errorf("UserByID(%d) = %+v, %v", u.ID, got, err)
		}
	})

	t.Run("roles are checked by the database", func(t *testing.T) {
		if _, err := st.CreateUser(ctx, "root@example.com", "h", "root"); err == nil {
			t.Error("CreateUser with role root succeeded")
		}
	})

	t.Run("viewers cannot change anything", func(t *testing.T) {
		v, err := st.CreateUser(ctx, "viewer@example.com", "h", store.RoleViewer)
		if err != nil {
			t.Fatal(err)
		}
		if v.CanChange() {
			t.Error("a viewer can change things")
		}
	})
}

func TestCreateFirstOwner(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	owner, err := st.CreateFirstOwner(ctx, "owner@example.com", "h")
	if err != nil {
		t.Fatal(err)
	}
	if owner.Role != store.RoleOwner {
		t.Errorf("first owner has role %q, want owner", owner.Role)
	}
	if _, err := st.CreateFirstOwner(ctx, "second@example.com", "h"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("second CreateFirstOwner err = %v, want ErrConflict", err)
	}
	if n, _ := st.CountUsers(ctx); n != 1 {
		t.Errorf("CountUsers = %d, want 1", n)
	}
	if _, err := st.UserByEmail(ctx, "second@example.com"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("the refused owner exists: err = %v", err)
	}
}

func TestCreateFirstOwnerRefusedOnceAnyAccountExists(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	if _, err := st.CreateUser(ctx, "viewer@example.com", "h", store.RoleViewer); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateFirstOwner(ctx, "owner@example.com", "h"); !errors.Is(err, store.ErrConflict) {
		t.Errorf("CreateFirstOwner with an account present: err = %v, want ErrConflict", err)
	}
}

func TestCreateFirstOwnerConcurrently(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	const n = 8
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := st.CreateFirstOwner(ctx, "owner"+string(rune('a'+i))+"@example.com", "h")
			errs <- err
		}()
	}
	ok := 0
	for range n {
		err := <-errs
		switch {
		case err == nil:
			ok++
		case !errors.Is(err, store.ErrConflict):
			t.Errorf("CreateFirstOwner: unexpected error %v", err)
		}
	}
	if ok != 1 {
		t.Errorf("%d concurrent CreateFirstOwner calls succeeded, want exactly 1", ok)
	}
	if c, _ := st.CountUsers(ctx); c != 1 {
		t.Errorf("CountUsers = %d, want 1", c)
	}
}

func TestUserLifecycle(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	u, err := st.CreateUser(ctx, "eve@example.com", "hash", store.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}
	if u.Disabled() || !u.SessionsValidAfter.Before(u.CreatedAt) {
		t.Fatalf("new user = %+v", u)
	}
	hash := []byte("0123456789abcdef0123456789abcdef")
	if _, err := st.CreateAPIToken(ctx, u.ID, "t", "pgd_x", hash, nil); err != nil {
		t.Fatal(err)
	}
	d, err := st.SetUserDisabled(ctx, u.ID, true)
	if err != nil || !d.Disabled() || !d.SessionsValidAfter.After(u.CreatedAt) {
		t.Fatalf("disable = %+v, %v", d, err)
	}
	if _, err := st.UserByTokenHash(ctx, hash); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("a disabled account's token works: %v", err)
	}
	if e, err := st.SetUserDisabled(ctx, u.ID, false); err != nil || e.Disabled() {
		t.Fatalf("enable = %+v, %v", e, err)
	}
	if _, err := st.UserByTokenHash(ctx, hash); err != nil {
		t.Errorf("the token does not work after enabling: %v", err)
	}
	p, err := st.SetUserPassword(ctx, u.ID, "new-hash")
	if err != nil || p.PasswordHash != "new-hash" || !p.SessionsValidAfter.After(d.SessionsValidAfter) {
		t.Errorf("set password = %+v, %v", p, err)
	}
	e, err := st.EndUserSessions(ctx, u.ID)
	if err != nil || !e.SessionsValidAfter.After(p.SessionsValidAfter) {
		t.Errorf("end sessions = %+v, %v", e, err)
	}
	past := time.Now().Add(-time.Minute)
	hash2 := []byte("fedcba9876543210fedcba9876543210")
	if _, err := st.CreateAPIToken(ctx, u.ID, "old", "pgd_y", hash2, &past); err != nil {
		t.Fatal(err)
	}
	if _, err := st.UserByTokenHash(ctx, hash2); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("an expired token works: %v", err)
	}
	if _, err := st.EndUserSessions(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("end sessions of a missing user: %v", err)
	}
}
