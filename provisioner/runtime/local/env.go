package local

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// roles are the folders an environment's instances live in, removed
// the replica's pooler and the replica first and the primary last.
var roles = []runtime.Role{runtime.RoleReplicaPooler, runtime.RoleReplica, runtime.RolePooler, runtime.RolePrimary}

// envDir is the environment's folder, Root/<env>.
func (r *Runtime) envDir(env string) string { return filepath.Join(r.root, env) }

// List returns the instances found under Root: every <env>/<role> folder of
// a valid environment name and role.
func (r *Runtime) List(ctx context.Context) ([]runtime.InstanceID, error) {
	envs, err := os.ReadDir(r.root)
	if err != nil {
		return nil, fmt.Errorf("local runtime: list: %w", err)
	}
	var out []runtime.InstanceID
	for _, e := range envs {
		if !e.IsDir() {
			continue
		}
		for _, role := range roles {
			id := runtime.InstanceID{Env: e.Name(), Role: role}
			if id.Validate() != nil {
				continue
			}
			if fi, err := os.Lstat(r.InstanceDir(id)); err == nil && fi.IsDir() {
				out = append(out, id)
			}
		}
	}
	return out, nil
}

// envPath checks env and rel and returns the path they name.
func (r *Runtime) envPath(env, rel string) (string, error) {
	if err := (runtime.InstanceID{Env: env, Role: runtime.RolePrimary}).Validate(); err != nil {
		return "", err
	}
	clean, err := runtime.CleanRel(rel)
	if err != nil {
		return "", err
	}
	first, _, _ := strings.Cut(clean, "/")
	for _, role := range roles {
		if first == string(role) {
			return "", fmt.Errorf("local runtime: %s/%s belongs to the %s instance", env, rel, role)
		}
	}
	return filepath.Join(r.envDir(env), filepath.FromSlash(clean)), nil
}

// EnvPath returns Root/<env>/<rel>.
func (r *Runtime) EnvPath(env, rel string) string {
	p, err := r.envPath(env, rel)
	if err != nil {
		return ""
	}
	return p
}

// MakeEnvDir creates Root/<env>/<rel> and hands it, with everything below
// it, to owner; the folders above it become searchable by owner (o+x where
// needed), so that Odoo reaches its data_dir.
func (r *Runtime) MakeEnvDir(ctx context.Context, env, rel string, owner runtime.Owner) error {
	path, err := r.envPath(env, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(path, 0o750); err != nil {
		return fmt.Errorf("local runtime: %w", err)
	}
	if !owner.Set {
		return nil
	}
	if err := chownTree(path, owner.UID, owner.GID); err != nil {
		return fmt.Errorf("local runtime: hand %s to %s: %w", path, owner.Name, err)
	}
	return asRunAs(owner).EnsureTraversable(path, r.log)
}

// WriteEnvFile replaces Root/<env>/<rel> atomically, owned by owner (the
// runtime's own user when owner is not set) with mode.
func (r *Runtime) WriteEnvFile(ctx context.Context, env, rel string, data []byte, mode os.FileMode, owner runtime.Owner) error {
	path, err := r.envPath(env, rel)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("local runtime: %w", err)
	}
	u := pgexec.RunAs{}
	if owner.Set {
		u = asRunAs(owner)
		if err := u.EnsureTraversable(filepath.Dir(path), r.log); err != nil {
			return err
		}
	}
	if err := pgexec.WriteFileAs(u, path, data, mode); err != nil {
		return fmt.Errorf("local runtime: %w", err)
	}
	return nil
}

// RemoveEnv removes every instance of the environment, then its folder.
func (r *Runtime) RemoveEnv(ctx context.Context, env string) error {
	for _, role := range roles {
		if err := r.Remove(ctx, runtime.InstanceID{Env: env, Role: role}); err != nil {
			return err
		}
	}
	dir := r.envDir(env)
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("local runtime: remove %s: %w", dir, err)
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
