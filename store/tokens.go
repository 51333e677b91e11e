package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// APIToken is a bearer token for the JSON API; only its hash is stored.
type APIToken struct {
	ID         int64      `db:"id"`
	UserID     int64      `db:"user_id"`
	Name       string     `db:"name"`
	Prefix     string     `db:"prefix"`
	CreatedAt  time.Time  `db:"created_at"`
	LastUsedAt *time.Time `db:"last_used_at"`
	// ExpiresAt, when set, is when the token stops working.
	ExpiresAt *time.Time `db:"expires_at"`
}

// CreateAPIToken stores the hash of a new token for a user; expires may be nil (never).
func (s *Store) CreateAPIToken(ctx context.Context, userID int64, name, prefix string, hash []byte, expires *time.Time) (APIToken, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO api_tokens (user_id, name, prefix, token_hash, expires_at) VALUES ($1, $2, $3, $4, $5)
		RETURNING id, user_id, name, prefix, created_at, last_used_at, expires_at`, userID, name, prefix, hash, expires)
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIToken])
	if err != nil {
		return APIToken{}, fmt.Errorf("store: create api token: %w", err)
	}
	return t, nil
}

// ListAPITokens returns a user's tokens that are not revoked, newest first.
func (s *Store) ListAPITokens(ctx context.Context, userID int64) ([]APIToken, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT id, user_id, name, prefix, created_at, last_used_at, expires_at FROM api_tokens
		WHERE user_id = $1 AND revoked_at IS NULL ORDER BY created_at DESC, id DESC`, userID)
	ts, err := pgx.CollectRows(rows, pgx.RowToStructByName[APIToken])
	if err != nil {
		return nil, fmt.Errorf("store: list api tokens: %w", err)
	}
	return ts, nil
}

// RevokeAPIToken revokes one of a user's tokens.
func (s *Store) RevokeAPIToken(ctx context.Context, userID, tokenID int64) (APIToken, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE api_tokens SET revoked_at = now()
		WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL
		RETURNING id, user_id, name, prefix, created_at, last_used_at, expires_at`, tokenID, userID)
	t, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[APIToken])
	if err != nil {
		return APIToken{}, fmt.Errorf("store: revoke api token %d: %w", tokenID, notFound(err))
	}
	return t, nil
}

// UserByTokenHash returns the owner of a live token (not revoked, not
// expired, its account not disabled) and marks it used.
func (s *Store) UserByTokenHash(ctx context.Context, hash []byte) (User, error) {
	rows, _ := s.Pool.Query(ctx, `WITH t AS (
			UPDATE api_tokens SET last_used_at = now() WHERE token_hash = $1 AND revoked_at IS NULL
				AND (expires_at IS NULL OR expires_at > now())
				AND user_id IN (SELECT id FROM users WHERE disabled_at IS NULL)
			RETURNING user_id)
		SELECT u.id, u.email, u.password_hash, u.role, u.created_at, u.disabled_at, u.sessions_valid_after
		FROM users u JOIN t ON t.user_id = u.id`, hash)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("store: user by token: %w", notFound(err))
	}
	return u, nil
}
