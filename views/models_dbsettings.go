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

// Replica is the Read Replica card: what a replica needs, the Enable
// checkbox (part of the settings form) and the status widget.
type Replica struct {
	Name string
	// Known is false when the requirements could not be read (no
	// provisioner in this process).
	Known        bool
	Requirements []Requirement
	// Met: every requirement holds; the checkbox and the widget show.
	Met       bool
	CanChange bool
	// Enabled is the saved read_replica setting (the checkbox).
	Enabled bool
	Widget  ReplicaWidget
}

// ReplicaWidget is the Read Replica card's part that refreshes itself
// after each health check and when a job starts or ends.
type ReplicaWidget struct {
	Name      string
	CanChange bool
	CSRF      string
	// Enabled is saved on; Applied: the last redeploy applied it (Deploy
	// Replica is offered then).
	Enabled, Applied bool
	// Deployed: a replica instance exists (its port is recorded).
	Deployed bool
	// Status is not_deployed, deploying, online, lagging, offline or
	// error; Severity ok, warning or critical.
	Status   string
	Severity string
	Reason   string
	// Step is the running replica job's step.
	Step string
	// Busy: a job is queued or running (the buttons wait).
	Busy         bool
	LagBytes     *int64
	LagSeconds   *float64
	SafeWALBytes *int64
	WALStatus    string
	CheckedAt    time.Time
	// Detail and LogLine are what an Error comes from.
	Detail  string
	LogLine string
	Host    string
	Port    int
	Chart   LagChart
	// Thresholds, for the chart's legend.
	WarnBytes, CritBytes     int64
	WarnSeconds, CritSeconds float64
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
