package docker

import (
	"context"
	"fmt"
	"strings"
	"syscall"

	"pgdeck/provisioner/runtime"
)

// Capacity reads what the engine's machine has: its memory and CPUs from
// the engine, and, when the engine is on this machine (a unix socket), the
// size of the filesystem of its data root; Storage is 0 when it cannot be
// read (a remote engine).
func (r *Runtime) Capacity(ctx context.Context) (runtime.Resources, error) {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return runtime.Resources{}, fmt.Errorf("docker runtime: engine info: %w", err)
	}
	out := runtime.Resources{MemoryMB: int(info.MemTotal >> 20), CPUs: float64(info.NCPU)}
	if strings.HasPrefix(r.cli.DaemonHost(), "unix://") && info.DockerRootDir != "" {
		var fs syscall.Statfs_t
		if syscall.Statfs(info.DockerRootDir, &fs) == nil {
			out.StorageGB = int(fs.Blocks * uint64(fs.Bsize) >> 30)
		}
	}
	return out, nil
}

// EngineID names the engine the runtime talks to: the same engine reached
// at two endpoints has one. docker info's ID alone is not enough: engines
// started on one machine with the same configuration folder share it (it
// comes from /etc/docker), so the machine's name and the engine's data
// root are part of it.
func (r *Runtime) EngineID(ctx context.Context) (string, error) {
	info, err := r.cli.Info(ctx)
	if err != nil {
		return "", fmt.Errorf("docker runtime: engine info: %w", err)
	}
	return info.ID + " " + info.Name + ":" + info.DockerRootDir, nil
}

// CheckImages makes sure the engine has the PostgreSQL and PgBouncer
// images and that they hold what the runtime runs (postgres and its tools,
// pgbouncer). Images are never pulled.
func (r *Runtime) CheckImages(ctx context.Context) error {
	if _, err := r.postgresProbe(ctx); err != nil {
		return err
	}
	_, err := r.poolerProbe(ctx)
	return err
}
