package store

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// AuditEntry records who did what and when.
type AuditEntry struct {
	ID         int64     `db:"id"`
	At         time.Time `db:"at"`
	Actor      string    `db:"actor"`
	Action     string    `db:"action"`
	Target     string    `db:"target"`
	Detail     string    `db:"detail"`
	RemoteAddr string    `db:"remote_addr"`
}

// Audit appends an entry to the audit log.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO audit_log (actor, action, target, detail, remote_addr) VALUES ($1, $2, $3, $4, $5)`,
		e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr)
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Action, err)
	}
	return nil
}

// ListAudit returns the newest entries first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT id, at, actor, action, target, detail, remote_addr FROM audit_log
		ORDER BY at DESC, id DESC LIMIT $1`, limit)
	es, err := pgx.CollectRows(rows, pgx.RowToStructByName[AuditEntry])
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return es, nil
}
