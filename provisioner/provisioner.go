// Package provisioner turns an environment's desired state into a running
// PostgreSQL: it queues jobs, runs them on in-process workers and reconciles
// what runs with what the store says should run.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/secret"
	"pgdeck/store"
)

// Kind is what a job does.
type Kind string

// The kinds of job.
const (
	KindDeploy   Kind = "deploy"
	KindRedeploy Kind = "redeploy"
	KindStop     Kind = "stop"
	KindStart    Kind = "start"
	KindRestart  Kind = "restart"
	KindDelete   Kind = "delete"
)

// ParseAction maps an action word from a URL to a job kind (delete has its
// own confirmation and is not an action).
func ParseAction(s string) (Kind, bool) {
	switch k := Kind(s); k {
	case KindDeploy, KindRedeploy, KindStop, KindStart, KindRestart:
		return k, true
	}
	return "", false
}

// ErrInvalidAction is returned for an action that makes no sense in the
// environment's current state; its message says why.
var ErrInvalidAction = errors.New("invalid action")

// ErrBusy is store.ErrBusy: a job is already queued or running for the environment.
var ErrBusy = store.ErrBusy

// Config tells the provisioner where environments live and which ports it may use.
type Config struct {
	// EnvRoot is the folder holding one folder per environment (the local
	// runtime's root): <EnvRoot>/<env>/odoo.conf, filestore/, primary/.
	EnvRoot string
	// PortLow and PortHigh bound the 127.0.0.1 ports handed to environments.
	PortLow, PortHigh int
	// Workers is how many jobs run at once (one per environment at most).
	Workers int
	// PollInterval is how often idle workers look for queued jobs.
	PollInterval time.Duration
	// JobTimeout bounds one job.
	JobTimeout time.Duration
}

// Provisioner queues and runs jobs.
type Provisioner struct {
	cfg   Config
	store *store.Store
	rt    runtime.Runtime
	box   *secret.Box
	log   *slog.Logger
	wake  chan struct{}
}

// New builds a provisioner.
func New(cfg Config, st *store.Store, rt runtime.Runtime, box *secret.Box, log *slog.Logger) *Provisioner {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.JobTimeout <= 0 {
		cfg.JobTimeout = 10 * time.Minute
	}
	return &Provisioner{cfg: cfg, store: st, rt: rt, box: box, log: log, wake: make(chan struct{}, 1)}
}

// Enqueue checks that kind makes sense for env now and queues the job.
// ErrInvalidAction (wrapped, with the reason) or ErrBusy otherwise.
func (p *Provisioner) Enqueue(ctx context.Context, env store.Environment, kind Kind, by string) (store.Job, error) {
	if err := checkAction(env, kind); err != nil {
		return store.Job{}, err
	}
	j, err := p.store.CreateJob(ctx, env.ID, env.Name, string(kind), by)
	if err != nil {
		return store.Job{}, err
	}
	p.log.Info("job queued", "job_id", j.ID, "env", env.Name, "kind", kind, "by", by)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return j, nil
}

func checkAction(env store.Environment, kind Kind) error {
	invalid := func(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidAction, msg) }
	deployed := env.Deployed()
	switch kind {
	case KindDeploy:
		if deployed {
			return invalid(env.Name + " is already deployed; use Redeploy to apply changes.")
		}
	case KindRedeploy:
		if !deployed {
			return invalid(env.Name + " is not deployed yet; use Deploy.")
		}
	case KindStop:
		if !deployed {
			return invalid(env.Name + " is not deployed yet.")
		}
		if env.DesiredState == "stopped" {
			return invalid(env.Name + " is already stopped.")
		}
	case KindStart:
		if !deployed {
			return invalid(env.Name + " is not deployed yet; use Deploy.")
		}
		if env.DesiredState == "running" {
			return invalid(env.Name + " is already running; use Restart if its health shows Error.")
		}
	case KindRestart:
		if !deployed {
			return invalid(env.Name + " is not deployed yet; use Deploy.")
		}
		if env.DesiredState == "stopped" {
			return invalid(env.Name + " is stopped; use Start.")
		}
	case KindDelete:
	default:
		return invalid("unknown action " + string(kind) + ".")
	}
	return nil
}

