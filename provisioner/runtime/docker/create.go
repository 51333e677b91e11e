package docker

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"strconv"
	"strings"
	"time"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/go-connections/nat"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// Create makes the instance if it is missing and writes its configuration
// from spec every time: a primary's data is made by initdb in a one-shot
// container, a replica's by pg_basebackup from its primary over the
// environment's network; the server's container is created (not started)
// with the data volume. A running server reads the new configuration when
// reloaded; a changed port, image or resources re-create its container
// (the data stays in the volume) and restart it at once.
func (r *Runtime) Create(ctx context.Context, spec runtime.Spec) error {
	id := spec.ID
	if err := id.Validate(); err != nil {
		return err
	}
	if spec.Port < 1 || spec.Port > 65535 {
		return fmt.Errorf("docker runtime: create %s: port %d out of range 1-65535", id, spec.Port)
	}
	if isPooler(id) {
		return r.createPooler(ctx, spec)
	}
	if err := runtime.CheckInit(spec); err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	var sb *standby
	if spec.Init.Kind == runtime.InitBaseBackup {
		host, port := r.PeerAddress(spec.Init.From)
		if port == 0 {
			return fmt.Errorf("docker runtime: create %s: the replica's primary %s does not exist", id, spec.Init.From)
		}
		sb = &standby{host: host, port: port, user: spec.Init.User, password: spec.Init.Password,
			slot: spec.Init.Slot, appName: runtime.ReplicaApplicationName(id.Env)}
		if err := sb.validate(); err != nil {
			return fmt.Errorf("docker runtime: create %s: %w", id, err)
		}
	}
	conf, err := renderConf(spec.Conf, spec.Port, sb)
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	hba, err := pgexec.RenderHBA(superuser, spec.HBA)
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	p, err := r.postgresProbe(ctx)
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	defer r.lock(id.String())()

	ctrID, fresh, wasRunning, err := r.ensureContainer(ctx, spec, p)
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	ver, err := r.readFile(ctx, ctrID, dataDir+"/PG_VERSION")
	switch {
	case err == nil:
		if major, _ := strconv.Atoi(strings.TrimSpace(string(ver))); major != p.major {
			return fmt.Errorf("docker runtime: create %s: its data folder is PostgreSQL %s but image %s runs PostgreSQL %d; use an image of the data's major version (or upgrade the data)",
				id, strings.TrimSpace(string(ver)), r.image, p.major)
		}
	case errors.Is(err, os.ErrNotExist):
		if err := r.initData(ctx, spec, ctrID, p, sb); err != nil {
			// Without data there is no instance: nothing is left behind.
			r.removeAll(context.WithoutCancel(ctx), id)
			return fmt.Errorf("docker runtime: create %s: %w", id, err)
		}
		fresh = true
	default:
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	files := []tarFile{
		{name: pgexec.ConfFileName, data: []byte(conf), mode: 0o600},
		{name: "pg_hba.conf", data: []byte(hba), mode: 0o600},
	}
	if sb != nil {
		if err := r.copyIn(ctx, ctrID, p, volumeDir, []tarFile{{name: path.Base(passFile), data: []byte(sb.passfileLine()), mode: 0o600}}); err != nil {
			return fmt.Errorf("docker runtime: create %s: %w", id, err)
		}
		files = append(files, tarFile{name: "standby.signal", mode: 0o600})
	}
	main, err := r.readFile(ctx, ctrID, dataDir+"/postgresql.conf")
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: read postgresql.conf: %w", id, err)
	}
	if main, changed := pgexec.IncludeConf(main); changed {
		files = append(files, tarFile{name: "postgresql.conf", data: main, mode: 0o600})
	}
	if err := r.copyIn(ctx, ctrID, p, dataDir, files); err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	if fresh {
		r.log.Info("created instance", "env", id.Env, "role", id.Role, "port", spec.Port, "container", ContainerName(id))
	}
	if wasRunning {
		r.log.Info("restarting instance in its new container", "env", id.Env, "role", id.Role, "port", spec.Port)
		if err := r.startContainer(ctx, id, ctrID, spec.Port); err != nil {
			return fmt.Errorf("docker runtime: create %s: %w", id, err)
		}
	}
	return nil
}

