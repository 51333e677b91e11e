package views

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Servers is the Servers page: every server with its load, the register
// form and a refused removal's message.
type Servers struct {
	Rows      []ServerRow
	CanChange bool
	CSRF      string
	// Register is the register form: what was typed (never the key) and
	// the message of each field that failed.
	Register Form
	// RemoveError says why a removal was refused.
	RemoveError string
	// Dialogs names the Remove confirmations on the page (see
	// DialogsSignature); the polled table sends it back, and the answer
	// replaces the confirmations only when it changed.
	Dialogs string
}

// DialogsSignature names the Remove confirmations rows need: one per
// registered server, and whether it holds environments (its confirmation
// then explains instead of removing).
func DialogsSignature(rows []ServerRow) string {
	var parts []string
	for _, r := range rows {
		if r.Builtin {
			continue
		}
		s := r.Name
		if len(r.Environments) > 0 {
			s += "+"
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, ",")
}

// ServerRow is one server as the Servers page shows it.
type ServerRow struct {
	Name       string
	Runtime    string // "local" or "docker"
	DockerHost string
	Builtin    bool
	Status     string // "online", "offline" or "unknown"
	Reason     string
	CheckedAt  *time.Time
	// Capacity is what the server holds (a zero field is not counted);
	// Used is what its environments take.
	Capacity     Resources
	Used         Resources
	Environments []string
}

// Resources are memory and storage in bytes and a number of CPUs.
type Resources struct {
	MemoryBytes  int64
	CPUs         int
	StorageBytes int64
}

// StatusLabel is the server's status in words.
func (r ServerRow) StatusLabel() string { return ServerStatusLabel(r.Status) }

// ServerStatusLabel is a server status in words: Online, Offline, Unknown
// (not checked yet).
func ServerStatusLabel(status string) string {
	switch status {
	case "online":
		return "Online"
	case "offline":
		return "Offline"
	}
	return "Unknown"
}

// serverTone is a server status's colour: green online, grey otherwise
// (as every Offline), the reason beside it in words.
func serverTone(status string) string {
	if status == "online" {
		return "ok"
	}
	return "muted"
}

// serverRuntimeLabel says how a server runs environments.
func serverRuntimeLabel(r ServerRow) string {
	if r.Runtime == "docker" {
		return "Docker"
	}
	return "Processes on this host"
}

// Size renders a memory or storage figure 1024-based, as plans and
// PGDECK_CAPACITY count them: 16 GB, 15.6 GB, 512 MB.
func Size(n int64) string {
	units := []string{"B", "kB", "MB", "GB", "TB", "PB"}
	f, i := float64(n), 0
	for f >= 1024 && i < len(units)-1 {
		f /= 1024
		i++
	}
	s := strconv.FormatFloat(f, 'f', 1, 64)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + units[i]
}

// resourceSize is Size, with nothing used as "0 GB" (the unit plans count
// in) rather than "0 B".
func resourceSize(n int64) string {
	if n == 0 {
		return "0 GB"
	}
	return Size(n)
}

// CPUs renders a number of CPUs: "1 CPU", "4 CPUs".
func CPUs(n int) string {
	if n == 1 {
		return "1 CPU"
	}
	return fmt.Sprintf("%d CPUs", n)
}

// envNames lists at most three environments, then how many more.
func envNames(names []string) string {
	if len(names) <= 3 {
		return strings.Join(names, ", ")
	}
	return strings.Join(names[:3], ", ") + fmt.Sprintf(" and %d more", len(names)-3)
}

// envNamesAll lists every environment.
func envNamesAll(names []string) string { return strings.Join(names, ", ") }