// Run reconciles, then runs workers until ctx ends. Jobs in flight when ctx
// ends are allowed to finish their current step sequence (bounded by
// JobTimeout); no new job is claimed.
func (p *Provisioner) Run(ctx context.Context) error {
	if err := p.Reconcile(ctx); err != nil {
		return err
	}
	var wg sync.WaitGroup
	for i := 0; i < p.cfg.Workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.worker(ctx)
		}()
	}
	wg.Wait()
	return nil
}

func (p *Provisioner) worker(ctx context.Context) {
	t := time.NewTicker(p.cfg.PollInterval)
	defer t.Stop()
	for {
		for ctx.Err() == nil && p.RunOne(ctx) {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-p.wake:
		}
	}
}

// RunOne claims and runs one queued job; false when none was waiting.
func (p *Provisioner) RunOne(ctx context.Context) bool {
	j, err := p.store.ClaimJob(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("claim job", "error", err)
		}
		return false
	}
	// Let the job finish even if pgdeck is shutting down: a job cut short is
	// resumed at the next start, but finishing now is kinder.
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.JobTimeout)
	defer cancel()
	p.execute(jctx, j)
	return true
}

// Reconcile runs at start: jobs left running by a process that died are
// queued again (their steps are idempotent), environments that should run
// but do not get a start job, and folders of environments that no longer
// exist are removed.
func (p *Provisioner) Reconcile(ctx context.Context) error {
	requeued, err := p.store.RequeueRunningJobs(ctx)
	if err != nil {
		return err
	}
	for _, j := range requeued {
		p.log.Warn("resuming a job cut short by a restart", "job_id", j.ID, "env", j.EnvName, "kind", j.Kind, "step", j.Step)
		_ = p.store.AppendJobLog(ctx, j.ID, "pgdeck restarted during step \""+j.Step+"\"; resuming the job")
	}
	envs, err := p.store.ListEnvironments(ctx)
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, e := range envs {
		known[e.Name] = true
		if !e.Deployed() || e.DesiredState != "running" {
			continue
		}
		if _, err := p.store.ActiveJob(ctx, e.Name); err == nil {
			continue
		}
		st, err := p.rt.Status(ctx, primary(e.Name))
		if err != nil {
			p.log.Error("reconcile: status", "env", e.Name, "error", err)
			continue
		}
		if st.State == runtime.StateRunning {
			continue
		}
		p.log.Warn("reconcile: environment should run but does not; starting it", "env", e.Name, "state", st.State, "reason", st.Reason)
		if _, err := p.store.CreateJob(ctx, e.ID, e.Name, string(KindStart), "pgdeck (reconcile)"); err != nil && !errors.Is(err, store.ErrBusy) {
			return err
		}
	}
	entries, err := os.ReadDir(p.cfg.EnvRoot)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("provisioner: reconcile: %w", err)
	}
	for _, d := range entries {
		if !d.IsDir() || known[d.Name()] {
			continue
		}
		if _, err := p.store.ActiveJob(ctx, d.Name()); err == nil {
			continue // a delete job will finish it
		}
		p.log.Warn("reconcile: removing the folder of an environment that no longer exists", "env", d.Name())
		if err := p.removeAll(ctx, d.Name()); err != nil {
			p.log.Error("reconcile: remove orphan", "env", d.Name(), "error", err)
		}
	}
	return nil
}

func primary(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
}

// envDir is the environment's folder.
func (p *Provisioner) envDir(env string) string { return filepath.Join(p.cfg.EnvRoot, env) }

// removeAll removes every instance of the environment and its folder.
func (p *Provisioner) removeAll(ctx context.Context, env string) error {
	for _, r := range []runtime.Role{runtime.RoleReplica, runtime.RolePooler, runtime.RolePrimary} {
		if err := p.rt.Remove(ctx, runtime.InstanceID{Env: env, Role: r}); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(p.envDir(env)); err != nil {
		return fmt.Errorf("remove %s: %w", p.envDir(env), err)
	}
	return nil
}