// initData makes the data folder of a new instance in a one-shot container
// on its volume: initdb for a primary, pg_basebackup (with the passfile
// written first, in the volume) for a replica. Either works in a sibling
// folder renamed to pgdata only when complete, so that a pgdata with
// PG_VERSION is always whole.
func (r *Runtime) initData(ctx context.Context, spec runtime.Spec, ctrID string, p *probe, sb *standby) error {
	id := spec.ID
	mounts := []mount.Mount{{Type: mount.TypeVolume, Source: VolumeName(id), Target: volumeDir}}
	start := time.Now()
	if sb == nil {
		script := `set -e
cd ` + volumeDir + `
rm -rf pgdata.init
# C.UTF-8 is preferred for its ctype behaviour; images without it get C.
"$1/initdb" -D pgdata.init -U ` + superuser + ` -E UTF8 --locale=C.UTF-8 -A trust --auth-host=scram-sha-256 ||
  { rm -rf pgdata.init; "$1/initdb" -D pgdata.init -U ` + superuser + ` -E UTF8 --locale=C -A trust --auth-host=scram-sha-256; }
mkdir -p run && chmod 700 run
mv pgdata.init pgdata`
		out, err := r.runOnce(ctx, oneShot{name: ContainerName(id) + "-init", image: r.image, user: runAsUser,
			cmd: []string{"sh", "-c", script, "sh", p.binDir}, mounts: mounts}, nil)
		if err != nil {
			return fmt.Errorf("initdb: %w: %s", err, oneLine(out))
		}
		r.log.Info("initialized postgresql cluster", "env", id.Env, "role", id.Role, "duration", time.Since(start).Round(time.Millisecond))
		return nil
	}
	// pg_basebackup reads the password from the replica's own passfile: it
	// never shows on a command line, in an environment or in a label.
	if err := r.copyIn(ctx, ctrID, p, volumeDir, []tarFile{{name: path.Base(passFile), data: []byte(sb.passfileLine()), mode: 0o600}}); err != nil {
		return err
	}
	script := `set -e
cd ` + volumeDir + `
rm -rf pgdata.init
mkdir -p run && chmod 700 run
"$1/pg_basebackup" -D pgdata.init -h "$2" -p "$3" -U "$4" --no-password --checkpoint=fast --wal-method=stream --slot="$5" --progress --verbose
touch pgdata.init/standby.signal
mv pgdata.init pgdata`
	out, err := r.runOnce(ctx, oneShot{name: ContainerName(id) + "-init", image: r.image, user: runAsUser,
		network: NetworkName(id.Env),
		cmd:     []string{"sh", "-c", script, "sh", p.binDir, sb.host, strconv.Itoa(sb.port), sb.user, sb.slot},
		env:     []string{"PGPASSFILE=" + passFile, "PGAPPNAME=pgdeck_basebackup"},
		mounts:  mounts}, pgexec.ProgressFunc(spec.Init.Progress))
	if err != nil {
		return fmt.Errorf("pg_basebackup from %s:%d: %w: %s", sb.host, sb.port, err, oneLine(out))
	}
	r.log.Info("copied postgresql cluster with pg_basebackup", "env", id.Env, "role", id.Role,
		"primary", sb.host+":"+strconv.Itoa(sb.port), "slot", sb.slot, "duration", time.Since(start).Round(time.Millisecond))
	return nil
}

// configHash names what a container is made from; a spec that hashes
// differently needs a new container.
func configHash(parts ...string) string {
	sum := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return hex.EncodeToString(sum[:8])
}

