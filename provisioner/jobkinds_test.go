package provisioner_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"
	"time"

	"pgdeck/provisioner"
	"pgdeck/store"
)

// withKinds builds a provisioner on the harness's store, runtime and ports
// that also knows kinds (registered through the option, as backups will be).
func (h *harness) withKinds(cfg provisioner.Config, kinds ...provisioner.JobKind) *provisioner.Provisioner {
	h.t.Helper()
	cfg.PortLow, cfg.PortHigh = h.lo, h.hi
	cfg.BackupDir, cfg.PgRestore = h.backups, h.pgRestore
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 20 * time.Millisecond
	}
	var opts []provisioner.Option
	for _, k := range kinds {
		opts = append(opts, provisioner.WithKind(k))
	}
	log := slog.New(slog.NewTextHandler(h.t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	return provisioner.New(cfg, h.st, h.rt, h.box, log, opts...)
}

// gate is a test kind's body: it says when the job started and holds it
// until released or until its context ends.
type gate struct {
	started chan store.Job
	release chan struct{}
}

func newGate() *gate {
	return &gate{started: make(chan store.Job, 4), release: make(chan struct{})}
}

func (g *gate) run(ctx context.Context, r *provisioner.JobRun, _ store.Environment) error {
	r.Step(ctx, "Waiting for the test", 50)
	g.started <- r.Job()
	select {
	case <-g.release:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// TestLanes: a backup (a test kind in the backup lane) runs; an operator's
// Restart meanwhile is queued, not refused, and runs once the backup ended;
// a second job in a busy lane is refused as busy.
func TestLanes(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.deploy("lanes")
	g := newGate()
	const kindBackup provisioner.Kind = "test-backup"
	var gotParams provisioner.BackupParams
	p := h.withKinds(provisioner.Config{}, provisioner.JobKind{
		Kind: kindBackup, Lane: store.LaneBackup, Timeout: time.Hour,
		Params: reflect.TypeFor[provisioner.BackupParams](),
		Run: func(ctx context.Context, r *provisioner.JobRun, env store.Environment) error {
			var err error
			if gotParams, err = provisioner.ParamsOf[provisioner.BackupParams](r); err != nil {
				return err
			}
			return g.run(ctx, r, env)
		},
	})

	backup, err := p.EnqueueWith(ctx, h.env("lanes"), kindBackup, provisioner.BackupParams{Kind: "scheduled"}, "schedule")
	if err != nil {
		t.Fatal(err)
	}
	if backup.Lane != store.LaneBackup {
		t.Errorf("backup job lane %q", backup.Lane)
	}
	ran := make(chan bool)
	go func() { ran <- p.RunOne(context.Background()) }()
	<-g.started

	restart, err := p.Enqueue(ctx, h.env("lanes"), provisioner.KindRestart, "ops")
	if err != nil {
		t.Fatalf("Restart while a backup runs: %v, want it queued", err)
	}
	if restart.State != store.JobQueued || restart.Lane != store.LaneOps {
		t.Errorf("restart job = %+v", restart)
	}
	if _, err := p.Enqueue(ctx, h.env("lanes"), provisioner.KindStop, "ops"); !errors.Is(err, provisioner.ErrBusy) {
		t.Errorf("Stop while a restart is queued: %v, want ErrBusy", err)
	}
	if _, err := p.EnqueueWith(ctx, h.env("lanes"), kindBackup, provisioner.BackupParams{Kind: "manual"}, "ops"); !errors.Is(err, provisioner.ErrBusy) {
		t.Errorf("a second backup while one runs: %v, want ErrBusy", err)
	}
	// The restart waits while the backup touches the primary.
	if p.RunOne(ctx) {
		t.Fatal("a job ran beside the running backup")
	}
	if got := h.job(restart.ID).State; got != store.JobQueued {
		t.Fatalf("restart is %q while the backup runs, want queued", got)
	}
	close(g.release)
	if !<-ran {
		t.Fatal("RunOne did not run the backup")
	}
	done := h.job(backup.ID)
	h.wantSucceeded(done)
	if gotParams.Kind != "scheduled" {
		t.Errorf("the backup's params = %+v, want kind scheduled", gotParams)
	}
	h.runOne()
	after := h.job(restart.ID)
	h.wantSucceeded(after)
	if after.StartedAt.Before(*done.FinishedAt) {
		t.Errorf("restart started at %v, before the backup finished at %v", after.StartedAt, done.FinishedAt)
	}
}

// TestJobParams: a redeploy carries the snapshot of the settings it
// applies, and parameters of the wrong type are refused.
func TestJobParams(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.deploy("params")
	j := h.enqueue("params", provisioner.KindRedeploy)
	var got provisioner.DeployParams
	if err := json.Unmarshal(j.Params, &got); err != nil {
		t.Fatalf("redeploy params %s: %v", j.Params, err)
	}
	if got.Settings == nil || got.Settings.PostgreSQLConf["shared_buffers"] == "" {
		t.Errorf("redeploy params %s hold no snapshot of the settings", j.Params)
	}
	h.runOne()
	h.wantSucceeded(h.job(j.ID))

	if _, err := h.p.EnqueueWith(ctx, h.env("params"), provisioner.KindRestart, provisioner.BackupParams{Kind: "manual"}, "t"); err == nil {
		t.Error("a restart with a backup's parameters was queued")
	}
	if _, err := h.p.EnqueueWith(ctx, h.env("params"), provisioner.KindRedeploy, provisioner.RestoreParams{}, "t"); err == nil {
		t.Error("a redeploy with a restore's parameters was queued")
	}
	if h.p.RunOne(ctx) {
		t.Error("a refused job was queued")
	}
}

// TestJobTimeout: a kind's timeout ends its job, and the job's last log
// line and its failure are written although its context has expired.
func TestJobTimeout(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	h.createEnv("slow")
	g := newGate()
	const kindSlow provisioner.Kind = "test-slow"
	p := h.withKinds(provisioner.Config{}, provisioner.JobKind{Kind: kindSlow, Lane: store.LaneOps, Timeout: 50 * time.Millisecond, Run: g.run})
	j, err := p.Enqueue(ctx, h.env("slow"), kindSlow, "t")
	if err != nil {
		t.Fatal(err)
	}
	if !p.RunOne(ctx) {
		t.Fatal("RunOne found no job")
	}
	got := h.job(j.ID)
	// Where the limit strikes (loading the environment, or the step) is
	// up to the machine; the failure says which limit it was.
	if got.State != store.JobFailed || !strings.Contains(got.Error, "took longer than its limit of 50ms") {
		t.Errorf("job = state %q, error %q; want failed for its time limit", got.State, got.Error)
	}
	log := h.jobLog(j.ID)
	if len(log) == 0 || !strings.HasPrefix(log[len(log)-1], "failed: the job took longer") {
		t.Errorf("the job's log does not end with its failure: %q", log)
	}
}

// TestStop: Stop (or the end of Run's context) stops claiming, lets a job
// that ends within the grace finish, cancels one that does not and puts it
// back in the queue with a line saying so; the next start resumes it.
// Stop may be called again, before and after Run.
func TestStop(t *testing.T) {
	h := newHarness(t)
	const kindWait provisioner.Kind = "test-wait"
	h.createEnv("grace")
	h.createEnv("cut")

	t.Run("a job that ends within the grace finishes", func(t *testing.T) {
		g := newGate()
		p := h.withKinds(provisioner.Config{ShutdownGrace: time.Hour}, provisioner.JobKind{Kind: kindWait, Lane: store.LaneOps, Timeout: time.Hour, Run: g.run})
		j, err := p.Enqueue(t.Context(), h.env("grace"), kindWait, "t")
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		ended := make(chan error)
		go func() { ended <- p.Run(ctx) }()
		<-g.started
		cancel()
		close(g.release)
		if err := <-ended; err != nil {
			t.Fatalf("Run: %v", err)
		}
		h.wantSucceeded(h.job(j.ID))
		p.Stop()
		p.Stop()
	})

	t.Run("a job cut short resumes at the next start", func(t *testing.T) {
		g := newGate()
		kind := provisioner.JobKind{Kind: kindWait, Lane: store.LaneOps, Timeout: time.Hour, Run: g.run}
		p := h.withKinds(provisioner.Config{ShutdownGrace: 50 * time.Millisecond}, kind)
		j, err := p.Enqueue(t.Context(), h.env("cut"), kindWait, "t")
		if err != nil {
			t.Fatal(err)
		}
		ended := make(chan error)
		go func() { ended <- p.Run(context.Background()) }()
		<-g.started
		p.Stop() // returns once the job is back in the queue
		p.Stop()
		if err := <-ended; err != nil {
			t.Fatalf("Run: %v", err)
		}
		p.Stop()
		cut := h.job(j.ID)
		if cut.State != store.JobQueued || cut.Error != "" {
			t.Fatalf("job cut short by Stop: state %q, error %q; want queued again", cut.State, cut.Error)
		}
		log := h.jobLog(j.ID)
		if want := `pgdeck stopped during step "Waiting for the test" before the job ended; it resumes at the next start`; len(log) == 0 || log[len(log)-1] != want {
			t.Errorf("job log %q does not end with %q", log, want)
		}
		if p.RunOne(t.Context()) {
			t.Error("a stopped provisioner claimed a job")
		}

		// The next start resumes it.
		close(g.release)
		next := h.withKinds(provisioner.Config{}, kind)
		if !next.RunOne(t.Context()) {
			t.Fatal("the next start found no job to resume")
		}
		resumed := h.job(j.ID)
		h.wantSucceeded(resumed)
		if resumed.Attempts != 2 {
			t.Errorf("attempts = %d, want 2", resumed.Attempts)
		}
	})

	t.Run("Stop before Run", func(t *testing.T) {
		p := h.withKinds(provisioner.Config{})
		p.Stop()
		p.Stop()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := p.Run(ctx); err != nil {
			t.Fatalf("Run after Stop: %v", err)
		}
		if ctx.Err() != nil {
			t.Error("Run after Stop ran until its context ended")
		}
	})
}
