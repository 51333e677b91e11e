package render

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Memory and storage sizes in bytes.
const (
	KiB int64 = 1 << 10
	MiB int64 = 1 << 20
	GiB int64 = 1 << 30
)

// Setting is the part of a pg_settings row that says what values a parameter
// takes. The running server's row is authoritative; StaticSettings holds
// PostgreSQL 15's rows for the parameters pgdeck tunes, for the page before a
// server exists.
type Setting struct {
	Name    string
	VarType string // bool, enum, integer, real, string
	// Unit is pg_settings.unit: "" or a base unit such as kB, 8kB, MB, B,
	// ms, s, min. MinVal and MaxVal are in that unit.
	Unit     string
	MinVal   string
	MaxVal   string
	EnumVals []string
	Context  string // postmaster, sighup, superuser, user, …
}

// ValueError is an operator's value that PostgreSQL would refuse or that does
// not fit the plan, with a message meant to be shown beside the field.
type ValueError struct {
	Name    string // the parameter, e.g. work_mem
	Message string // e.g. "use kB, MB or GB (e.g. 8MB)"
}

func (e *ValueError) Error() string { return e.Name + ": " + e.Message }

// FieldError is a message for one form field (the field's bare name: work_mem,
// pool_size; the API prefixes it with "parameters." or "pgbouncer.").
type FieldError struct {
	Field   string
	Message string
}

func (e FieldError) Error() string { return e.Field + ": " + e.Message }

// Memory units as PostgreSQL spells them (case-sensitive), in bytes.
var memoryUnits = []struct {
	name string
	size int64
}{{"TB", 1 << 40}, {"GB", 1 << 30}, {"MB", 1 << 20}, {"kB", 1 << 10}, {"B", 1}}

// Time units as PostgreSQL spells them, in microseconds.
var timeUnits = []struct {
	name string
	size int64
}{{"d", 86400e6}, {"h", 3600e6}, {"min", 60e6}, {"s", 1e6}, {"ms", 1e3}, {"us", 1}}

func memoryUnitSize(u string) (int64, bool) {
	for _, m := range memoryUnits {
		if m.name == u {
			return m.size, true
		}
	}
	return 0, false
}

func timeUnitSize(u string) (int64, bool) {
	for _, t := range timeUnits {
		if t.name == u {
			return t.size, true
		}
	}
	return 0, false
}

// baseUnit splits pg_settings.unit ("8kB", "kB", "MB", "ms", "s", "min")
// into its kind and its size in bytes or microseconds.
func baseUnit(unit string) (kind string, size int64, err error) {
	if unit == "" {
		return "", 1, nil
	}
	mult := int64(1)
	i := 0
	for i < len(unit) && unit[i] >= '0' && unit[i] <= '9' {
		i++
	}
	if i > 0 {
		n, perr := strconv.ParseInt(unit[:i], 10, 64)
		if perr != nil || n <= 0 {
			return "", 0, fmt.Errorf("render: unknown pg_settings unit %q", unit)
		}
		mult = n
	}
	if s, ok := memoryUnitSize(unit[i:]); ok {
		return "memory", mult * s, nil
	}
	if s, ok := timeUnitSize(unit[i:]); ok {
		return "time", mult * s, nil
	}
	return "", 0, fmt.Errorf("render: unknown pg_settings unit %q", unit)
}

// FormatBytes renders a size in bytes with the largest unit PostgreSQL knows
// that divides it exactly, as PGTune does: 1GB, 1536MB, 13617kB.
func FormatBytes(b int64) string {
	for _, m := range memoryUnits {
		if b != 0 && b%m.size == 0 {
			return strconv.FormatInt(b/m.size, 10) + m.name
		}
	}
	return strconv.FormatInt(b, 10) + "B"
}

