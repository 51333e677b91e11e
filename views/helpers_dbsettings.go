package views

import "strconv"

func itoa(n int) string { return strconv.Itoa(n) }

// orDash shows a value that is not set as a dash.
func orDash(s string) string {
	if s == "" {
		return "—"
	}
	return s
}

// appliedUnknown says why the applied column is empty.
func appliedUnknown(deployed bool) string {
	if !deployed {
		return "Not deployed yet: the first deploy applies the saved settings"
	}
	return "Not read from the server yet"
}

// seconds renders a duration in seconds for a stat box: 0, 0.35, 12.
func seconds(s float64) string {
	switch {
	case s == 0:
		return "0"
	case s < 10:
		return strconv.FormatFloat(s, 'f', 2, 64)
	}
	return strconv.FormatFloat(s, 'f', 0, 64)
}

// millis renders microseconds as milliseconds for a stat box: 0.4, 12, 1250.
func millis(us int64) string {
	ms := float64(us) / 1000
	switch {
	case us == 0:
		return "0"
	case ms < 10:
		return strconv.FormatFloat(ms, 'f', 1, 64)
	}
	return strconv.FormatFloat(ms, 'f', 0, 64)
}
