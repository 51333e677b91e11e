package views

import "time"

// DatabaseSettings is Settings → Database: its three cards.
type DatabaseSettings struct {
	Name         string
	Optimization Optimization
	Pooling      Pooling
	Replica      Replica
}

// Optimization is the PostgreSQL Optimization card: the tuned parameters
// and the PgBouncer row, in one form.
type Optimization struct {
	Name string
	// CanChange shows the inputs and Save Settings (viewers read only).
	CanChange bool
	CSRF      string
	// Deployed: the applied column has something to say.
	Deployed bool
	Params   []ParameterRow
	Pooler   PoolerForm
	// Form holds what was typed (by field: parameters.work_mem,
	// pgbouncer.pool_size, …) and the messages of a refused save.
	Form Form
	// Saved is what the last save says ("Saved. Redeploy to apply.").
	Saved string
}

// ParameterRow is one tuned parameter.
type ParameterRow struct {
	Name        string
	Recommended string
	// Rule says how the recommendation was reached (a tooltip).
	Rule string
	// Context is pg_settings.context; Restart when a change restarts
	// PostgreSQL (postmaster), else it takes a reload.
	Context string
	Restart bool
	// Saved is the operator's override; "" when there is none.
	Saved string
	// Applied is the running server's value (SHOW); "" until read back.
	Applied string
	// Differs: the running value is not what a redeploy would apply.
	Differs bool
	// Resolved is what a redeploy would apply.
	Resolved string
	// PendingRestart: the server has the value in its files but needs a
	// restart to use it.
	PendingRestart bool
}

// Field is the form field of the row's override.
func (r ParameterRow) Field() string { return "parameters." + r.Name }

// PoolerForm is the PgBouncer row of the Optimization card: the saved
// settings with the defaults filled in.
type PoolerForm struct {
	// Allowed is false below pro: the row is disabled, Reason says why.
	Allowed       bool
	Reason        string
	Enabled       bool
	PoolSize      int
	PoolMode      string
	MaxClientConn int
	// MaxPoolSize is the largest pool the effective max_connections leaves.
	MaxPoolSize int
}

// Pooling is the Connection pooling card: PgBouncer's figures, refreshed
// after every health check.
type Pooling struct {
	Name string
	// Allowed is false below pro; Reason says why.
	Allowed bool
	Reason  string
	// Running: a pooler is deployed (PgBouncer applied). Status is its
	// health status word (running, stopped, error, checking).
	Running bool
	Status  Health
	// HasFigures: the monitor has read PgBouncer's console.
	HasFigures     bool
	ClActive       int
	ClWaiting      int
	SvActive       int
	SvIdle         int
	MaxWaitSeconds float64
	AvgQueryMicros int64
	CheckedAt      time.Time
	// Hints are the sizing hint's sentences.
	Hints []string
}

// Replica is the Read Replica card: what a replica needs.
type Replica struct {
	Requirements []Requirement
}

// Requirement is one condition of a feature, met or not, with its reason.
type Requirement struct {
	Name   string // plan, odoo_version, quota
	Label  string
	Met    bool
	Reason string
}

// PendingNotice lists what waits for a redeploy, under the tabs of every
// environment tab; empty, it shows nothing (and still refreshes).
type PendingNotice struct {
	Name    string
	Changes []PendingChange
	// CanChange shows the Redeploy button; Busy disables it while a job
	// is queued or running.
	CanChange bool
	Busy      bool
	CSRF      string
	// OOB renders it for an out-of-band swap (after a save).
	OOB bool
}

// PendingChange is one line of the notice.
type PendingChange struct {
	Name     string
	Old, New string
	Restart  bool
}
