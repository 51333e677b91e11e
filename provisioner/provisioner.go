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

	"pgdeck/provisioner/backup"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// ErrInvalidAction is returned for an action that makes no sense in the
// environment's current state; its message says why.
var ErrInvalidAction = errors.New("invalid action")

// ErrBusy is store.ErrBusy: a job is already queued or running for the
// environment in the same lane.
var ErrBusy = store.ErrBusy

// invalid is ErrInvalidAction saying why.
func invalid(msg string) error { return fmt.Errorf("%w: %s", ErrInvalidAction, msg) }

// Config tells the provisioner where environments live and which ports it may use.
type Config struct {
	// PortLow and PortHigh bound the ports handed to instances.
	PortLow, PortHigh int
	// Workers is how many jobs run at once (one per environment at most).
	Workers int
	// PollInterval is how often idle workers look for queued jobs.
	PollInterval time.Duration
	// ShutdownGrace is how long Stop (or the end of Run's context) waits
	// for running jobs before cancelling them; they resume at the next
	// start. Each kind's own Timeout bounds a job.
	ShutdownGrace time.Duration
	// OdooUser is the OS user Odoo runs as: it reads odoo.conf and owns the
	// filestore. The zero value leaves both to pgdeck's own user.
	OdooUser OdooUser
	// RequeueInterval is how often Run looks for jobs whose instance went
	// away (another pgdeck sharing the store was killed) to resume them.
	RequeueInterval time.Duration
	// Capacity is what this server holds for environments' instances
	// (PGDECK_CAPACITY); a replica must fit in what the deployed ones
	// leave. A zero field is not counted.
	Capacity render.Resources

	// BackupDir holds every backup's archive, a folder per environment
	// (PGDECK_BACKUP_DIR).
	BackupDir string
	// BackupLimits bound the archives pgdeck opens (imports above all).
	BackupLimits backup.Limits
	// PgRestore is pg_restore on this host, which verify runs to list a
	// custom-format dump.
	PgRestore string
	// ScheduleInterval is how often the backup schedule is looked at.
	ScheduleInterval time.Duration
	// Version is pgdeck's version, written into each backup's manifest.
	Version string
}

// poolSpare is how many of the store's connections Run leaves to everything
// but the jobs: each running job keeps one for its lock.
const poolSpare = 8

// Provisioner queues and runs jobs.
type Provisioner struct {
	cfg   Config
	store *store.Store
	rt    runtime.Runtime
	// servers is the directory of servers; nil: every environment lives
	// on the built-in server (rt).
	servers *Servers
	box     *secret.Box
	log     *slog.Logger
	wake    chan struct{}
	// kinds is the registry: every kind of job this provisioner queues
	// and runs. Built by New, read only afterwards.
	kinds map[Kind]JobKind

	// jobsCtx is the parent of every job's context: cancelled (cause
	// errShutdown) when the shutdown grace is over.
	jobsCtx    context.Context
	cancelJobs context.CancelCauseFunc

	mu sync.Mutex
	// stopping is closed (once, under mu, by Stop's call of stop): no job
	// is started after. stoppingCtx is the same as a context.
	stopping    <-chan struct{}
	stoppingCtx context.Context
	stop        context.CancelFunc
	// inflight counts the RunOne calls under way; added to under mu only
	// while stopping is open, so Stop may wait for it.
	inflight sync.WaitGroup
	// running holds the ids of the jobs this process runs now: never
	// requeued, even if the session holding a job's lock was lost (the
	// control-plane database restarted) while its worker goes on.
	running map[int64]bool
}

