package views

import (
	"strconv"
	"strings"
	"time"
)

// replicaLabel is a replica status in words.
func replicaLabel(status string) string {
	switch status {
	case "online":
		return "Online"
	case "lagging":
		return "Lagging"
	case "offline":
		return "Offline"
	case "error":
		return "Error"
	case "deploying":
		return "Deploying"
	}
	return "Not deployed"
}

// replicaTone is a replica status's colour: green online, amber lagging
// or deploying, red error, grey offline or not deployed.
func replicaTone(status string) string {
	switch status {
	case "online":
		return "ok"
	case "lagging", "deploying":
		return "warn"
	case "error":
		return "bad"
	}
	return "muted"
}

// lagBytes humanises a byte figure; a dash when not measured.
func lagBytes(n *int64) string {
	if n == nil {
		return "—"
	}
	return Bytes(*n)
}

// rawBytes is a byte figure's exact value, for its tooltip.
func rawBytes(n *int64) string {
	if n == nil {
		return "Not measured"
	}
	return strconv.FormatInt(*n, 10) + " bytes"
}

// lagSeconds renders a lag in seconds; a dash when not measured.
func lagSeconds(s *float64) string {
	if s == nil {
		return "—"
	}
	return seconds(*s)
}

// checkedAgo is Last Checked: relative, a dash before the first check.
func checkedAgo(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return Ago(t)
}

// safeWALTitle explains the WAL headroom figure.
func safeWALTitle(w ReplicaWidget) string {
	if w.SafeWALBytes == nil {
		return "WAL the primary may still write before the replica's slot is lost: unlimited, or not read yet"
	}
	t := strconv.FormatInt(*w.SafeWALBytes, 10) + " bytes of WAL the primary may still write before the replica's slot is lost"
	if w.WALStatus != "" {
		t += " (slot " + w.WALStatus + ")"
	}
	return t
}

// KindLabel is a job kind as people read it: "deploy replica" for
// deploy_replica (the page capitalises it).
func KindLabel(kind string) string {
	return strings.ReplaceAll(kind, "_", " ")
}
