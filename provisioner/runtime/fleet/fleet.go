// Package fleet is the runtime of an installation whose environments live
// on several servers: it implements runtime.Runtime by sending each call to
// the runtime of the server the environment lives on, as a Directory says.
// The provisioner and the monitor use it like any runtime.
package fleet

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"pgdeck/provisioner/runtime"
)

// ErrNoServer is returned (wrapped) by Directory.ServerOf for an
// environment that lives on no server (it does not exist).
var ErrNoServer = errors.New("environment lives on no server")

// lookupTimeout bounds a Directory lookup made without a caller's context.
const lookupTimeout = 10 * time.Second

// Directory says which server an environment lives on and hands out each
// server's runtime.
type Directory interface {
	// ServerOf returns the name of the server env lives on; an error
	// wrapping ErrNoServer when it lives on none.
	ServerOf(ctx context.Context, env string) (string, error)
	// Runtime returns the named server's runtime.
	Runtime(ctx context.Context, server string) (runtime.Runtime, error)
	// Servers returns every server's name.
	Servers(ctx context.Context) ([]string, error)
}

// Pinger is implemented by a runtime whose engine may be unreachable (a
// Docker host); a runtime without it is always reachable.
type Pinger interface {
	Ping(ctx context.Context) error
}

// Fleet is a runtime.Runtime over the servers of a Directory.
type Fleet struct {
	dir Directory
	log *slog.Logger

	mu sync.Mutex
	// seen records where List found instances of environments the
	// directory does not know (left behind), so that they can be removed.
	seen map[string]string
}

var _ runtime.Runtime = (*Fleet)(nil)

// New returns a fleet over dir's servers.
func New(dir Directory, log *slog.Logger) *Fleet {
	if log == nil {
		log = slog.Default()
	}
	return &Fleet{dir: dir, log: log.With("runtime", "fleet"), seen: map[string]string{}}
}

// ServerOf returns the server env lives on: the directory's answer, else
// where List last found its instances.
func (f *Fleet) ServerOf(ctx context.Context, env string) (string, error) {
	name, err := f.dir.ServerOf(ctx, env)
	if errors.Is(err, ErrNoServer) {
		f.mu.Lock()
		s, ok := f.seen[env]
		f.mu.Unlock()
		if ok {
			return s, nil
		}
	}
	return name, err
}

// of returns the runtime of env's server.
func (f *Fleet) of(ctx context.Context, env string) (runtime.Runtime, error) {
	name, err := f.ServerOf(ctx, env)
	if err != nil {
		return nil, fmt.Errorf("fleet: %s: %w", env, err)
	}
	rt, err := f.dir.Runtime(ctx, name)
	if err != nil {
		return nil, fmt.Errorf("fleet: server %s: %w", name, err)
	}
	return rt, nil
}

// ofNow is of for the methods that take no context.
func (f *Fleet) ofNow(env string) (runtime.Runtime, error) {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	return f.of(ctx, env)
}

// CheckServer reports whether the named server's engine answers.
func (f *Fleet) CheckServer(ctx context.Context, server string) error {
	rt, err := f.dir.Runtime(ctx, server)
	if err != nil {
		return err
	}
	if p, ok := rt.(Pinger); ok {
		return p.Ping(ctx)
	}
	return nil
}

// Create implements runtime.Runtime.
func (f *Fleet) Create(ctx context.Context, spec runtime.Spec) error {
	rt, err := f.of(ctx, spec.ID.Env)
	if err != nil {
		return err
	}
	return rt.Create(ctx, spec)
}

// Start implements runtime.Runtime.
func (f *Fleet) Start(ctx context.Context, id runtime.InstanceID) error {
	rt, err := f.of(ctx, id.Env)
	if err != nil {
		return err
	}
	return rt.Start(ctx, id)
}

// Stop implements runtime.Runtime.
func (f *Fleet) Stop(ctx context.Context, id runtime.InstanceID) error {
	rt, err := f.of(ctx, id.Env)
	if errors.Is(err, ErrNoServer) {
		return nil
	}
	if err != nil {
		return err
	}
	return rt.Stop(ctx, id)
}

// Remove implements runtime.Runtime.
func (f *Fleet) Remove(ctx context.Context, id runtime.InstanceID) error {
	rt, err := f.of(ctx, id.Env)
	if errors.Is(err, ErrNoServer) {
		return nil
	}
	if err != nil {
		return err
	}
	return rt.Remove(ctx, id)
}

// Status implements runtime.Runtime; an environment on no server is
// missing.
func (f *Fleet) Status(ctx context.Context, id runtime.InstanceID) (runtime.Status, error) {
	rt, err := f.of(ctx, id.Env)
	if errors.Is(err, ErrNoServer) {
		return runtime.Status{State: runtime.StateMissing}, nil
	}
	if err != nil {
		return runtime.Status{}, err
	}
	return rt.Status(ctx, id)
}

// List returns the instances of every server that answers; one that does
// not is logged and passed over (its instances are neither listed nor
// taken for gone).
func (f *Fleet) List(ctx context.Context) ([]runtime.InstanceID, error) {
	names, err := f.dir.Servers(ctx)
	if err != nil {
		return nil, fmt.Errorf("fleet: %w", err)
	}
	var out []runtime.InstanceID
	for _, name := range names {
		rt, err := f.dir.Runtime(ctx, name)
		var ids []runtime.InstanceID
		if err == nil {
			ids, err = rt.List(ctx)
		}
		if err != nil {
			f.log.Warn("server did not answer: its instances are not listed", "server", name, "error", err)
			continue
		}
		f.mu.Lock()
		for _, id := range ids {
			if _, ok := f.seen[id.Env]; !ok {
				f.seen[id.Env] = name
			}
		}
		f.mu.Unlock()
		out = append(out, ids...)
	}
	return out, nil
}

