package pgexec

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
)

// postgresUser is the OS account PostgreSQL runs as when pgdeck is root.
const postgresUser = "postgres"

// RunAs describes the OS user that PostgreSQL processes run as. The zero
// value means the current user: nothing is switched or chowned.
type RunAs struct {
	UID, GID int
	Name     string
	Home     string
	// Set is true when processes must switch to this user.
	Set bool
}

// DefaultRunAs returns the `postgres` user when the process runs as root
// (PostgreSQL refuses to run as root), else the zero value.
func DefaultRunAs() (RunAs, error) {
	if os.Geteuid() != 0 {
		return RunAs{}, nil
	}
	return LookupRunAs(postgresUser)
}

// LookupRunAs returns the RunAs for the named OS user.
func LookupRunAs(name string) (RunAs, error) {
	u, err := user.Lookup(name)
	if err != nil {
		return RunAs{}, fmt.Errorf("pgexec: running as root needs the %q user to run PostgreSQL (install it with: %s): %w", name, installHint, err)
	}
	uid, err := strconv.Atoi(u.Uid)
	if err != nil {
		return RunAs{}, fmt.Errorf("pgexec: user %q: uid %q: %w", name, u.Uid, err)
	}
	gid, err := strconv.Atoi(u.Gid)
	if err != nil {
		return RunAs{}, fmt.Errorf("pgexec: user %q: gid %q: %w", name, u.Gid, err)
	}
	return RunAs{UID: uid, GID: gid, Name: u.Username, Home: u.HomeDir, Set: true}, nil
}

// switches reports whether a child process must change its credentials.
func (r RunAs) switches() bool {
	return r.Set && r.UID != os.Geteuid()
}

// sysProcAttr returns the process attributes for a child running as r,
// optionally in a new session so that it outlives this process.
func (r RunAs) sysProcAttr(setsid bool) *syscall.SysProcAttr {
	a := &syscall.SysProcAttr{Setsid: setsid}
	if r.switches() {
		var groups []uint32
		for g := range r.groupIDs() {
			groups = append(groups, uint32(g))
		}
		a.Credential = &syscall.Credential{
			Uid:    uint32(r.UID),
			Gid:    uint32(r.GID),
			Groups: groups,
		}
	}
	return a
}

// env returns a minimal environment for PostgreSQL programs; the parent's
// PG* variables are deliberately not inherited.
func (r RunAs) env(binDir string, extra ...string) []string {
	home := r.Home
	name := r.Name
	if !r.Set {
		home, _ = os.UserHomeDir()
		if u, err := user.Current(); err == nil {
			name = u.Username
		}
	}
	if home == "" {
		home = "/"
	}
	env := []string{
		"HOME=" + home,
		"LANG=C.UTF-8",
		"PATH=" + binDir + ":/usr/local/bin:/usr/bin:/bin",
	}
	if name != "" {
		env = append(env, "USER="+name, "LOGNAME="+name)
	}
	if tz, ok := os.LookupEnv("TZ"); ok {
		env = append(env, "TZ="+tz)
	}
	return append(env, extra...)
}

// Chown changes the owner of path and everything below it to the user; it is
// a no-op when r is not Set. Symlinks are changed themselves, not followed.
func (r RunAs) Chown(path string) error {
	if !r.Set {
		return nil
	}
	err := filepath.WalkDir(path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, r.UID, r.GID)
	})
	if err != nil {
		return fmt.Errorf("pgexec: chown %s to %s: %w", path, r.Name, err)
	}
	return nil
}

// chownOne changes the owner of path only (not recursive).
func (r RunAs) chownOne(path string) error {
	if !r.Set {
		return nil
	}
	if err := os.Lchown(path, r.UID, r.GID); err != nil {
		return fmt.Errorf("pgexec: chown %s to %s: %w", path, r.Name, err)
	}
	return nil
}

// EnsureTraversable makes every existing ancestor folder of path searchable
// by the user, adding only the o+x bit where one blocks it (e.g. /root is
// 0700 when CI runs as root in a clone under it), and logs each change. It is
// a no-op when r is not Set.
func (r RunAs) EnsureTraversable(path string, log *slog.Logger) error {
	if !r.Set {
		return nil
	}
	abs, err := filepath.Abs(path)
	if err != nil {
		return fmt.Errorf("pgexec: ensure traversable %s: %w", path, err)
	}
	groups := r.groupIDs()
	var ancestors []string
	for d := filepath.Dir(abs); ; d = filepath.Dir(d) {
		ancestors = append(ancestors, d)
		if d == filepath.Dir(d) {
			break
		}
	}
	// Walk from / down so that the log reads in path order.
	for i := len(ancestors) - 1; i >= 0; i-- {
		d := ancestors[i]
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("pgexec: ensure traversable %s: %w", d, err)
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok || !fi.IsDir() {
			continue
		}
		perm := fi.Mode().Perm()
		var canSearch bool
		switch {
		case int(st.Uid) == r.UID:
			canSearch = perm&0o100 != 0
		case groups[int(st.Gid)]:
			canSearch = perm&0o010 != 0
		default:
			canSearch = perm&0o001 != 0
		}
		if canSearch {
			continue
		}
		if err := os.Chmod(d, fi.Mode()|0o001); err != nil {
			return fmt.Errorf("pgexec: add o+x to %s so that %s can reach %s: %w", d, r.Name, abs, err)
		}
		log.Warn("added o+x to a folder so that PostgreSQL can reach its files",
			"path", d, "user", r.Name, "old_mode", fmt.Sprintf("%04o", perm), "target", abs)
	}
	return nil
}

// groupIDs returns the user's primary and supplementary group ids.
func (r RunAs) groupIDs() map[int]bool {
	groups := map[int]bool{r.GID: true}
	u, err := user.LookupId(strconv.Itoa(r.UID))
	if err != nil {
		return groups
	}
	ids, err := u.GroupIds()
	if err != nil {
		return groups
	}
	for _, s := range ids {
		if g, err := strconv.Atoi(s); err == nil {
			groups[g] = true
		}
	}
	return groups
}