// New builds a provisioner with the built-in kinds of job and those opts add.
func New(cfg Config, st *store.Store, rt runtime.Runtime, box *secret.Box, log *slog.Logger, opts ...Option) *Provisioner {
	if cfg.Workers <= 0 {
		cfg.Workers = 4
	}
	if cfg.PollInterval <= 0 {
		cfg.PollInterval = time.Second
	}
	if cfg.ShutdownGrace <= 0 {
		cfg.ShutdownGrace = 30 * time.Second
	}
	if cfg.RequeueInterval <= 0 {
		cfg.RequeueInterval = 30 * time.Second
	}
	if cfg.ScheduleInterval <= 0 {
		cfg.ScheduleInterval = 30 * time.Second
	}
	p := &Provisioner{cfg: cfg, store: st, rt: rt, box: box, log: log, wake: make(chan struct{}, 1),
		kinds: make(map[Kind]JobKind, len(builtinKinds)), running: map[int64]bool{}}
	p.stoppingCtx, p.stop = context.WithCancel(context.Background())
	p.stopping = p.stoppingCtx.Done()
	p.jobsCtx, p.cancelJobs = context.WithCancelCause(context.Background())
	for _, k := range builtinKinds {
		p.kinds[k.Kind] = k
	}
	for _, opt := range opts {
		opt(p)
	}
	return p
}

// Enqueue checks that kind makes sense for env now and queues the job, with
// the kind's snapshot as its parameters when it takes one. ErrInvalidAction
// (wrapped, with the reason) or ErrBusy otherwise.
func (p *Provisioner) Enqueue(ctx context.Context, env store.Environment, kind Kind, by string) (store.Job, error) {
	return p.EnqueueWith(ctx, env, kind, nil, by)
}

// EnqueueWith is Enqueue with the job's parameters, of the kind's Params
// type (nil: the kind's snapshot, or none).
func (p *Provisioner) EnqueueWith(ctx context.Context, env store.Environment, kind Kind, params any, by string) (store.Job, error) {
	k, ok := p.kinds[kind]
	if !ok {
		return store.Job{}, invalid("unknown action " + string(kind) + ".")
	}
	// While a job of the same lane is active, "wait for it" is the useful
	// answer whatever the action; the unique index in QueueJob still
	// settles races. A job of another lane does not refuse this one: it
	// waits in the queue until that one ends.
	if _, err := p.store.ActiveJobIn(ctx, env.Name, k.Lane); err == nil {
		return store.Job{}, fmt.Errorf("%s: %w", env.Name, ErrBusy)
	} else if !errors.Is(err, store.ErrNotFound) {
		return store.Job{}, err
	}
	if k.Check != nil {
		if err := k.Check(env); err != nil {
			return store.Job{}, err
		}
	}
	if params == nil && k.Snapshot != nil {
		var err error
		if params, err = k.Snapshot(ctx, p, env); err != nil {
			return store.Job{}, err
		}
	}
	j, err := p.queue(ctx, env, k, params, by)
	if err != nil {
		return store.Job{}, err
	}
	p.log.Info("job queued", "job_id", j.ID, "env", env.Name, "kind", kind, "lane", k.Lane, "by", by)
	select {
	case p.wake <- struct{}{}:
	default:
	}
	return j, nil
}

// queue stores a job of kind k with params (checked against the kind's type).
func (p *Provisioner) queue(ctx context.Context, env store.Environment, k JobKind, params any, by string) (store.Job, error) {
	raw, err := k.encodeParams(params)
	if err != nil {
		return store.Job{}, err
	}
	return p.store.QueueJob(ctx, store.NewJob{EnvID: env.ID, EnvName: env.Name, Kind: string(k.Kind), Lane: k.Lane, Params: raw, RequestedBy: by})
}

// Run reconciles, then runs workers until ctx ends or Stop is called, and
// every RequeueInterval resumes jobs whose instance went away. Then it stops
// as Stop does: no new job is claimed, jobs in flight get ShutdownGrace to
// end, then are cancelled and go back to the queue. Each running job keeps
// one of the store's connections, so at most MaxConns-8 workers run.
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
	rctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() { p.worker(rctx) })
	}
	wg.Go(func() { p.requeueLoop(rctx) })
	wg.Go(func() { p.scheduleLoop(rctx) })
	select {
	case <-ctx.Done():
	case <-p.stopping:
	}
	p.Stop()
	cancel()
	wg.Wait()
	return nil
}

