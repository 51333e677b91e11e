// Package provisioner turns an environment's desired state into a running
// PostgreSQL: it queues jobs, runs them on in-process workers and reconciles
// what runs with what the store says should run.
package provisioner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
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
	// PortLow and PortHigh bound the 127.0.0.1 ports handed to environments.
	PortLow, PortHigh int
	// Workers is how many jobs run at once (one per environment at most).
	Workers int
	// PollInterval is how often idle workers look for queued jobs.
	PollInterval time.Duration
	// JobTimeout bounds one job.
	JobTimeout time.Duration
	// OdooUser is the OS user Odoo runs as: it reads odoo.conf and owns the
	// filestore. The zero value leaves both to pgdeck's own user.
	OdooUser OdooUser
	// RequeueInterval is how often Run looks for jobs whose instance went
	// away (another pgdeck sharing the store was killed) to resume them.
	RequeueInterval time.Duration
}

// poolSpare is how many of the store's connections Run leaves to everything
// but the jobs: each running job keeps one for its lock.
const poolSpare = 8

// Provisioner queues and runs jobs.
type Provisioner struct {
	cfg   Config
	store *store.Store
	rt    runtime.Runtime
	box   *secret.Box
	log   *slog.Logger
	wake  chan struct{}

	mu sync.Mutex
	// running holds the ids of the jobs this process runs now: never
	// requeued, even if the session holding a job's lock was lost (the
	// control-plane database restarted) while its worker goes on.
	running map[int64]bool
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
	if cfg.RequeueInterval <= 0 {
		cfg.RequeueInterval = 30 * time.Second
	}
	return &Provisioner{cfg: cfg, store: st, rt: rt, box: box, log: log, wake: make(chan struct{}, 1), running: map[int64]bool{}}
}

// Enqueue checks that kind makes sense for env now and queues the job.
// ErrInvalidAction (wrapped, with the reason) or ErrBusy otherwise.
func (p *Provisioner) Enqueue(ctx context.Context, env store.Environment, kind Kind, by string) (store.Job, error) {
	// While a job runs, "wait for it" is the useful answer whatever the
	// action; the unique index in CreateJob still settles races.
	if _, err := p.store.ActiveJob(ctx, env.Name); err == nil {
		return store.Job{}, fmt.Errorf("%s: %w", env.Name, ErrBusy)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Job{}, err
	}
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

// Run reconciles, then runs workers until ctx ends, and every
// RequeueInterval resumes jobs whose instance went away. Jobs in flight when
// ctx ends are allowed to finish their current step sequence (bounded by
// JobTimeout); no new job is claimed. Each running job keeps one of the
// store's connections, so at most MaxConns-8 workers run.
func (p *Provisioner) Run(ctx context.Context) error {
	if err := p.Reconcile(ctx); err != nil {
		return err
	}
	workers := p.cfg.Workers
	if most := max(1, int(p.store.Pool.Config().MaxConns)-poolSpare); workers > most {
		p.log.Warn("fewer workers than configured: each running job holds a store connection; raise pool_max_conns in the database URL",
			"workers", workers, "running", most, "pool_max_conns", p.store.Pool.Config().MaxConns)
		workers = most
	}
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { p.worker(ctx) })
	}
	wg.Go(func() { p.requeueLoop(ctx) })
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

// requeueLoop resumes, every RequeueInterval, the jobs left running by an
// instance that went away, and wakes a worker for them.
func (p *Provisioner) requeueLoop(ctx context.Context) {
	t := time.NewTicker(p.cfg.RequeueInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		n, err := p.requeueOrphans(ctx, "resuming a job whose pgdeck instance went away",
			`the pgdeck instance running this job went away during step "%s"; resuming the job`)
		if err != nil {
			if ctx.Err() == nil {
				p.log.Error("requeue jobs of instances that went away", "error", err)
			}
			continue
		}
		if n > 0 {
			select {
			case p.wake <- struct{}{}:
			default:
			}
		}
	}
}

// requeueOrphans queues again the running jobs that no live instance owns,
// logging msg for each and adding jobLine (a format taking the step) to its
// job log.
func (p *Provisioner) requeueOrphans(ctx context.Context, msg, jobLine string) (int, error) {
	p.mu.Lock()
	mine := make([]int64, 0, len(p.running))
	for id := range p.running {
		mine = append(mine, id)
	}
	p.mu.Unlock()
	requeued, err := p.store.RequeueRunningJobs(ctx, mine...)
	if err != nil {
		return 0, err
	}
	for _, j := range requeued {
		p.log.Warn(msg, "job_id", j.ID, "env", j.EnvName, "kind", j.Kind, "step", j.Step)
		_ = p.store.AppendJobLog(ctx, j.ID, fmt.Sprintf(jobLine, j.Step))
	}
	return len(requeued), nil
}

// RunOne claims and runs one queued job; false when none was waiting. The
// job's lock (its ownership) is released once the job is finished.
func (p *Provisioner) RunOne(ctx context.Context) bool {
	j, lock, err := p.store.ClaimJob(ctx)
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		if ctx.Err() == nil {
			p.log.Error("claim job", "error", err)
		}
		return false
	}
	p.mu.Lock()
	p.running[j.ID] = true
	p.mu.Unlock()
	defer func() {
		lock.Release()
		p.mu.Lock()
		delete(p.running, j.ID)
		p.mu.Unlock()
	}()
	// Let the job finish even if pgdeck is shutting down: a job cut short is
	// resumed at the next start, but finishing now is kinder.
	jctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), p.cfg.JobTimeout)
	defer cancel()
	p.execute(jctx, j)
	return true
}

// Reconcile runs at start: running jobs that no live instance owns (left by
// a process that died) are queued again (their steps are idempotent),
// environments that should run but do not get a start job, and folders of
// environments that no longer exist are removed. Jobs another live pgdeck
// sharing the store is running are left alone.
func (p *Provisioner) Reconcile(ctx context.Context) error {
	if _, err := p.requeueOrphans(ctx, "resuming a job cut short by a restart",
		`pgdeck restarted during step "%s"; resuming the job`); err != nil {
		return err
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
	held, err := p.rt.List(ctx)
	if err != nil {
		return fmt.Errorf("provisioner: reconcile: %w", err)
	}
	orphans := map[string]bool{}
	for _, id := range held {
		if !known[id.Env] {
			orphans[id.Env] = true
		}
	}
	for env := range orphans {
		if _, err := p.store.ActiveJob(ctx, env); err == nil {
			continue // a delete job will finish it
		}
		p.log.Warn("reconcile: removing the instances and files of an environment that no longer exists", "env", env)
		if err := p.removeAll(ctx, env); err != nil {
			p.log.Error("reconcile: remove orphan", "env", env, "error", err)
		}
	}
	return nil
}

func primary(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
}

// removeAll removes every instance of the environment and its own files.
func (p *Provisioner) removeAll(ctx context.Context, env string) error {
	return p.rt.RemoveEnv(ctx, env)
}
