package store_test

import (
	"context"
	"errors"
	"testing"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestAPITokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	u, err := st.CreateUser(ctx, "ops@example.com", "h", store.RoleAdmin)
	if err != nil {
		t.Fatal(err)
	}
	other, err := st.CreateUser(ctx, "other@example.com", "h", store.RoleViewer)
	if err != nil {
		t.Fatal(err)
	}

	hash := []byte("0123456789abcdef0123456789abcdef")
	tok, err := st.CreateAPIToken(ctx, u.ID, "deploy script", "pgd_abcdefgh", hash, nil)
	if err != nil {
		t.Fatal(err)
	}
	if tok.ID == 0 || tok.UserID != u.ID || tok.Name != "deploy script" || tok.Prefix != "pgd_abcdefgh" || tok.LastUsedAt != nil {
		t.Errorf("CreateAPIToken returned %+v", tok)
	}

	got, err := st.UserByTokenHash(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != u.ID || got.Role != store.RoleAdmin {
		t.Errorf("UserByTokenHash = %+v, want user %d", got, u.ID)
	}
	if _, err := st.UserByTokenHash(ctx, []byte("not a token")); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("UserByTokenHash(unknown) err = %v, want ErrNotFound", err)
	}

	ts, err := st.ListAPITokens(ctx, u.ID)
	if err != nil || len(ts) != 1 {
		t.Fatalf("ListAPITokens = %v, %v", ts, err)
	}
	if ts[0].LastUsedAt == nil {
		t.Error("using the token did not record last_used_at")
	}

	t.Run("another user cannot revoke it", func(t *testing.T) {
		if _, err := st.RevokeAPIToken(ctx, other.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("RevokeAPIToken by another user: err = %v, want ErrNotFound", err)
		}
		if _, err := st.UserByTokenHash(ctx, hash); err != nil {
			t.Errorf("token stopped working after a refused revoke: %v", err)
		}
	})

	t.Run("revoked tokens stop working", func(t *testing.T) {
		r, err := st.RevokeAPIToken(ctx, u.ID, tok.ID)
		if err != nil || r.ID != tok.ID {
			t.Fatalf("RevokeAPIToken = %+v, %v", r, err)
		}
		if _, err := st.UserByTokenHash(ctx, hash); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("UserByTokenHash after revoke: err = %v, want ErrNotFound", err)
		}
		if ts, err := st.ListAPITokens(ctx, u.ID); err != nil || len(ts) != 0 {
			t.Errorf("ListAPITokens after revoke = %v, %v; want none", ts, err)
		}
		if _, err := st.RevokeAPIToken(ctx, u.ID, tok.ID); !errors.Is(err, store.ErrNotFound) {
			t.Errorf("second revoke: err = %v, want ErrNotFound", err)
		}
	})
}
