package monitor

import (
	"time"

	"pgdeck/store"
)

// state is what the monitor remembers of one component between checks.
type state struct {
	// stored is the health row as last written; nil before the first check.
	stored *store.Health
	// pending is a status observed but not yet confirmed.
	pending pending
}

// pending is a status observed and how many consecutive checks observed it.
type pending struct {
	status string
	count  int
}

// confirm is the confirmation rule, applied to one check of a component:
// given the stored health (nil before the first check), the status pending
// confirmation and what the check observed, it returns the health to store
// and the new pending status.
//
//   - The first check ever is stored as observed.
//   - A check that agrees with the stored status stores its reason and
//     severity, and drops any pending change.
//   - Otherwise the status (with its reason and severity) changes only once
//     need consecutive checks observed the same new status; until then the
//     stored ones are kept.
//   - CheckedAt and DurationMS follow every check; the figures too, unless
//     the check could not read them: then the last ones are kept and marked
//     stale (not when there never were any).
//
// The result has no EnvironmentID or Component: the caller sets them.
func confirm(prev *store.Health, p pending, obs Result, need int, at time.Time, elapsed time.Duration) (store.Health, pending) {
	h := store.Health{CheckedAt: at, DurationMS: int(elapsed.Milliseconds())}
	observed := func() { h.Status, h.Reason, h.Severity = obs.Status, obs.Reason, obs.Severity }
	switch {
	case prev == nil:
		observed()
		p = pending{}
	case obs.Status == prev.Status:
		observed()
		p = pending{}
	default:
		if obs.Status == p.status {
			p.count++
		} else {
			p = pending{status: obs.Status, count: 1}
		}
		if p.count >= need {
			observed()
			p = pending{}
		} else {
			h.Status, h.Reason, h.Severity = prev.Status, prev.Reason, prev.Severity
		}
	}

	if f := obs.Figures; f != nil {
		h.FiguresAt = &at
		h.PGVersion, h.DBSizeBytes, h.Connections, h.MaxConnections = f.PGVersion, f.DBSizeBytes, f.Connections, f.MaxConnections
		h.ServerStartedAt, h.LagBytes, h.LagSeconds, h.Details = f.ServerStartedAt, f.LagBytes, f.LagSeconds, f.Details
	} else if prev != nil {
		h.FiguresAt = prev.FiguresAt
		h.PGVersion, h.DBSizeBytes, h.Connections, h.MaxConnections = prev.PGVersion, prev.DBSizeBytes, prev.Connections, prev.MaxConnections
		h.ServerStartedAt, h.LagBytes, h.LagSeconds, h.Details = prev.ServerStartedAt, prev.LagBytes, prev.LagSeconds, prev.Details
		h.Stale = prev.FiguresAt != nil
	}
	return h, p
}
