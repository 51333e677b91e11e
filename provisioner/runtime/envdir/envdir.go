// Package envdir keeps an environment's own files on this host for a
// runtime: Root/<env>/<rel>, beside or instead of its instances' folders,
// where Odoo reads odoo.conf and writes its filestore. The local and the
// docker runtime keep them the same way.
package envdir

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// Dirs are the environments' folders of one runtime.
type Dirs struct {
	// Root holds one folder per environment.
	Root string
	// Runtime names the runtime at the start of its errors ("local
	// runtime").
	Runtime string
	// Taken is the error for a rel whose first element is the name of
	// role, which no environment-level path may take: the runtime says
	// what that name is to it.
	Taken func(env, rel string, role runtime.Role) error
	// Log receives the folder modes changed so that an owner reaches its
	// folder.
	Log *slog.Logger
}

// Dir returns the environment's folder, Root/<env>.
func (d *Dirs) Dir(env string) string { return filepath.Join(d.Root, env) }

// Path returns Root/<env>/<rel>, "" when env or rel is invalid.
func (d *Dirs) Path(env, rel string) string {
	p, err := d.CheckPath(env, rel)
	if err != nil {
		return ""
	}
	return p
}

// CheckPath checks env and rel and returns the path they name,
// Root/<env>/<rel>.
func (d *Dirs) CheckPath(env, rel string) (string, error) {
	if err := (runtime.InstanceID{Env: env, Role: runtime.RolePrimary}).Validate(); err != nil {
		return "", err
	}
	clean, err := runtime.CleanRel(rel)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(clean, "/")
	if role := runtime.Role(first); role.Valid() {
		return "", d.Taken(env, rel, role)
	}
	return filepath.Join(d.Dir(env), filepath.FromSlash(clean)), nil
}

// Make creates Root/<env>/<rel> and, when owner is set, hands it with
// everything below it to owner and makes the folders above it searchable
// by owner (o+x where needed), so that Odoo reaches its data_dir. It
// returns the folder's path.
func (d *Dirs) Make(env, rel string, owner runtime.Owner) (string, error) {
	path, err := d.CheckPath(env, rel)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return "", fmt.Errorf("%s: %w", d.Runtime, err)
	}
	if !owner.Set {
		return path, nil
	}
	if err := chownTree(path, owner.UID, owner.GID); err != nil {
		return "", fmt.Errorf("%s: hand %s to %s: %w", d.Runtime, path, owner.Name, err)
	}
	if err := asRunAs(owner).EnsureTraversable(path, d.Log); err != nil {
		return "", err
	}
	return path, nil
}

// WriteFile replaces Root/<env>/<rel> atomically, owned by owner (the
// runtime's own user when owner is not set) with mode.
func (d *Dirs) WriteFile(env, rel string, data []byte, mode os.FileMode, owner runtime.Owner) error {
	path, err := d.CheckPath(env, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("%s: %w", d.Runtime, err)
	}
	u := pgexec.RunAs{}
	if owner.Set {
		u = asRunAs(owner)
		if err := u.EnsureTraversable(filepath.Dir(path), d.Log); err != nil {
			return err
		}
	}
	if err := pgexec.WriteFileAs(u, path, data, mode); err != nil {
		return fmt.Errorf("%s: %w", d.Runtime, err)
	}
	return nil
}

// Remove removes the environment's folder and everything in it.
func (d *Dirs) Remove(env string) error {
	dir := d.Dir(env)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("%s: remove %s: %w", d.Runtime, dir, err)
	}
	return nil
}

func asRunAs(o runtime.Owner) pgexec.RunAs {
	return pgexec.RunAs{UID: o.UID, GID: o.GID, Name: o.Name, Set: true}
}

// chownTree gives root and everything below it (symlinks themselves, never
// followed) to uid:gid, touching only what is not already theirs, so that a
// large filestore costs one stat per file.
func chownTree(root string, uid, gid int) error {
	return filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		info, err := d.Info()
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return err
		}
		if st, ok := info.Sys().(*syscall.Stat_t); ok && int(st.Uid) == uid && int(st.Gid) == gid {
			return nil
		}
		return os.Lchown(path, uid, gid)
	})
}
