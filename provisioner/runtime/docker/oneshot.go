package docker

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strconv"
	"strings"

	cerrdefs "github.com/containerd/errdefs"
	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/network"
	"github.com/docker/docker/pkg/stdcopy"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// oneShot is a container that runs one command to its end (initdb,
// pg_basebackup, a probe of the image) and is removed.
type oneShot struct {
	name    string // "" for an anonymous one
	image   string
	user    string
	network string // "none" when empty
	cmd     []string
	env     []string
	mounts  []mount.Mount
}

// runOnce runs o to its end, handing each output line (split at line feeds
// and carriage returns) to onLine (nil: none), and returns the last lines
// onLine did not take. A non-zero exit is an error. The container is
// removed in every case, also when ctx ends.
func (r *Runtime) runOnce(ctx context.Context, o oneShot, onLine func(string) bool) (string, error) {
	if o.network == "" {
		o.network = "none"
	}
	if o.name != "" {
		// A leftover of a pgdeck killed while it ran.
		r.cli.ContainerRemove(ctx, o.name, container.RemoveOptions{Force: true})
	}
	created, err := r.cli.ContainerCreate(ctx, &container.Config{
		Image:      o.image,
		User:       o.user,
		Cmd:        o.cmd,
		Env:        o.env,
		Entrypoint: []string{},
		WorkingDir: "/",
		Labels:     map[string]string{"pgdeck.oneshot": "true"},
	}, &container.HostConfig{
		NetworkMode: container.NetworkMode(o.network),
		Mounts:      o.mounts,
	}, &network.NetworkingConfig{}, nil, o.name)
	if err != nil {
		return "", fmt.Errorf("create container for %s: %w", o.cmd[0], err)
	}
	defer func() {
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), opTimeout)
		defer cancel()
		if err := r.cli.ContainerRemove(rctx, created.ID, container.RemoveOptions{Force: true}); err != nil && !cerrdefs.IsNotFound(err) {
			r.log.Warn("remove one-shot container", "container", created.ID, "error", err)
		}
	}()
	if err := r.cli.ContainerStart(ctx, created.ID, container.StartOptions{}); err != nil {
		return "", fmt.Errorf("start %s: %w", o.cmd[0], err)
	}
	logs, err := r.cli.ContainerLogs(ctx, created.ID, container.LogsOptions{ShowStdout: true, ShowStderr: true, Follow: true})
	if err != nil {
		return "", fmt.Errorf("logs of %s: %w", o.cmd[0], err)
	}
	// stdcopy writes from one goroutine, as LineWriter wants.
	lw := pgexec.NewLineWriter(onLine)
	_, copyErr := stdcopy.StdCopy(lw, lw, logs)
	logs.Close()
	lw.Flush()
	tail := lw.Tail()
	if ctx.Err() != nil {
		return tail, ctx.Err()
	}
	waitC, errC := r.cli.ContainerWait(ctx, created.ID, container.WaitConditionNotRunning)
	select {
	case w := <-waitC:
		if w.StatusCode != 0 {
			return tail, fmt.Errorf("%s exited with code %d", o.cmd[0], w.StatusCode)
		}
	case err := <-errC:
		return tail, fmt.Errorf("wait for %s: %w", o.cmd[0], err)
	}
	if copyErr != nil && !errors.Is(copyErr, io.EOF) {
		return tail, fmt.Errorf("logs of %s: %w", o.cmd[0], copyErr)
	}
	return tail, nil
}

// probe is what an image holds: where its PostgreSQL binaries are and
// their major version, and its pgbouncer.
type probe struct {
	binDir    string
	major     int
	version   string
	pgbouncer string
	// uid and gid are the postgres user's, who owns what the runtime
	// writes into a volume.
	uid, gid int
}

// probeScript prints the image's PostgreSQL binary folder, postgres
// --version and pgbouncer's path, one per line.
const probeScript = `for d in "$1" /usr/lib/postgresql/*/bin /usr/local/pgsql/bin /usr/local/bin /usr/bin; do
  if [ -n "$d" ] && [ -x "$d/postgres" ]; then echo "bindir=$d"; echo "version=$("$d/postgres" --version)"; break; fi
done
for p in "$(command -v pgbouncer 2>/dev/null)" /usr/sbin/pgbouncer /usr/bin/pgbouncer /usr/local/bin/pgbouncer; do
  if [ -n "$p" ] && [ -x "$p" ]; then echo "pgbouncer=$p"; break; fi
done
echo "uid=$(id -u)"; echo "gid=$(id -g)"
exit 0`

var majorVersion = regexp.MustCompile(`\(PostgreSQL\) (\d+)`)

// probeImage runs a short container of image to find its binaries, once
// per image and runtime.
func (r *Runtime) probeImage(ctx context.Context, image string) (*probe, error) {
	r.mu.Lock()
	p, ok := r.probes[image]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	defer r.lock("probe " + image)()
	r.mu.Lock()
	p, ok = r.probes[image]
	r.mu.Unlock()
	if ok {
		return p, nil
	}
	out, err := r.runOnce(ctx, oneShot{image: image, user: runAsUser, cmd: []string{"sh", "-c", probeScript, "sh", r.binDir}}, nil)
	if err != nil {
		if cerrdefs.IsNotFound(err) {
			return nil, fmt.Errorf("image %s is not on the engine: pull or load it first (%v)", image, err)
		}
		return nil, fmt.Errorf("probe image %s: %w: %s", image, err, oneLine(out))
	}
	p = &probe{}
	for _, l := range strings.Split(out, "\n") {
		k, v, _ := strings.Cut(l, "=")
		switch k {
		case "bindir":
			p.binDir = v
		case "version":
			p.version = v
			if m := majorVersion.FindStringSubmatch(v); m != nil {
				p.major, _ = strconv.Atoi(m[1])
			}
		case "pgbouncer":
			p.pgbouncer = v
		case "uid":
			p.uid, _ = strconv.Atoi(v)
		case "gid":
			p.gid, _ = strconv.Atoi(v)
		}
	}
	r.log.Info("probed image", "image", image, "bin_dir", p.binDir, "postgres", p.version, "pgbouncer", p.pgbouncer)
	r.mu.Lock()
	r.probes[image] = p
	r.mu.Unlock()
	return p, nil
}

// postgresProbe returns the PostgreSQL image's probe, which must have the
// binaries.
func (r *Runtime) postgresProbe(ctx context.Context) (*probe, error) {
	p, err := r.probeImage(ctx, r.image)
	if err != nil {
		return nil, err
	}
	if p.binDir == "" || p.major == 0 {
		return nil, fmt.Errorf("image %s has no PostgreSQL binaries (postgres in /usr/lib/postgresql/*/bin, /usr/local/bin or /usr/bin); set the binary folder", r.image)
	}
	return p, nil
}

// poolerProbe returns the pooler image's probe, which must have pgbouncer.
func (r *Runtime) poolerProbe(ctx context.Context) (*probe, error) {
	p, err := r.probeImage(ctx, r.pooler)
	if err != nil {
		return nil, err
	}
	if p.pgbouncer == "" {
		return nil, fmt.Errorf("image %s has no pgbouncer", r.pooler)
	}
	return p, nil
}

// probeFor returns the probe of the image the instance runs.
func (r *Runtime) probeFor(ctx context.Context, id runtime.InstanceID) (*probe, error) {
	if isPooler(id) {
		return r.poolerProbe(ctx)
	}
	return r.postgresProbe(ctx)
}
