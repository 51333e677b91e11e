package docker_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"testing"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/provisioner/runtime/runtimetest"
)

// engine is the private dockerd of this test binary, with the test image.
var engine *dockertest.Daemon

func TestMain(m *testing.M) {
	flag.Parse()
	os.Exit(run(m))
}

func run(m *testing.M) int {
	d, err := dockertest.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer func() {
		if err := d.Close(); err != nil {
			fmt.Fprintln(os.Stderr, err)
		}
	}()
	if err := dockertest.LoadImage(context.Background(), d.Host); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	engine = d
	return m.Run()
}

// newRuntime returns a Docker runtime on the test engine with its own root
// folder.
func newRuntime(t testing.TB) *docker.Runtime {
	t.Helper()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		logger = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	}
	rt, err := docker.New(docker.Config{
		Host:   engine.Host,
		Image:  dockertest.ImageTag,
		Root:   t.TempDir(),
		Logger: logger,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	return rt
}

func TestConformance(t *testing.T) {
	runtimetest.Run(t, func(t *testing.T) runtime.Runtime { return newRuntime(t) }, func(t *testing.T) int { return testkit.FreePort(t) })
}
