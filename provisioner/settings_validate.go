package provisioner

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// SettingsUpdate is a change to an environment's saved database settings,
// as the API's PUT and the page's form send it: any subset.
type SettingsUpdate struct {
	// Parameters maps a parameter to its new override; nil (or an empty
	// string, what an emptied form field sends) resets it to the
	// recommendation.
	Parameters map[string]*string
	// PgBouncer changes the fields it names; nil leaves PgBouncer alone.
	PgBouncer *PoolerUpdate
	// ReadReplica turns the read replica on or off; nil leaves it.
	ReadReplica *bool
}

// PoolerUpdate names the PgBouncer fields an update changes; nil fields
// stay as saved.
type PoolerUpdate struct {
	Enabled       *bool
	PoolSize      *int
	PoolMode      *string
	MaxClientConn *int
}

// MaxValueLength bounds an override's text: PostgreSQL's values for the
// tuned parameters are a number and a unit, far shorter.
const MaxValueLength = 64

// SettingsInvalidError is an update with values that cannot be saved: one
// message per field, keyed as the API names them (parameters.work_mem,
// pgbouncer.pool_size, read_replica).
type SettingsInvalidError struct {
	Fields map[string]string
}

func (e *SettingsInvalidError) Error() string {
	keys := slices.Sorted(maps.Keys(e.Fields))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + e.Fields[k]
	}
	return "invalid settings: " + strings.Join(parts, "; ")
}

// PlanGateError is an update that turns on (or changes) something the
// environment's plan does not include; Reason says so in words.
type PlanGateError struct {
	// Field is what the update asked for: pgbouncer or read_replica.
	Field  string
	Reason string
}

func (e *PlanGateError) Error() string { return e.Field + ": " + e.Reason }

// ApplySettingsUpdate returns saved with u applied, after checking u
// against env's plan and the server's pg_settings rows (server: the
// primary's read-back rows by name; a parameter without one is checked
// against PostgreSQL 15's, render.StaticSetting). Overrides are stored in
// canonical form (ValidateOverride's). It fails with a *PlanGateError when
// u turns on or changes PgBouncer or turns on the read replica on a plan
// that does not allow them, else with a *SettingsInvalidError naming every
// bad field (unknown parameter, wrong unit, out of PostgreSQL's range, over
// the plan's memory, PgBouncer's pool against the effective
// max_connections). saved itself is never changed.
func ApplySettingsUpdate(env store.Environment, saved store.DatabaseSettings, u SettingsUpdate, server map[string]store.ServerSetting) (store.DatabaseSettings, error) {
	res, err := render.PlanResources(env.Plan)
	if err != nil {
		return saved, err
	}
	poolerAllowed, poolerReason := render.PlanAllowsPooler(env.Plan)
	if u.PgBouncer != nil && !poolerAllowed && poolerChanged(saved.PgBouncer, *u.PgBouncer) {
		return saved, &PlanGateError{Field: "pgbouncer", Reason: poolerReason}
	}
	if u.ReadReplica != nil && *u.ReadReplica {
		if ok, reason := render.PlanAllowsReplica(env.Plan); !ok {
			return saved, &PlanGateError{Field: "read_replica", Reason: reason}
		}
	}

	next := saved
	next.Parameters = maps.Clone(saved.Parameters)
	if next.Parameters == nil {
		next.Parameters = map[string]string{}
	}
	fields := map[string]string{}
	for _, name := range slices.Sorted(maps.Keys(u.Parameters)) {
		key := "parameters." + name
		static, ok := render.StaticSetting(name)
		if !ok {
			fields[key] = fmt.Sprintf("Unknown parameter %s: pgdeck tunes %s.", clip(name), strings.Join(render.TunedParameters(), ", "))
			continue
		}
		v := u.Parameters[name]
		if v == nil || strings.TrimSpace(*v) == "" {
			delete(next.Parameters, name)
			continue
		}
		if utf8.RuneCountInString(*v) > MaxValueLength {
			fields[key] = fmt.Sprintf("Use at most %d characters.", MaxValueLength)
			continue
		}
		canonical, msg, err := validateParameter(static, server, *v)
		if err != nil {
			return saved, err
		}
		if msg != "" {
			fields[key] = msg
			continue
		}
		next.Parameters[name] = canonical
	}
	// The plan's memory rules read the overrides as they would be saved;
	// a field already refused keeps its own message.
	for _, fe := range render.CheckPlanMemory(res, next.Parameters) {
		if key := "parameters." + fe.Field; fields[key] == "" {
			fields[key] = sentence(fe.Message)
		}
	}

	// On a plan without PgBouncer an update that got past the gate
	// changes nothing: what is saved stays as it is.
	if u.PgBouncer != nil && poolerAllowed {
		p := u.PgBouncer
		if p.Enabled != nil {
			next.PgBouncer.Enabled = *p.Enabled
		}
		if p.PoolSize != nil {
			next.PgBouncer.PoolSize = *p.PoolSize
		}
		if p.PoolMode != nil {
			next.PgBouncer.PoolMode = strings.TrimSpace(*p.PoolMode)
		}
		if p.MaxClientConn != nil {
			next.PgBouncer.MaxClientConn = *p.MaxClientConn
		}
	}
	// PgBouncer's settings are checked when they change or when PgBouncer
	// is on (a lower max_connections may leave its pool too large); on a
	// plan without PgBouncer they cannot change and are never applied.
	if poolerAllowed && (u.PgBouncer != nil || next.PgBouncer.Enabled) {
		pool := EffectivePooler(next.PgBouncer)
		// A given 0 is checked as 0, not taken for "the default".
		if p := u.PgBouncer; p != nil {
			if p.PoolSize != nil {
				pool.PoolSize = *p.PoolSize
			}
			if p.MaxClientConn != nil {
				pool.MaxClientConn = *p.MaxClientConn
			}
			if p.PoolMode != nil {
				pool.PoolMode = next.PgBouncer.PoolMode
			}
		}
		resolved, err := ResolveSettings(env, next)
		if err != nil {
			return saved, err
		}
		for _, fe := range render.ValidatePoolerSettings(pool, MaxConnectionsOf(resolved.PostgreSQLConf)) {
			fields["pgbouncer."+fe.Field] = sentence(fe.Message)
		}
	}
	if u.ReadReplica != nil {
		next.ReadReplica = *u.ReadReplica
	}
	if len(fields) > 0 {
		return saved, &SettingsInvalidError{Fields: fields}
	}
	return next, nil
}

