package pgexec

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// pidFileName is the postmaster's lock file inside the data directory.
const pidFileName = "postmaster.pid"

// readPidFile returns the postmaster pid recorded in dataDir/postmaster.pid.
// exists is false when there is no such file.
func readPidFile(dataDir string) (pid int, exists bool, err error) {
	return readPid(filepath.Join(dataDir, pidFileName))
}

// readPid returns the pid on the first line of a pid file. exists is false
// when there is no such file.
func readPid(path string) (pid int, exists bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, err
	}
	defer f.Close()
	name := filepath.Base(path)
	sc := bufio.NewScanner(f)
	if !sc.Scan() {
		// An empty file is what a server leaves for an instant while it
		// writes the file; treat it as present but unreadable.
		return 0, true, fmt.Errorf("%s is empty", name)
	}
	pid, err = strconv.Atoi(strings.TrimSpace(sc.Text()))
	if err != nil || pid <= 0 {
		return 0, true, fmt.Errorf("%s: bad pid %q", name, sc.Text())
	}
	return pid, true, nil
}

// procInfo is what /proc tells about one process.
type procInfo struct {
	comm  string
	state byte
	ppid  int
}

// readProc reads /proc/<pid>/stat. ok is false when the process is gone.
func readProc(pid int) (procInfo, bool) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return procInfo{}, false
	}
	// Format: pid (comm) state ppid …; comm may contain spaces and parens.
	open := bytes.IndexByte(b, '(')
	closeIdx := bytes.LastIndexByte(b, ')')
	if open < 0 || closeIdx < open {
		return procInfo{}, false
	}
	info := procInfo{comm: string(b[open+1 : closeIdx])}
	fields := strings.Fields(string(b[closeIdx+1:]))
	if len(fields) < 2 {
		return procInfo{}, false
	}
	info.state = fields[0][0]
	info.ppid, _ = strconv.Atoi(fields[1])
	return info, true
}

// isPostgresComm reports whether a process name is a PostgreSQL server.
func isPostgresComm(comm string) bool {
	return comm == "postgres" || comm == "postmaster"
}

// servesDataDir reports whether pid is a live (not zombie) PostgreSQL server
// process whose working directory is dataDir. When the working directory
// cannot be read (another user's process while not root) the name check
// alone decides.
func servesDataDir(pid int, dataDir string) bool {
	info, ok := readProc(pid)
	if !ok || info.state == 'Z' || info.state == 'X' || !isPostgresComm(info.comm) {
		return false
	}
	cwd, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "cwd"))
	if err != nil {
		return !errors.Is(err, fs.ErrNotExist)
	}
	return samePath(cwd, dataDir)
}

// samePath compares two folder paths after resolving symlinks.
func samePath(a, b string) bool {
	if a == b {
		return true
	}
	ra, errA := filepath.EvalSymlinks(a)
	rb, errB := filepath.EvalSymlinks(b)
	return errA == nil && errB == nil && ra == rb
}

// serverProcesses lists the live PostgreSQL processes working in dataDir:
// a postmaster and its children, or backends orphaned by a killed postmaster.
func serverProcesses(dataDir string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	self := os.Getpid()
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == self {
			continue
		}
		info, ok := readProc(pid)
		if !ok || info.state == 'Z' || info.state == 'X' || !isPostgresComm(info.comm) {
			continue
		}
		cwd, err := os.Readlink(filepath.Join("/proc", e.Name(), "cwd"))
		if err != nil || !samePath(cwd, dataDir) {
			continue
		}
		pids = append(pids, pid)
	}
	return pids
}
