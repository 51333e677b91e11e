package local

import (
	"context"
	"fmt"
	"os"

	"pgdeck/provisioner/runtime"
)

// roles are the folders an environment's instances live in, removed
// the replica's pooler and the replica first and the primary last.
var roles = []runtime.Role{runtime.RoleReplicaPooler, runtime.RoleReplica, runtime.RolePooler, runtime.RolePrimary}

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

// EnvPath returns Root/<env>/<rel>.
func (r *Runtime) EnvPath(env, rel string) string { return r.envs.Path(env, rel) }

// MakeEnvDir creates Root/<env>/<rel> and hands it, with everything below
// it, to owner; the folders above it become searchable by owner (o+x where
// needed), so that Odoo reaches its data_dir.
func (r *Runtime) MakeEnvDir(ctx context.Context, env, rel string, owner runtime.Owner) error {
	_, err := r.envs.Make(env, rel, owner)
	return err
}

// WriteEnvFile replaces Root/<env>/<rel> atomically, owned by owner (the
// runtime's own user when owner is not set) with mode.
func (r *Runtime) WriteEnvFile(ctx context.Context, env, rel string, data []byte, mode os.FileMode, owner runtime.Owner) error {
	return r.envs.WriteFile(env, rel, data, mode, owner)
}

// RemoveEnv removes every instance of the environment, then its folder.
func (r *Runtime) RemoveEnv(ctx context.Context, env string) error {
	for _, role := range roles {
		if err := r.Remove(ctx, runtime.InstanceID{Env: env, Role: role}); err != nil {
			return err
		}
	}
	return r.envs.Remove(env)
}

// envTaken is the error for an environment-level path inside an
// instance's folder.
func envTaken(env, rel string, role runtime.Role) error {
	return fmt.Errorf("local runtime: %s/%s belongs to the %s instance", env, rel, role)
}
