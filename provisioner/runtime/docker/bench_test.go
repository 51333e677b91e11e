package docker_test

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/mount"
	"github.com/docker/docker/api/types/volume"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// BenchmarkCreateStart compares a primary made by the docker runtime
// (Create: network, volume, initdb in a one-shot container, configuration
// files; Start: the server's container until pg_isready answers) with the
// raw steps through the same engine API: one container running initdb and
// then postgres, until pg_isready answers in it. It also times a bare
// container (create, start, wait for `true`, remove): the engine's own
// overhead, which the runtime pays twice (initdb's container, the
// server's). Beside them, the same primary made by the local runtime
// (initdb and pg_ctl on this host), in the same run. Each iteration runs
// all four; removing is not timed. Metrics: raw-ms/op, pgdeck-ms/op, x-raw
// (their ratio), container-ms/op and local-ms/op. Run with: make bench, or
// go test -run '^$' -bench CreateStart -benchtime 5x ./provisioner/runtime/docker/
func BenchmarkCreateStart(b *testing.B) {
	rt := newRuntime(b)
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		b.Fatalf("the PostgreSQL binaries are required (apt-get install -y postgresql): %v", err)
	}
	lrt, err := local.New(local.Config{Root: filepath.Join(testkit.TempDir(b), "envs"), BinDir: bin,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		b.Fatal(err)
	}
	cli, err := engine.Client()
	if err != nil {
		b.Fatal(err)
	}
	defer cli.Close()
	ctx := context.Background()

	var raw, pgdeck, bare, onHost time.Duration
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		start := time.Now()
		bareContainer(b, cli)
		bare += time.Since(start)

		name := fmt.Sprintf("raw-%d", i)
		start = time.Now()
		rawPrimary(b, cli, name, testkit.FreePort(b))
		raw += time.Since(start)
		cli.ContainerRemove(ctx, name, container.RemoveOptions{Force: true})
		cli.VolumeRemove(ctx, name, true)

		env := fmt.Sprintf("bench-%d", i)
		id := runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
		hba := []string{"host all all " + rt.ClientNetwork(env) + " scram-sha-256"}
		start = time.Now()
		if err := rt.Create(ctx, runtime.Spec{ID: id, Port: testkit.FreePort(b), HBA: hba}); err != nil {
			b.Fatal(err)
		}
		if err := rt.Start(ctx, id); err != nil {
			b.Fatal(err)
		}
		pgdeck += time.Since(start)
		if err := rt.RemoveEnv(ctx, env); err != nil {
			b.Fatal(err)
		}

		start = time.Now()
		if err := lrt.Create(ctx, runtime.Spec{ID: id, Port: testkit.FreePort(b), HBA: []string{"host all all 127.0.0.1/32 scram-sha-256"}}); err != nil {
			b.Fatal(err)
		}
		if err := lrt.Start(ctx, id); err != nil {
			b.Fatal(err)
		}
		onHost += time.Since(start)
		if err := lrt.RemoveEnv(ctx, env); err != nil {
			b.Fatal(err)
		}
	}
	n := float64(b.N)
	b.ReportMetric(float64(raw.Milliseconds())/n, "raw-ms/op")
	b.ReportMetric(float64(pgdeck.Milliseconds())/n, "pgdeck-ms/op")
	b.ReportMetric(float64(pgdeck)/float64(raw), "x-raw")
	b.ReportMetric(float64(bare.Milliseconds())/n, "container-ms/op")
	b.ReportMetric(float64(onHost.Milliseconds())/n, "local-ms/op")
	per := func(d time.Duration) time.Duration { return (d / time.Duration(b.N)).Round(time.Millisecond) }
	b.Logf("primary through the docker runtime: %v, raw container (initdb + postgres): %v, ratio %.2f; a bare container: %v (paid twice); the local runtime: %v (docker runtime x%.2f of it)",
		per(pgdeck), per(raw), float64(pgdeck)/float64(raw), per(bare), per(onHost), float64(pgdeck)/float64(onHost))
}

// bareContainer runs `true` in the image: create, start, wait, remove.
func bareContainer(b *testing.B, cli *client.Client) {
	ctx := context.Background()
	c, err := cli.ContainerCreate(ctx, &container.Config{Image: dockertest.ImageTag, Cmd: []string{"true"}},
		&container.HostConfig{NetworkMode: "none"}, nil, nil, "")
	if err != nil {
		b.Fatal(err)
	}
	defer cli.ContainerRemove(ctx, c.ID, container.RemoveOptions{Force: true})
	waitC, errC := cli.ContainerWait(ctx, c.ID, container.WaitConditionNextExit)
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		b.Fatal(err)
	}
	select {
	case <-waitC:
	case err := <-errC:
		b.Fatal(err)
	}
}

// rawPrimary is `docker run -d -v name:/var/lib/postgresql -p port:port
// image sh -c 'initdb … && exec postgres …'` through the API, then
// pg_isready in it until it answers.
func rawPrimary(b *testing.B, cli *client.Client, name string, port int) {
	ctx := context.Background()
	if _, err := cli.VolumeCreate(ctx, volume.CreateOptions{Name: name}); err != nil {
		b.Fatal(err)
	}
	p := nat.Port(strconv.Itoa(port) + "/tcp")
	script := `set -e; bin=/usr/lib/postgresql/15/bin; D=/var/lib/postgresql/pgdata
$bin/initdb -D $D -U postgres -E UTF8 --locale=C.UTF-8 -A trust >/dev/null
exec $bin/postgres -D $D -c listen_addresses='*' -c port=` + strconv.Itoa(port) + ` -c unix_socket_directories=/tmp`
	c, err := cli.ContainerCreate(ctx, &container.Config{
		Image: dockertest.ImageTag, User: "postgres", Cmd: []string{"sh", "-c", script},
		ExposedPorts: nat.PortSet{p: {}},
	}, &container.HostConfig{
		PortBindings: nat.PortMap{p: {{HostIP: "127.0.0.1", HostPort: strconv.Itoa(port)}}},
		Mounts:       []mount.Mount{{Type: mount.TypeVolume, Source: name, Target: "/var/lib/postgresql"}},
	}, nil, nil, name)
	if err != nil {
		b.Fatal(err)
	}
	if err := cli.ContainerStart(ctx, c.ID, container.StartOptions{}); err != nil {
		b.Fatal(err)
	}
	deadline := time.Now().Add(90 * time.Second)
	for {
		ex, err := cli.ContainerExecCreate(ctx, c.ID, container.ExecOptions{User: "postgres",
			Cmd: []string{"/usr/lib/postgresql/15/bin/pg_isready", "-q", "-h", "/tmp", "-p", strconv.Itoa(port)}})
		if err == nil {
			if err = cli.ContainerExecStart(ctx, ex.ID, container.ExecStartOptions{}); err == nil {
				for {
					st, ierr := cli.ContainerExecInspect(ctx, ex.ID)
					if ierr != nil || !st.Running {
						if ierr == nil && st.ExitCode == 0 {
							return
						}
						break
					}
					time.Sleep(10 * time.Millisecond)
				}
			}
		}
		if time.Now().After(deadline) {
			b.Fatalf("raw primary not ready after 90s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}
