package store

import (
	"context"
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

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
	// PeerAddr is the address of the connection (the proxy, when one is trusted).
	PeerAddr string `db:"peer_addr"`
	// Repeats is how many identical entries this one stands for; LastAt is
	// when the newest of them happened.
	Repeats int        `db:"repeats"`
	LastAt  *time.Time `db:"last_at"`
}

// The longest each audit field is stored (in bytes): whatever a client sends
// ends up here, and the audit page must stay readable.
const (
	auditActorMax  = 254
	auditActionMax = 64
	auditTargetMax = 254
	auditDetailMax = 1024
	auditAddrMax   = 64
)

// Clip makes s valid UTF-8 without NUL bytes (PostgreSQL refuses both) and
// cuts it to at most max bytes on a character boundary, marking the cut with "…".
func Clip(s string, max int) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	if len(s) <= max {
		return s
	}
	cut := max - len("…")
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "…"
}

func (e AuditEntry) clipped() AuditEntry {
	e.Actor = Clip(e.Actor, auditActorMax)
	e.Action = Clip(e.Action, auditActionMax)
	e.Target = Clip(e.Target, auditTargetMax)
	e.Detail = Clip(e.Detail, auditDetailMax)
	e.RemoteAddr = Clip(e.RemoteAddr, auditAddrMax)
	e.PeerAddr = Clip(e.PeerAddr, auditAddrMax)
	return e
}

// Audit appends an entry to the audit log; every field is clipped to its maximum.
func (s *Store) Audit(ctx context.Context, e AuditEntry) error {
	e = e.clipped()
	_, err := s.Pool.Exec(ctx, `INSERT INTO audit_log (actor, action, target, detail, remote_addr, peer_addr) VALUES ($1, $2, $3, $4, $5, $6)`,
		e.Actor, e.Action, e.Target, e.Detail, e.RemoteAddr, e.PeerAddr)
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditCoalesced records an entry, or counts it into the newest entry with the
// same action and addresses made within window: a flood of refused attempts
// becomes one line with a count instead of pushing real events away.
func (s *Store) AuditCoalesced(ctx context.Context, e AuditEntry, window time.Duration) error {
	e = e.clipped()
	tag, err := s.Pool.Exec(ctx, `UPDATE audit_log SET repeats = repeats + 1, last_at = now()
		WHERE id = (SELECT id FROM audit_log WHERE action = $1 AND remote_addr = $2 AND peer_addr = $3
			AND at > now() - make_interval(secs => $4) ORDER BY id DESC LIMIT 1)`,
		e.Action, e.RemoteAddr, e.PeerAddr, window.Seconds())
	if err != nil {
		return fmt.Errorf("store: audit %s: %w", e.Action, err)
	}
	if tag.RowsAffected() == 1 {
		return nil
	}
	return s.Audit(ctx, e)
}

// AuditFilter selects a page of the audit log.
type AuditFilter struct {
	// Action, when set, keeps entries with this action or, ending in ".",
	// with this prefix ("login.").
	Action string
	// Actor, when set, keeps entries by this actor (case-insensitive).
	Actor string
	// Before, when set, keeps entries older than this id (the next page).
	Before int64
	// Limit is the page size.
	Limit int
}

// FindAudit returns a page of entries matching f, newest first.
func (s *Store) FindAudit(ctx context.Context, f AuditFilter) ([]AuditEntry, error) {
	var where []string
	var args []any
	if f.Action != "" {
		args = append(args, f.Action)
		if strings.HasSuffix(f.Action, ".") {
			where = append(where, fmt.Sprintf("starts_with(action, $%d)", len(args)))
		} else {
			where = append(where, fmt.Sprintf("action = $%d", len(args)))
		}
	}
	if f.Actor != "" {
		args = append(args, f.Actor)
		where = append(where, fmt.Sprintf("lower(actor) = lower($%d)", len(args)))
	}
	if f.Before > 0 {
		args = append(args, f.Before)
		where = append(where, fmt.Sprintf("id < $%d", len(args)))
	}
	q := `SELECT id, at, actor, action, target, detail, remote_addr, peer_addr, repeats, last_at FROM audit_log`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	args = append(args, f.Limit)
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT $%d", len(args))
	rows, _ := s.Pool.Query(ctx, q, args...)
	es, err := pgx.CollectRows(rows, pgx.RowToStructByName[AuditEntry])
	if err != nil {
		return nil, fmt.Errorf("store: list audit: %w", err)
	}
	return es, nil
}

// ListAudit returns the newest entries first.
func (s *Store) ListAudit(ctx context.Context, limit int) ([]AuditEntry, error) {
	return s.FindAudit(ctx, AuditFilter{Limit: limit})
}

// AuditActions returns the distinct actions recorded, for the filter.
func (s *Store) AuditActions(ctx context.Context) ([]string, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT DISTINCT action FROM audit_log ORDER BY action`)
	as, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("store: audit actions: %w", err)
	}
	return as, nil
}
