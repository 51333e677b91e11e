package docker

import (
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/api/types/volume"

	"pgdeck/provisioner/runtime"
)

// roles are an environment's instances, removed the replica's pooler and
// the replica first and the primary last.
var roles = []runtime.Role{runtime.RoleReplicaPooler, runtime.RoleReplica, runtime.RolePooler, runtime.RolePrimary}

// Address returns where pgdeck and Odoo (on the engine's host) reach the
// instance: its port published on PublishAddress; port 0 when it is
// missing.
func (r *Runtime) Address(id runtime.InstanceID) (host string, port int) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := r.inspect(ctx, id)
	if err != nil {
		return r.publish, 0
	}
	return r.publish, portOf(c)
}

// PeerAddress returns where the environment's other containers reach the
// instance: its container's name on the environment's network, and the
// port it listens on there (the same as the published one).
func (r *Runtime) PeerAddress(id runtime.InstanceID) (host string, port int) {
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	c, err := r.inspect(ctx, id)
	if err != nil {
		return ContainerName(id), 0
	}
	return ContainerName(id), portOf(c)
}

// PortFree reports whether no container of the engine (running or not)
// has port and, for an engine on this machine, nothing listens on
// PublishAddress:port.
func (r *Runtime) PortFree(port int) bool {
	if strings.HasPrefix(r.cli.DaemonHost(), "unix://") {
		ln, err := net.Listen("tcp", net.JoinHostPort(r.publish, strconv.Itoa(port)))
		if err != nil {
			return false
		}
		ln.Close()
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{All: true})
	if err != nil {
		return false
	}
	for _, c := range cs {
		if c.Labels[labelManaged] == "true" && c.Labels[labelPort] == strconv.Itoa(port) {
			return false
		}
		for _, p := range c.Ports {
			if int(p.PublicPort) == port {
				return false
			}
		}
	}
	return true
}

// ClientNetwork is the environment network's subnet: the containers of
// the environment, and the clients on the host, whose connections to a
// published port arrive from the network's gateway. The network is made
// when it is missing, so that pg_hba lines can name it before the first
// instance exists; "" when the engine cannot be reached.
func (r *Runtime) ClientNetwork(env string) string {
	if (runtime.InstanceID{Env: env, Role: runtime.RolePrimary}).Validate() != nil {
		return ""
	}
	ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
	defer cancel()
	subnet, err := r.ensureNetwork(ctx, env)
	if err != nil {
		r.log.Error("client network", "env", env, "error", err)
		return ""
	}
	return subnet
}

// EnvPath returns Root/<env>/<rel> on the host, where Odoo reads it.
func (r *Runtime) EnvPath(env, rel string) string { return r.envs.Path(env, rel) }

// MakeEnvDir creates Root/<env>/<rel> on the host and hands it, with
// everything below it, to owner (the folders above it become searchable by
// owner). The filestore is also a named volume (FilestoreVolume) bound to
// that folder, so that containers may mount it while Odoo on the host
// writes it.
func (r *Runtime) MakeEnvDir(ctx context.Context, env, rel string, owner runtime.Owner) error {
	p, err := r.envs.Make(env, rel, owner)
	if err != nil {
		return err
	}
	if clean, _ := runtime.CleanRel(rel); clean == "filestore" {
		if err := r.ensureFilestoreVolume(ctx, env, p); err != nil {
			return fmt.Errorf("docker runtime: %w", err)
		}
	}
	return nil
}

// ensureFilestoreVolume makes the named volume bound to the filestore
// folder.
func (r *Runtime) ensureFilestoreVolume(ctx context.Context, env, dir string) error {
	name := FilestoreVolume(env)
	v, err := r.cli.VolumeInspect(ctx, name)
	if err == nil {
		if v.Options["device"] != dir {
			return fmt.Errorf("volume %s is bound to %q, not %q", name, v.Options["device"], dir)
		}
		return nil
	}
	if !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("inspect volume %s: %w", name, err)
	}
	labels := map[string]string{labelManaged: "true", labelEnv: env, labelRole: "filestore"}
	_, err = r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: name, Driver: "local", Labels: labels,
		DriverOpts: map[string]string{"type": "none", "o": "bind", "device": dir}})
	if err != nil {
		return fmt.Errorf("create volume %s: %w", name, err)
	}
	return nil
}

// WriteEnvFile replaces Root/<env>/<rel> atomically, owned by owner (the
// runtime's own user when owner is not set) with mode.
func (r *Runtime) WriteEnvFile(ctx context.Context, env, rel string, data []byte, mode os.FileMode, owner runtime.Owner) error {
	return r.envs.WriteFile(env, rel, data, mode, owner)
}

// RemoveEnv removes every instance of the environment, its filestore
// volume, its network and its folder on the host.
func (r *Runtime) RemoveEnv(ctx context.Context, env string) error {
	if err := (runtime.InstanceID{Env: env, Role: runtime.RolePrimary}).Validate(); err != nil {
		return err
	}
	for _, role := range roles {
		if err := r.Remove(ctx, runtime.InstanceID{Env: env, Role: role}); err != nil {
			return err
		}
	}
	// Whatever else carries the environment's label (a container of a
	// role this version does not know).
	cs, err := r.cli.ContainerList(ctx, container.ListOptions{All: true, Filters: filters.NewArgs(
		filters.Arg("label", labelManaged+"=true"), filters.Arg("label", labelEnv+"="+env))})
	if err != nil {
		return fmt.Errorf("docker runtime: remove %s: %w", env, err)
	}
	for _, c := range cs {
		if err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			return fmt.Errorf("docker runtime: remove %s: %w", env, err)
		}
	}
	if err := r.cli.VolumeRemove(ctx, FilestoreVolume(env), true); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker runtime: remove %s: %w", FilestoreVolume(env), err)
	}
	if err := r.cli.NetworkRemove(ctx, NetworkName(env)); err != nil && !cerrdefs.IsNotFound(err) {
		return fmt.Errorf("docker runtime: remove network %s: %w", NetworkName(env), err)
	}
	return r.envs.Remove(env)
}

// envTaken is the error for an environment-level path that starts with an
// instance's name.
func envTaken(env, rel string, _ runtime.Role) error {
	return fmt.Errorf("docker runtime: %s/%s is an instance's name", env, rel)
}