// formatMicros renders a duration in microseconds with the largest time unit
// that divides it exactly.
func formatMicros(us int64) string {
	for _, t := range timeUnits {
		if us != 0 && us%t.size == 0 {
			return strconv.FormatInt(us/t.size, 10) + t.name
		}
	}
	return strconv.FormatInt(us, 10) + "us"
}

var (
	// A number as an operator types it: no hex or octal, no exponent with a
	// unit; PostgreSQL accepts more (strtol base 0), pgdeck keeps it plain.
	numberUnitRe = regexp.MustCompile(`^([+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+))\s*([A-Za-z]*)$`)
	realRe       = regexp.MustCompile(`^[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?$`)
)

// ParseValue checks an operator's value for a parameter against its
// pg_settings row, as PostgreSQL would, and returns it in canonical form
// (trimmed, no space before the unit, enum and bool spelled as PostgreSQL
// shows them) with its number in the row's base unit (0 for enum and string
// values, 1 or 0 for booleans). Two things are stricter than PostgreSQL:
// a size or a duration needs its unit (a bare "4096" for shared_buffers
// means 32MB to PostgreSQL, a trap), except 0 and -1, which mean off or
// automatic; and numbers are decimal only.
func ParseValue(s Setting, value string) (canonical string, base float64, err error) {
	v := strings.TrimSpace(value)
	bad := func(format string, a ...any) (string, float64, error) {
		return "", 0, &ValueError{Name: s.Name, Message: fmt.Sprintf(format, a...)}
	}
	if v == "" {
		return bad("enter a value (or reset it to the recommendation)")
	}
	if strings.ContainsFunc(v, func(r rune) bool { return r < 0x20 || r == 0x7f || r == '\'' || r == '"' || r == '\\' }) {
		return bad("quotes, backslashes and control characters are not allowed")
	}
	switch s.VarType {
	case "bool":
		b, ok := parseBool(v)
		if !ok {
			return bad("use on or off")
		}
		if b {
			return "on", 1, nil
		}
		return "off", 0, nil
	case "enum":
		for _, e := range s.EnumVals {
			if strings.EqualFold(e, v) {
				return e, 0, nil
			}
		}
		return bad("use one of %s", strings.Join(s.EnumVals, ", "))
	case "string":
		return v, 0, nil
	case "integer", "real":
		return parseNumber(s, v)
	}
	return "", 0, fmt.Errorf("render: %s: unknown pg_settings vartype %q", s.Name, s.VarType)
}

// ValidateOverride is ParseValue for a form: the canonical value, or an error
// (a *ValueError when the operator can fix it).
func ValidateOverride(s Setting, value string) (string, error) {
	c, _, err := ParseValue(s, value)
	return c, err
}