// WriteFile implements runtime.Runtime.
func (f *Fleet) WriteFile(ctx context.Context, id runtime.InstanceID, rel string, data []byte, mode os.FileMode) error {
	rt, err := f.of(ctx, id.Env)
	if err != nil {
		return err
	}
	return rt.WriteFile(ctx, id, rel, data, mode)
}

// InstancePath implements runtime.Runtime.
func (f *Fleet) InstancePath(id runtime.InstanceID, rel string) string {
	rt, err := f.ofNow(id.Env)
	if err != nil {
		return ""
	}
	return rt.InstancePath(id, rel)
}

// Exec implements runtime.Runtime.
func (f *Fleet) Exec(ctx context.Context, id runtime.InstanceID, stdin []byte, argv ...string) ([]byte, error) {
	rt, err := f.of(ctx, id.Env)
	if err != nil {
		return nil, err
	}
	return rt.Exec(ctx, id, stdin, argv...)
}

// Stream implements runtime.Runtime.
func (f *Fleet) Stream(ctx context.Context, id runtime.InstanceID, in io.Reader, out io.Writer, argv ...string) error {
	rt, err := f.of(ctx, id.Env)
	if err != nil {
		return err
	}
	return rt.Stream(ctx, id, in, out, argv...)
}

// Address implements runtime.Runtime.
func (f *Fleet) Address(id runtime.InstanceID) (string, int) {
	rt, err := f.ofNow(id.Env)
	if err != nil {
		return "", 0
	}
	return rt.Address(id)
}

// PeerAddress implements runtime.Runtime.
func (f *Fleet) PeerAddress(id runtime.InstanceID) (string, int) {
	rt, err := f.ofNow(id.Env)
	if err != nil {
		return "", 0
	}
	return rt.PeerAddress(id)
}

// PortFree reports whether port is free on every server that answers:
// ports are handed out once for all servers.
func (f *Fleet) PortFree(port int) bool {
	ctx, cancel := context.WithTimeout(context.Background(), lookupTimeout)
	defer cancel()
	names, err := f.dir.Servers(ctx)
	if err != nil {
		return false
	}
	for _, name := range names {
		rt, err := f.dir.Runtime(ctx, name)
		if err != nil {
			continue
		}
		if !rt.PortFree(port) {
			return false
		}
	}
	return true
}

// ClientNetwork implements runtime.Runtime.
func (f *Fleet) ClientNetwork(env string) string {
	rt, err := f.ofNow(env)
	if err != nil {
		return ""
	}
	return rt.ClientNetwork(env)
}

// EnvPath implements runtime.Runtime.
func (f *Fleet) EnvPath(env, rel string) string {
	rt, err := f.ofNow(env)
	if err != nil {
		return ""
	}
	return rt.EnvPath(env, rel)
}

// MakeEnvDir implements runtime.Runtime.
func (f *Fleet) MakeEnvDir(ctx context.Context, env, rel string, owner runtime.Owner) error {
	rt, err := f.of(ctx, env)
	if err != nil {
		return err
	}
	return rt.MakeEnvDir(ctx, env, rel, owner)
}

// WriteEnvFile implements runtime.Runtime.
func (f *Fleet) WriteEnvFile(ctx context.Context, env, rel string, data []byte, mode os.FileMode, owner runtime.Owner) error {
	rt, err := f.of(ctx, env)
	if err != nil {
		return err
	}
	return rt.WriteEnvFile(ctx, env, rel, data, mode, owner)
}

// RemoveEnv removes the environment from its server; one that lives on no
// server is removed from every server that answers.
func (f *Fleet) RemoveEnv(ctx context.Context, env string) error {
	rt, err := f.of(ctx, env)
	if errors.Is(err, ErrNoServer) {
		names, err := f.dir.Servers(ctx)
		if err != nil {
			return fmt.Errorf("fleet: %w", err)
		}
		for _, name := range names {
			if rt, err := f.dir.Runtime(ctx, name); err == nil {
				if err := rt.RemoveEnv(ctx, env); err != nil {
					return err
				}
			}
		}
		f.forgetSeen(env)
		return nil
	}
	if err != nil {
		return err
	}
	if err := rt.RemoveEnv(ctx, env); err != nil {
		return err
	}
	f.forgetSeen(env)
	return nil
}

func (f *Fleet) forgetSeen(env string) {
	f.mu.Lock()
	delete(f.seen, env)
	f.mu.Unlock()
}

// LogTail returns the last n lines of the instance's log, where its
// server's runtime keeps one.
func (f *Fleet) LogTail(id runtime.InstanceID, n int) (string, error) {
	rt, err := f.ofNow(id.Env)
	if err != nil {
		return "", err
	}
	lt, ok := rt.(interface {
		LogTail(id runtime.InstanceID, n int) (string, error)
	})
	if !ok {
		return "", fmt.Errorf("fleet: the runtime of %s keeps no log", id.Env)
	}
	return lt.LogTail(id, n)
}
