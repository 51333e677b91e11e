package monitor

import (
	"context"
	"encoding/json"
	"time"

	"pgdeck/store"
)

// Probe checks one component of an environment. The monitor runs every
// probe on every deployed environment each round, each check under its own
// timeout (ctx carries it); a probe returns what it observed and never
// stores anything itself. A check that runs out of time is recorded as an
// Error that keeps the last figures, marked stale, whatever the probe
// returned.
type Probe interface {
	// Component is the store.Component… this probe checks.
	Component() string
	// Check observes the component of env once.
	Check(ctx context.Context, env store.Environment) Result
}

// presence is implemented by probes that can tell from the environment's
// record alone whether it has their component (a pooler instance, say).
// The round then forgets an absent component without taking a check slot
// from the environments that have one.
type presence interface {
	// Present reports whether env has the component; when false, Check
	// would return an Absent result.
	Present(env store.Environment) bool
}

// Result is what one check observed, before confirmation.
type Result struct {
	// Absent means the environment has no such component (no replica
	// deployed, say): nothing is recorded and its stored health is
	// forgotten.
	Absent bool
	// Status is one of the component's store.Health… words.
	Status string
	// Reason says why, for any status but the healthy one.
	Reason string
	// Severity grades a replica's lag (store.Severity…); empty otherwise.
	Severity string
	// Figures is nil when the component could not be read.
	Figures *Figures
}

// Figures are what a successful check reads; each component fills its own.
type Figures struct {
	// A PostgreSQL server's (the primary's, the replica's).
	PGVersion       string
	DBSizeBytes     int64
	Connections     int
	MaxConnections  int
	ServerStartedAt *time.Time
	// A replica's lag; nil when not measured.
	LagBytes   *int64
	LagSeconds *float64
	// Details is a JSON object of figures only one component has (the
	// pooler's pools).
	Details json.RawMessage
}
