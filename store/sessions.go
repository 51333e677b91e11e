package store

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Sessions keeps the web sessions (scs's CtxStore) in the sessions table.
// Expired rows are deleted by DeleteExpiredSessions, which the caller runs on
// its own schedule (serve runs it in a loop that stops with the server).
type Sessions struct{ s *Store }

// Sessions returns the store's session store.
func (s *Store) Sessions() Sessions { return Sessions{s: s} }

// FindCtx returns the data of an unexpired session.
func (ss Sessions) FindCtx(ctx context.Context, token string) ([]byte, bool, error) {
	var b []byte
	err := ss.s.Pool.QueryRow(ctx, `SELECT data FROM sessions WHERE token = $1 AND now() < expiry`, token).Scan(&b)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("store: find session: %w", err)
	}
	return b, true, nil
}

// CommitCtx adds or replaces a session.
func (ss Sessions) CommitCtx(ctx context.Context, token string, b []byte, expiry time.Time) error {
	_, err := ss.s.Pool.Exec(ctx, `INSERT INTO sessions (token, data, expiry) VALUES ($1, $2, $3)
		ON CONFLICT (token) DO UPDATE SET data = EXCLUDED.data, expiry = EXCLUDED.expiry`, token, b, expiry)
	if err != nil {
		return fmt.Errorf("store: commit session: %w", err)
	}
	return nil
}

// DeleteCtx removes a session.
func (ss Sessions) DeleteCtx(ctx context.Context, token string) error {
	if _, err := ss.s.Pool.Exec(ctx, `DELETE FROM sessions WHERE token = $1`, token); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// Find is FindCtx without a context (scs's Store; scs calls the Ctx ones).
func (ss Sessions) Find(token string) ([]byte, bool, error) {
	return ss.FindCtx(context.Background(), token)
}

// Commit is CommitCtx without a context.
func (ss Sessions) Commit(token string, b []byte, expiry time.Time) error {
	return ss.CommitCtx(context.Background(), token, b, expiry)
}

// Delete is DeleteCtx without a context.
func (ss Sessions) Delete(token string) error { return ss.DeleteCtx(context.Background(), token) }

// DeleteExpiredSessions removes the sessions past their expiry and says how
// many went.
func (s *Store) DeleteExpiredSessions(ctx context.Context) (int64, error) {
	tag, err := s.Pool.Exec(ctx, `DELETE FROM sessions WHERE expiry < now()`)
	if err != nil {
		return 0, fmt.Errorf("store: delete expired sessions: %w", err)
	}
	return tag.RowsAffected(), nil
}