// validateParameter checks one override against the server's pg_settings
// row when there is one (its bounds and unit are the truth), else against
// PostgreSQL 15's. It returns the canonical value, or the message for the
// field; err only for a row pgdeck cannot read at all.
func validateParameter(static render.Setting, server map[string]store.ServerSetting, value string) (string, string, error) {
	setting := static
	row, fromServer := server[static.Name]
	if fromServer && row.VarType != "" {
		setting = render.Setting{Name: static.Name, VarType: row.VarType, Unit: row.Unit, MinVal: row.MinVal,
			MaxVal: row.MaxVal, EnumVals: row.EnumVals, Context: row.Context}
	}
	canonical, err := render.ValidateOverride(setting, value)
	var ve *render.ValueError
	switch {
	case errors.As(err, &ve):
		return "", sentence(ve.Message), nil
	case err != nil && fromServer:
		// A read-back row pgdeck does not understand (a unit or type of
		// another version): PostgreSQL 15's row still says what the value
		// must look like.
		return validateParameter(static, nil, value)
	case err != nil:
		return "", "", err
	}
	return canonical, "", nil
}

// EffectivePooler is saved PgBouncer settings with the defaults in the
// fields never set (as ResolveSettings fills them, before the plan's gate).
func EffectivePooler(s store.PoolerSettings) render.PoolerSettings {
	p := render.DefaultPoolerSettings()
	p.Enabled = s.Enabled
	if s.PoolSize > 0 {
		p.PoolSize = s.PoolSize
	}
	if s.PoolMode != "" {
		p.PoolMode = s.PoolMode
	}
	if s.MaxClientConn > 0 {
		p.MaxClientConn = s.MaxClientConn
	}
	return p
}

// poolerChanged says whether u changes the effective PgBouncer settings:
// sending the values already in effect changes nothing.
func poolerChanged(saved store.PoolerSettings, u PoolerUpdate) bool {
	cur := EffectivePooler(saved)
	return u.Enabled != nil && *u.Enabled != cur.Enabled ||
		u.PoolSize != nil && *u.PoolSize != cur.PoolSize ||
		u.PoolMode != nil && strings.TrimSpace(*u.PoolMode) != cur.PoolMode ||
		u.MaxClientConn != nil && *u.MaxClientConn != cur.MaxClientConn
}

// sentence makes a message read as one beside a field: a capital first
// letter and a full stop.
func sentence(s string) string {
	s = strings.TrimSpace(s)
	if s == "" {
		return s
	}
	// A message that starts with a parameter's name or a value keeps it
	// as written (work_mem, 8GB).
	first, _, _ := strings.Cut(s, " ")
	if !strings.ContainsAny(first, "_0123456789\"") {
		r, n := utf8.DecodeRuneInString(s)
		s = string(unicode.ToUpper(r)) + s[n:]
	}
	if !strings.HasSuffix(s, ".") {
		s += "."
	}
	return s
}

// clip shortens a name echoed in a message.
func clip(s string) string {
	if utf8.RuneCountInString(s) > 64 {
		return strconv.Quote(string([]rune(s)[:64]) + "…")
	}
	return strconv.Quote(s)
}