// ensureContainer makes the network, the data volume and the instance's
// container (created, not started) when they are missing. A container made
// from another configuration (port, image, resources, program) is removed
// and made again; wasRunning then says it ran, so that the caller starts
// the new one once its files are written.
func (r *Runtime) ensureContainer(ctx context.Context, spec runtime.Spec, p *probe) (ctrID string, fresh, wasRunning bool, err error) {
	id := spec.ID
	image, cmd := r.image, []string{path.Join(p.binDir, "postgres"), "-D", dataDir}
	stopSignal := "SIGINT" // fast shutdown: smart shutdown waits for every client
	if isPooler(id) {
		image, cmd = r.pooler, []string{p.pgbouncer, bouncerIni}
		stopSignal = "SIGTERM"
	}
	res := spec.Resources
	hash := configHash(image, strings.Join(cmd, " "), strconv.Itoa(spec.Port), r.publish,
		strconv.Itoa(res.MemoryMB), strconv.FormatFloat(res.CPUs, 'f', -1, 64))

	if _, err := r.ensureNetwork(ctx, id.Env); err != nil {
		return "", false, false, err
	}
	c, err := r.inspect(ctx, id)
	switch {
	case err == nil && c.Config.Labels[labelConfig] == hash:
		return c.ID, false, false, nil
	case err == nil:
		wasRunning = c.State.Running || c.State.Restarting
		r.log.Info("re-creating container: its configuration changed (the data stays in its volume)", "env", id.Env, "role", id.Role,
			"old_port", c.Config.Labels[labelPort], "port", spec.Port)
		if err := r.cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true}); err != nil {
			return "", false, false, fmt.Errorf("remove old container: %w", err)
		}
	case !errors.Is(err, runtime.ErrMissing):
		return "", false, false, err
	}
	labels := r.labels(id)
	if _, err := r.cli.VolumeCreate(ctx, volume.CreateOptions{Name: VolumeName(id), Driver: "local", Labels: labels}); err != nil {
		return "", false, false, fmt.Errorf("create volume %s: %w", VolumeName(id), err)
	}
	labels[labelPort] = strconv.Itoa(spec.Port)
	labels[labelConfig] = hash
	port := nat.Port(strconv.Itoa(spec.Port) + "/tcp")
	hc := &container.HostConfig{
		NetworkMode:   container.NetworkMode(NetworkName(id.Env)),
		PortBindings:  nat.PortMap{port: {{HostIP: r.publish, HostPort: strconv.Itoa(spec.Port)}}},
		RestartPolicy: container.RestartPolicy{Name: container.RestartPolicyUnlessStopped},
		Mounts:        []mount.Mount{{Type: mount.TypeVolume, Source: VolumeName(id), Target: volumeDir}},
	}
	if res.MemoryMB > 0 {
		hc.Resources.Memory = int64(res.MemoryMB) << 20
		// No swap beyond the limit.
		hc.Resources.MemorySwap = hc.Resources.Memory
	}
	if res.CPUs > 0 {
		hc.Resources.NanoCPUs = int64(res.CPUs * 1e9)
	}
	stopTimeout := int(stopGrace / time.Second)
	cfg := &container.Config{
		Image:        image,
		User:         runAsUser,
		Cmd:          cmd,
		Entrypoint:   []string{},
		WorkingDir:   volumeDir,
		Hostname:     strings.ReplaceAll(ContainerName(id), "_", "-"),
		Labels:       labels,
		ExposedPorts: nat.PortSet{port: {}},
		StopSignal:   stopSignal,
		StopTimeout:  &stopTimeout,
		Env: []string{
			// Exec inherits these: psql and pg_isready reach the server
			// over its socket as the superuser.
			"PATH=" + p.binDir + ":/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
			"PGDATA=" + dataDir,
			"PGHOST=" + socketDir,
			"PGPORT=" + strconv.Itoa(spec.Port),
			"PGUSER=" + superuser,
		},
	}
	nc := &network.NetworkingConfig{EndpointsConfig: map[string]*network.EndpointSettings{
		NetworkName(id.Env): {Aliases: []string{ContainerName(id)}},
	}}
	created, err := r.cli.ContainerCreate(ctx, cfg, hc, nc, nil, ContainerName(id))
	if err != nil {
		return "", false, false, fmt.Errorf("create container %s: %w", ContainerName(id), err)
	}
	return created.ID, true, wasRunning, nil
}

// labels are the labels of everything an instance has.
func (r *Runtime) labels(id runtime.InstanceID) map[string]string {
	return map[string]string{labelManaged: "true", labelEnv: id.Env, labelRole: string(id.Role)}
}

// ensureNetwork makes the environment's bridge network when it is missing
// and returns its subnet. Each environment has its own: Docker keeps
// bridge networks apart, so no environment reaches another's containers.
func (r *Runtime) ensureNetwork(ctx context.Context, env string) (string, error) {
	name := NetworkName(env)
	n, err := r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
	if cerrdefs.IsNotFound(err) {
		defer r.lock("network " + env)()
		if n, err = r.cli.NetworkInspect(ctx, name, network.InspectOptions{}); cerrdefs.IsNotFound(err) {
			labels := map[string]string{labelManaged: "true", labelEnv: env}
			if _, err := r.cli.NetworkCreate(ctx, name, network.CreateOptions{Driver: "bridge", Labels: labels}); err != nil && !cerrdefs.IsConflict(err) {
				return "", fmt.Errorf("create network %s: %w", name, err)
			}
			r.log.Info("created network", "env", env, "network", name)
			n, err = r.cli.NetworkInspect(ctx, name, network.InspectOptions{})
		}
	}
	if err != nil {
		return "", fmt.Errorf("inspect network %s: %w", name, err)
	}
	if n.Labels[labelManaged] != "true" || n.Labels[labelEnv] != env {
		return "", fmt.Errorf("network %s exists but is not pgdeck's network of %s", name, env)
	}
	for _, c := range n.IPAM.Config {
		if c.Subnet != "" && !strings.Contains(c.Subnet, ":") {
			return c.Subnet, nil
		}
	}
	return "", fmt.Errorf("network %s has no IPv4 subnet", name)
}

