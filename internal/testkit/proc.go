// Package testkit holds what the tests of every pgdeck package share for
// real processes: reading /proc, finding the PostgreSQL processes working
// under a folder, stopping the ones a test left running, free TCP ports and
// a bounded wait for a condition. Only tests and test-support packages
// import it; it imports nothing of pgdeck, so that any package's internal
// tests may use it.
package testkit

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// Proc is what /proc/<pid>/stat says about one process.
type Proc struct {
	PID   int
	Name  string // the command name (comm), e.g. "postgres"
	State byte   // R, S, D, Z (zombie), X (dead), …
	PPID  int
}

// Live reports whether the process is neither a zombie nor dead.
func (p Proc) Live() bool { return p.State != 'Z' && p.State != 'X' }

// Stat reads a process's name, state and parent; ok is false when the
// process does not exist (any more).
func Stat(pid int) (p Proc, ok bool) {
	raw, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return Proc{}, false
	}
	// The name is in parentheses and may itself hold spaces or ')'.
	open, closeIdx := bytes.IndexByte(raw, '('), bytes.LastIndexByte(raw, ')')
	if open < 0 || closeIdx < open {
		return Proc{}, false
	}
	f := strings.Fields(string(raw[closeIdx+1:]))
	if len(f) < 2 {
		return Proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	return Proc{PID: pid, Name: string(raw[open+1 : closeIdx]), State: f[0][0], PPID: ppid}, true
}

// Alive reports whether pid is a live process (not gone, not a zombie).
func Alive(pid int) bool {
	p, ok := Stat(pid)
	return ok && p.Live()
}

// Cwd returns the working directory of pid ("" when it cannot be read); a
// folder deleted under the process is still reported by its old path.
func Cwd(pid int) string {
	cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
	if err != nil {
		return ""
	}
	return strings.TrimSuffix(cwd, " (deleted)")
}

// within reports whether path is dir or below it.
func within(path, dir string) bool {
	return path != "" && (path == dir || strings.HasPrefix(path, dir+"/"))
}

// WorksIn reports whether pid's working directory is dir or below it.
func WorksIn(pid int, dir string) bool { return within(Cwd(pid), dir) }

// Under reports whether pid works in dir (or below) or names a path inside
// dir on its command line; a reused pid of an unrelated process is not.
func Under(pid int, dir string) bool {
	if WorksIn(pid, dir) {
		return true
	}
	cmdline, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "cmdline"))
	return err == nil && bytes.Contains(cmdline, []byte(dir+"/"))
}

// pids lists the numeric entries of /proc.
func pids() []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		if pid, err := strconv.Atoi(e.Name()); err == nil {
			out = append(out, pid)
		}
	}
	return out
}

// ProcessesUnder lists the live processes named one of names (any name when
// none is given) that are Under dir.
func ProcessesUnder(dir string, names ...string) []int {
	var out []int
	for _, pid := range pids() {
		p, ok := Stat(pid)
		if !ok || !p.Live() || (len(names) > 0 && !slices.Contains(names, p.Name)) {
			continue
		}
		if Under(pid, dir) {
			out = append(out, pid)
		}
	}
	return out
}

// WorkingIn lists the live processes, of any name, whose working directory
// is dir or below it.
func WorkingIn(dir string) []int {
	var out []int
	for _, pid := range pids() {
		if p, ok := Stat(pid); ok && p.Live() && WorksIn(pid, dir) {
			out = append(out, pid)
		}
	}
	return out
}

// PostgresUnder lists the live PostgreSQL server processes working in dir
// or below it (a postmaster and its children work in their data directory,
// also after it was deleted).
func PostgresUnder(dir string) []int {
	var out []int
	for _, pid := range pids() {
		p, ok := Stat(pid)
		if ok && p.Live() && (p.Name == "postgres" || p.Name == "postmaster") && WorksIn(pid, dir) {
			out = append(out, pid)
		}
	}
	return out
}

// Postmasters lists the postmasters of dataDir: its server processes whose
// parent is not one of them.
func Postmasters(dataDir string) []int {
	return roots(PostgresUnder(dataDir))
}

// roots keeps the pids whose parent is not among pids.
func roots(pids []int) []int {
	var out []int
	for _, pid := range pids {
		if p, ok := Stat(pid); ok && !slices.Contains(pids, p.PPID) {
			out = append(out, pid)
		}
	}
	return out
}