func parseNumber(s Setting, v string) (string, float64, error) {
	bad := func(format string, a ...any) (string, float64, error) {
		return "", 0, &ValueError{Name: s.Name, Message: fmt.Sprintf(format, a...)}
	}
	kind, unitSize, err := baseUnit(s.Unit)
	if err != nil {
		return "", 0, err
	}
	var num float64
	var canonical string
	if kind == "" {
		example := "e.g. 100"
		if s.VarType == "real" {
			example = "e.g. 1.1"
		}
		if !realRe.MatchString(v) || (s.VarType == "integer" && strings.ContainsAny(v, ".eE")) {
			if m := numberUnitRe.FindStringSubmatch(v); m != nil && m[2] != "" {
				return bad("takes a plain number without a unit (%s)", example)
			}
			if s.VarType == "integer" {
				return bad("takes a whole number (%s)", example)
			}
			return bad("takes a number (%s)", example)
		}
		num, _ = strconv.ParseFloat(v, 64)
		canonical = v
	} else {
		m := numberUnitRe.FindStringSubmatch(v)
		if m == nil {
			return bad("%s", unitHint(kind, s.Unit))
		}
		n, _ := strconv.ParseFloat(m[1], 64)
		unit := m[2]
		if unit == "" {
			if n != 0 && n != -1 {
				return bad("add a unit: %s", unitHint(kind, s.Unit))
			}
			num = n
			canonical = m[1]
		} else {
			var size int64
			var ok bool
			if kind == "memory" {
				size, ok = memoryUnitSize(unit)
			} else {
				size, ok = timeUnitSize(unit)
			}
			if !ok {
				if _, isMem := memoryUnitSize(unit); isMem && kind == "time" {
					return bad("is a duration, not a size: %s", unitHint(kind, s.Unit))
				}
				if _, isTime := timeUnitSize(unit); isTime && kind == "memory" {
					return bad("is a size, not a duration: %s", unitHint(kind, s.Unit))
				}
				if matchesFold(kind, unit) {
					return bad("units are case-sensitive: %s, not %q", unitHint(kind, s.Unit), unit)
				}
				return bad("%q is not a unit PostgreSQL knows: %s", unit, unitHint(kind, s.Unit))
			}
			num = n * float64(size) / float64(unitSize)
			canonical = m[1] + unit
		}
	}
	if s.VarType == "integer" {
		// PostgreSQL rounds a value given in a smaller unit to the base unit.
		num = math.RoundToEven(num)
	}
	if math.IsInf(num, 0) || math.IsNaN(num) {
		return bad("is out of range")
	}
	if lo, err := strconv.ParseFloat(s.MinVal, 64); err == nil && s.MinVal != "" && num < lo {
		return bad("%s is below PostgreSQL's minimum of %s", canonical, formatBase(kind, unitSize, lo))
	}
	if hi, err := strconv.ParseFloat(s.MaxVal, 64); err == nil && s.MaxVal != "" && num > hi {
		return bad("%s is above PostgreSQL's maximum of %s", canonical, formatBase(kind, unitSize, hi))
	}
	return canonical, num, nil
}

// matchesFold says whether unit is a known unit of kind spelled in the wrong case.
func matchesFold(kind, unit string) bool {
	if kind == "memory" {
		for _, m := range memoryUnits {
			if strings.EqualFold(m.name, unit) {
				return true
			}
		}
		return false
	}
	for _, t := range timeUnits {
		if strings.EqualFold(t.name, unit) {
			return true
		}
	}
	return false
}

// unitHint tells the operator which units to use, with an example that fits
// the parameter's base unit.
func unitHint(kind, unit string) string {
	if kind == "memory" {
		if unit == "MB" {
			return "use MB or GB (e.g. 1GB)"
		}
		return "use kB, MB or GB (e.g. 8MB)"
	}
	switch unit {
	case "min":
		return "use s, min, h or d (e.g. 5min)"
	case "s":
		return "use s, min or h (e.g. 30s)"
	}
	return "use ms, s or min (e.g. 200ms)"
}

// formatBase renders a number in a parameter's base unit for a message.
func formatBase(kind string, unitSize int64, n float64) string {
	switch kind {
	case "memory":
		if n > 0 && n*float64(unitSize) < math.MaxInt64/2 {
			return FormatBytes(int64(n) * unitSize)
		}
	case "time":
		if n > 0 && n*float64(unitSize) < math.MaxInt64/2 {
			return formatMicros(int64(n) * unitSize)
		}
	}
	return strconv.FormatFloat(n, 'g', -1, 64)
}

// parseBool accepts what PostgreSQL's parse_bool accepts: on, off, true,
// false, yes, no, 1, 0 and their unique prefixes ("t", "of"), in any case.
func parseBool(v string) (value, ok bool) {
	l := strings.ToLower(v)
	switch {
	case l == "1" || l == "on":
		return true, true
	case l == "0" || l == "of" || l == "off":
		return false, true
	case l == "" || l == "o":
		return false, false
	case strings.HasPrefix("true", l) || strings.HasPrefix("yes", l):
		return true, true
	case strings.HasPrefix("false", l) || strings.HasPrefix("no", l):
		return false, true
	}
	return false, false
}