// createPooler makes a pooler's container and volume; its configuration
// is the PgBouncerIniFile the caller writes, which PgBouncer reads through
// a wrapper that makes it listen on the container's addresses (the ini
// names the published address, which is the host's).
func (r *Runtime) createPooler(ctx context.Context, spec runtime.Spec) error {
	id := spec.ID
	if spec.Program != runtime.ProgramPgBouncer || spec.Init.Kind != runtime.InitNone {
		return fmt.Errorf("docker runtime: create %s: a pooler runs program %q with init %q, not %q / %q",
			id, runtime.ProgramPgBouncer, runtime.InitNone, spec.Program, spec.Init.Kind)
	}
	if len(spec.Conf) > 0 || len(spec.HBA) > 0 {
		return fmt.Errorf("docker runtime: create %s: postgresql.conf settings and pg_hba lines do not apply to pgbouncer; its configuration is %s", id, runtime.PgBouncerIniFile)
	}
	p, err := r.poolerProbe(ctx)
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	defer r.lock(id.String())()
	ctrID, fresh, wasRunning, err := r.ensureContainer(ctx, spec, p)
	if err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	// Later settings win in PgBouncer's ini, and they continue the section
	// the included ini ends with (a new [pgbouncer] header would reset
	// it), which Start checks is [pgbouncer]: every address of the
	// container, and no pid file (it would outlive a killed container and
	// make the next PgBouncer, pid 1 again, believe it already runs).
	wrapper := fmt.Sprintf("%%include %s\nlisten_addr = *\npidfile =\n", r.InstancePath(id, runtime.PgBouncerIniFile))
	if err := r.copyIn(ctx, ctrID, p, volumeDir, []tarFile{{name: path.Base(bouncerIni), data: []byte(wrapper), mode: 0o600}}); err != nil {
		return fmt.Errorf("docker runtime: create %s: %w", id, err)
	}
	if fresh {
		r.log.Info("created instance", "env", id.Env, "role", id.Role, "port", spec.Port, "container", ContainerName(id))
	}
	if wasRunning {
		// As locally: the ini still names the old port until the caller
		// writes it again, so the next Start starts the new container.
		r.log.Info("pgbouncer's container was re-created: the next start uses the new one", "env", id.Env, "role", id.Role, "port", spec.Port)
	}
	return nil
}

// tarFile is a file for copyIn, relative to its folder.
type tarFile struct {
	name string
	data []byte
	mode os.FileMode
}

// copyIn writes files into dir, an existing folder of the instance's
// volume (through its container, running or not), owned by the image's
// postgres user, creating the folders below dir that their names hold.
// dir itself keeps its mode: a tar entry for it would change it.
func (r *Runtime) copyIn(ctx context.Context, ctrID string, p *probe, dir string, files []tarFile) error {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	now := time.Now()
	dirs := map[string]bool{}
	for _, f := range files {
		for d := path.Dir(f.name); d != "." && !dirs[d]; d = path.Dir(d) {
			dirs[d] = true
		}
	}
	// Parents first.
	sorted := make([]string, 0, len(dirs))
	for d := range dirs {
		sorted = append(sorted, d)
	}
	sortByDepth(sorted)
	for _, d := range sorted {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: d + "/", Mode: 0o755, ModTime: now, Uid: p.uid, Gid: p.gid}); err != nil {
			return err
		}
	}
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: f.name, Mode: int64(f.mode.Perm()), Size: int64(len(f.data)), ModTime: now, Uid: p.uid, Gid: p.gid}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := r.cli.CopyToContainer(ctx, ctrID, dir, &buf, container.CopyToContainerOptions{}); err != nil {
		return fmt.Errorf("copy files into %s: %w", dir, err)
	}
	return nil
}

func sortByDepth(dirs []string) {
	for i := 1; i < len(dirs); i++ {
		for j := i; j > 0 && strings.Count(dirs[j], "/") < strings.Count(dirs[j-1], "/"); j-- {
			dirs[j], dirs[j-1] = dirs[j-1], dirs[j]
		}
	}
}

// readFile reads a file of the container (running or not); a missing one
// is an error wrapping os.ErrNotExist.
func (r *Runtime) readFile(ctx context.Context, ctrID, p string) ([]byte, error) {
	rc, _, err := r.cli.CopyFromContainer(ctx, ctrID, p)
	if cerrdefs.IsNotFound(err) {
		return nil, fmt.Errorf("%s: %w", p, os.ErrNotExist)
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	if _, err := tr.Next(); err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	b, err := io.ReadAll(tr)
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", p, err)
	}
	return b, nil
}
