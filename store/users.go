package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Roles an account can have.
const (
	RoleOwner  = "owner"
	RoleAdmin  = "admin"
	RoleViewer = "viewer"
)

// User is an account of the panel.
type User struct {
	ID           int64     `db:"id"`
	Email        string    `db:"email"`
	PasswordHash string    `db:"password_hash"`
	Role         string    `db:"role"`
	CreatedAt    time.Time `db:"created_at"`
	// DisabledAt is set while the account may not sign in or use its tokens.
	DisabledAt *time.Time `db:"disabled_at"`
	// SessionsValidAfter ends every session signed in before it.
	SessionsValidAfter time.Time `db:"sessions_valid_after"`
}

// userColumns are the columns every query reading a User selects.
const userColumns = "id, email, password_hash, role, created_at, disabled_at, sessions_valid_after"

// Disabled reports whether the account is disabled.
func (u User) Disabled() bool { return u.DisabledAt != nil }

// CanChange reports whether the user may change anything (owners and admins).
func (u User) CanChange() bool { return u.Role == RoleOwner || u.Role == RoleAdmin }

// CountUsers returns how many accounts exist.
func (s *Store) CountUsers(ctx context.Context) (int, error) {
	var n int
	if err := s.Pool.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
		return 0, fmt.Errorf("store: count users: %w", err)
	}
	return n, nil
}

// CreateUser inserts an account; a duplicate email is ErrConflict.
func (s *Store) CreateUser(ctx context.Context, email, passwordHash, role string) (User, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, $3)
		RETURNING `+userColumns, email, passwordHash, role)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if isUniqueViolation(err) {
		return User{}, fmt.Errorf("store: create user %q: %w", email, ErrConflict)
	}
	if err != nil {
		return User{}, fmt.Errorf("store: create user %q: %w", email, err)
	}
	return u, nil
}

// CreateFirstOwner creates the owner account only if no account exists yet,
// so that two concurrent setup requests cannot both succeed.
func (s *Store) CreateFirstOwner(ctx context.Context, email, passwordHash string) (User, error) {
	var u User
	err := pgx.BeginFunc(ctx, s.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, "LOCK TABLE users IN EXCLUSIVE MODE"); err != nil {
			return err
		}
		var n int
		if err := tx.QueryRow(ctx, "SELECT count(*) FROM users").Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return ErrConflict
		}
		rows, _ := tx.Query(ctx, `INSERT INTO users (email, password_hash, role) VALUES ($1, $2, 'owner')
			RETURNING `+userColumns, email, passwordHash)
		var err error
		u, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
		return err
	})
	if err != nil {
		return User{}, fmt.Errorf("store: create first owner: %w", err)
	}
	return u, nil
}

// UserByEmail finds an account by email, case-insensitively.
func (s *Store) UserByEmail(ctx context.Context, email string) (User, error) {
	rows, _ := s.Pool.Query(ctx, "SELECT "+userColumns+` FROM users WHERE lower(email) = lower($1)`, email)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("store: user %q: %w", email, notFound(err))
	}
	return u, nil
}

// UserByID finds an account by id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	rows, _ := s.Pool.Query(ctx, "SELECT "+userColumns+` FROM users WHERE id = $1`, id)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("store: user %d: %w", id, notFound(err))
	}
	return u, nil
}

// ListUsers returns every account, oldest first.
func (s *Store) ListUsers(ctx context.Context) ([]User, error) {
	rows, _ := s.Pool.Query(ctx, "SELECT "+userColumns+" FROM users ORDER BY id")
	us, err := pgx.CollectRows(rows, pgx.RowToStructByName[User])
	if err != nil {
		return nil, fmt.Errorf("store: list users: %w", err)
	}
	return us, nil
}

// SetUserDisabled disables or enables an account; disabling also ends its
// sessions.
func (s *Store) SetUserDisabled(ctx context.Context, id int64, disabled bool) (User, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE users SET
			disabled_at = CASE WHEN $2 THEN coalesce(disabled_at, now()) END,
			sessions_valid_after = CASE WHEN $2 THEN clock_timestamp() ELSE sessions_valid_after END
		WHERE id = $1 RETURNING `+userColumns, id, disabled)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("store: disable user %d: %w", id, notFound(err))
	}
	return u, nil
}

// SetUserPassword replaces an account's password hash and ends its sessions.
func (s *Store) SetUserPassword(ctx context.Context, id int64, passwordHash string) (User, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE users SET password_hash = $2, sessions_valid_after = clock_timestamp()
		WHERE id = $1 RETURNING `+userColumns, id, passwordHash)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("store: set password of user %d: %w", id, notFound(err))
	}
	return u, nil
}

// EndUserSessions ends every session the account has signed in so far.
func (s *Store) EndUserSessions(ctx context.Context, id int64) (User, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE users SET sessions_valid_after = clock_timestamp()
		WHERE id = $1 RETURNING `+userColumns, id)
	u, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[User])
	if err != nil {
		return User{}, fmt.Errorf("store: end sessions of user %d: %w", id, notFound(err))
	}
	return u, nil
}