// Stop stops claiming jobs, waits at most ShutdownGrace for the running
// ones to end, then cancels them (they go back to the queue, written with a
// log line saying so, and resume at the next start) and waits for that.
// It may be called any number of times, before, during or after Run.
func (p *Provisioner) Stop() {
	p.mu.Lock()
	p.stop()
	p.mu.Unlock()
	done := make(chan struct{})
	go func() { p.inflight.Wait(); close(done) }()
	select {
	case <-done:
		return
	default:
	}
	p.log.Info("stopping: waiting for running jobs", "grace", p.cfg.ShutdownGrace)
	t := time.NewTimer(p.cfg.ShutdownGrace)
	defer t.Stop()
	select {
	case <-done:
		return
	case <-t.C:
	}
	p.log.Warn("shutdown grace is over: cancelling running jobs; they resume at the next start")
	p.cancelJobs(errShutdown)
	<-done
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
		case <-p.stopping:
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
	// The list of our own jobs must not go stale before the statement
	// runs: a job a worker claims meanwhile is marked running here only
	// after the statement, and its lock (taken in the claim) still guards
	// it then. Seen under load: a snapshot taken, the job claimed and its
	// lock session lost, then the statement requeued our own running job.
	p.mu.Lock()
	mine := make([]int64, 0, len(p.running))
	for id := range p.running {
		mine = append(mine, id)
	}
	requeued, err := p.store.RequeueRunningJobs(ctx, mine...)
	p.mu.Unlock()
	if err != nil {
		return 0, err
	}
	for _, j := range requeued {
		p.log.Warn(msg, "job_id", j.ID, "env", j.EnvName, "kind", j.Kind, "step", j.Step)
		_ = p.store.AppendJobLog(ctx, j.ID, fmt.Sprintf(jobLine, j.Step))
	}
	return len(requeued), nil
}

// RunOne claims and runs one queued job; false when none was waiting or
// the provisioner is stopping. The job's lock (its ownership) is released
// once the job is finished. The job runs to its end even if ctx ends, bounded
// by its kind's Timeout and by Stop.
func (p *Provisioner) RunOne(ctx context.Context) bool {
	p.mu.Lock()
	select {
	case <-p.stopping:
		p.mu.Unlock()
		return false
	default:
	}
	p.inflight.Add(1)
	p.mu.Unlock()
	defer p.inflight.Done()

	// A claim under way when Stop comes is abandoned; one that completed
	// meanwhile is undone below, so that a stopping pgdeck never starts a
	// job (it would only be cut short and counted as an attempt).
	cctx, cancelClaim := context.WithCancel(ctx)
	defer cancelClaim()
	stopClaim := context.AfterFunc(p.stoppingCtx, cancelClaim)
	j, lock, err := p.store.ClaimJob(cctx)
	stopClaim()
	if errors.Is(err, store.ErrNotFound) {
		return false
	}
	if err != nil {
		if cctx.Err() == nil {
			p.log.Error("claim job", "error", err)
		}
		return false
	}
	p.mu.Lock()
	stopped := p.stoppingCtx.Err() != nil
	if !stopped {
		p.running[j.ID] = true
	}
	p.mu.Unlock()
	if stopped {
		if err := p.store.UnclaimJob(context.WithoutCancel(ctx), j.ID); err != nil {
			p.log.Error("hand back a job claimed while stopping; it resumes with the next start", "job_id", j.ID, "error", err)
		}
		lock.Release()
		return false
	}
	defer func() {
		lock.Release()
		p.mu.Lock()
		delete(p.running, j.ID)
		p.mu.Unlock()
	}()
	k, ok := p.kinds[Kind(j.Kind)]
	if !ok {
		k = JobKind{Kind: Kind(j.Kind), Timeout: time.Minute} // execute fails it as unknown
	}
	// The job does not end with ctx: Stop decides, after its grace, by
	// cancelling jobsCtx; the kind's Timeout bounds it anyway.
	sctx, cancelStop := context.WithCancelCause(context.WithoutCancel(ctx))
	defer cancelStop(nil)
	unhook := context.AfterFunc(p.jobsCtx, func() { cancelStop(context.Cause(p.jobsCtx)) })
	defer unhook()
	jctx, cancel := context.WithTimeout(sctx, k.Timeout)
	defer cancel()
	p.execute(jctx, j, k)
	return true
}

func primary(env string) runtime.InstanceID {
	return runtime.InstanceID{Env: env, Role: runtime.RolePrimary}
}
