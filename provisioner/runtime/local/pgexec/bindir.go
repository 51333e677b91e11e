// Package pgexec runs PostgreSQL clusters on this host with the server's own
// binaries (initdb, pg_ctl, psql, …), as the `postgres` user when pgdeck runs
// as root.
package pgexec

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
)

// installHint is the command that installs the PostgreSQL server binaries on
// Debian and Ubuntu; every "binary missing" error carries it.
const installHint = "apt-get install -y postgresql"

// ErrNoBinaries is wrapped by FindBinDir when no PostgreSQL server binaries
// are found.
var ErrNoBinaries = errors.New("postgresql server binaries not found (install them with: " + installHint + ")")

// debianBinGlob is where Debian/Ubuntu install one folder per major version.
const debianBinGlob = "/usr/lib/postgresql/*/bin"

// FindBinDir returns configured if non-empty (checking it has initdb), else
// the newest /usr/lib/postgresql/*/bin that has initdb and pg_ctl, else the
// folder of an initdb found on PATH.
func FindBinDir(configured string) (string, error) {
	if configured != "" {
		if !hasBinaries(configured) {
			return "", fmt.Errorf("pgexec: %s has no initdb and pg_ctl: %w", configured, ErrNoBinaries)
		}
		return filepath.Abs(configured)
	}
	dirs, _ := filepath.Glob(debianBinGlob)
	sort.Slice(dirs, func(i, j int) bool {
		return versionOf(dirs[i]) > versionOf(dirs[j])
	})
	for _, d := range dirs {
		if hasBinaries(d) {
			return d, nil
		}
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		if d := filepath.Dir(p); hasBinaries(d) {
			return filepath.Abs(d)
		}
	}
	return "", fmt.Errorf("pgexec: looked in %s and PATH: %w", debianBinGlob, ErrNoBinaries)
}

// versionOf reads the major version out of /usr/lib/postgresql/<v>/bin;
// unparsable versions sort last.
func versionOf(binDir string) float64 {
	v, err := strconv.ParseFloat(filepath.Base(filepath.Dir(binDir)), 64)
	if err != nil {
		return -1
	}
	return v
}

func hasBinaries(dir string) bool {
	return isExecutable(filepath.Join(dir, "initdb")) && isExecutable(filepath.Join(dir, "pg_ctl"))
}

func isExecutable(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.Mode().IsRegular() && fi.Mode().Perm()&0o111 != 0
}

// binPath returns the absolute path of a PostgreSQL program in binDir,
// refusing names that are paths so callers cannot run arbitrary binaries.
func binPath(binDir, name string) (string, error) {
	if name == "" || strings.ContainsRune(name, '/') || name == "." || name == ".." {
		return "", fmt.Errorf("pgexec: invalid program name %q", name)
	}
	p := filepath.Join(binDir, name)
	if !isExecutable(p) {
		return "", fmt.Errorf("pgexec: %s not found in %s (install it with: %s)", name, binDir, installHint)
	}
	return p, nil
}
