// Package views holds pgdeck's templ components and the view models they take.
// Components never touch the store: handlers build these models for them.
package views

import "time"

// Page is what every full page needs: title, the signed-in user, the CSRF
// token for forms and htmx, flash messages and the active navigation entry.
type Page struct {
	Title string
	User  *User
	CSRF  string
	Flash []Flash
	Nav   string
}

// User is the signed-in account as the layout shows it.
type User struct {
	Email     string
	Role      string
	CanChange bool
}

// IsOwner reports whether the user is an owner.
func (u *User) IsOwner() bool { return u != nil && u.Role == "owner" }

// IsAdmin reports whether the user may read admin pages (owners and admins).
func (u *User) IsAdmin() bool { return u != nil && (u.Role == "owner" || u.Role == "admin") }

// Flash is a one-time message shown at the top of the next page.
type Flash struct {
	Kind string // "success", "error" or "info"
	Text string
}

// Form carries what was typed and the message for each field that failed.
type Form struct {
	Values map[string]string
	Errors map[string]string
}

// Value returns what was typed into field.
func (f Form) Value(field string) string { return f.Values[field] }

// Error returns the message for field, or "".
func (f Form) Error(field string) string { return f.Errors[field] }

// Health is a database health badge: status word, reason and when it was
// checked. An Error's reason reads as a person would say it, with what to
// do and the technical detail apart.
type Health struct {
	Status string // "running", "stopped", "error", "not_deployed", "deploying"
	// Reason says what happened, in words.
	Reason string
	// Advice says what to do; Detail is the technical cause and the
	// server's last log lines.
	Advice    string
	Detail    string
	CheckedAt time.Time
	Stale     bool
}

// Label is the status in words, as the badge shows it.
func (h Health) Label() string {
	switch h.Status {
	case "running":
		return "Running"
	case "stopped":
		return "Stopped"
	case "error":
		return "Error"
	case "deploying":
		return "Deploying"
	case "checking":
		return "Checking"
	case "", "not_deployed":
		return "Not deployed"
	}
	return h.Status
}

// Tone is the colour family of the badge.
func (h Health) Tone() string {
	switch h.Status {
	case "running":
		return "ok"
	case "error":
		return "bad"
	case "deploying":
		return "warn"
	}
	return "muted"
}

// Environment is one row of the environments list and the header of its page.
type Environment struct {
	Name         string
	OdooVersion  string
	Stage        string
	Plan         string
	CreatedAt    time.Time
	Health       Health
	Deployed     bool
	DesiredState string
	// Server is the server the environment lives on.
	Server string
	// Backup is how old the newest good backup is (the list only).
	Backup BackupAge
}

// Job is a job as pages show it.
type Job struct {
	ID          int64
	EnvName     string
	Kind        string
	State       string
	Step        string
	Progress    int
	Error       string
	RequestedBy string
	CreatedAt   time.Time
	StartedAt   *time.Time
	FinishedAt  *time.Time
	Log         []JobLine
}

// Active reports whether the job is queued or running.
func (j Job) Active() bool { return j.State == "queued" || j.State == "running" }

// JobLine is one line of a job's log.
type JobLine struct {
	At   time.Time
	Line string
}

// AuditEntry is one row of the audit log.
type AuditEntry struct {
	At         time.Time
	Actor      string
	Action     string
	Target     string
	Detail     string
	RemoteAddr string
	// PeerAddr is the connection's address when it differs (a trusted proxy).
	PeerAddr string
	// Repeats counts coalesced identical entries; LastAt is the newest.
	Repeats int
	LastAt  *time.Time
}

// AuditPage is the audit log page: one page of entries and its filters.
type AuditPage struct {
	Entries []AuditEntry
	Actions []string
	Action  string
	Actor   string
	// Next is the query of the next (older) page, "" on the last page.
	Next string
	// First is true on the newest page.
	First bool
}

// UserRow is one account on the People page.
type UserRow struct {
	ID        int64
	Email     string
	Role      string
	Disabled  bool
	CreatedAt time.Time
	// Self is the signed-in owner's own row (no actions on it).
	Self bool
}

// Users is the People page.
type Users struct {
	Rows []UserRow
	// Form carries the password reset's message for the user ResetID.
	Form    Form
	ResetID int64
}

// APIToken is one row of the account page's token list.
type APIToken struct {
	ID         int64
	Name       string
	Prefix     string
	CreatedAt  time.Time
	LastUsedAt *time.Time
	ExpiresAt  *time.Time
}

// Account is the account page: the user's tokens and, once, a new token's secret.
type Account struct {
	Email    string
	Role     string
	Tokens   []APIToken
	NewToken string
	Form     Form
	// Expiries are the choices of the new token's lifetime.
	Expiries []Choice
}

// Choice is one option of a select.
type Choice struct{ Value, Label string }

// EnvironmentChoices are the options of the create form.
type EnvironmentChoices struct {
	Versions []Choice
	Stages   []Choice
	Plans    []Choice
	// Servers are "Automatic" (value "") and then every server with its
	// status and what it has free.
	Servers []Choice
}
