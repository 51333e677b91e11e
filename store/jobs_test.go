package store_test

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"pgdeck/store"
	"pgdeck/store/storetest"
)

func TestCreateJobOneActivePerEnvironment(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	env := mustCreateEnvironment(t, st, "shop")
	other := mustCreateEnvironment(t, st, "blog")

	j, err := st.CreateJob(ctx, env.ID, env.Name, "deploy", "ada@example.com")
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.JobQueued || j.Kind != "deploy" || j.EnvName != "shop" || j.RequestedBy != "ada@example.com" || !j.Active() {
		t.Errorf("CreateJob returned %+v", j)
	}
	if j.EnvironmentID == nil || *j.EnvironmentID != env.ID {
		t.Errorf("job environment id = %v, want %d", j.EnvironmentID, env.ID)
	}

	_, err = st.CreateJob(ctx, env.ID, env.Name, "restart", "ada@example.com")
	if !errors.Is(err, store.ErrBusy) {
		t.Fatalf("second CreateJob for the same environment: err = %v, want ErrBusy", err)
	}
	// Another environment is not held up.
	if _, err := st.CreateJob(ctx, other.ID, other.Name, "deploy", "ada@example.com"); err != nil {
		t.Errorf("CreateJob for another environment: %v", err)
	}

	// Still busy while the job runs; free once it has finished.
	claimed, err := st.ClaimJob(ctx)
	if err != nil || claimed.ID != j.ID {
		t.Fatalf("ClaimJob = %+v, %v; want job %d", claimed, err, j.ID)
	}
	if _, err := st.CreateJob(ctx, env.ID, env.Name, "restart", "ada@example.com"); !errors.Is(err, store.ErrBusy) {
		t.Errorf("CreateJob while the job runs: err = %v, want ErrBusy", err)
	}
	if err := st.FinishJob(ctx, j.ID, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := st.CreateJob(ctx, env.ID, env.Name, "restart", "ada@example.com"); err != nil {
		t.Errorf("CreateJob after the job finished: %v", err)
	}
}

func TestClaimJobSkipsLockedJobs(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	first, err := st.CreateJob(ctx, mustCreateEnvironment(t, st, "env-1").ID, "env-1", "deploy", "t")
	if err != nil {
		t.Fatal(err)
	}
	second, err := st.CreateJob(ctx, mustCreateEnvironment(t, st, "env-2").ID, "env-2", "deploy", "t")
	if err != nil {
		t.Fatal(err)
	}

	// Another worker holds the oldest job's row.
	tx, err := st.Pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck
	if _, err := tx.Exec(ctx, "SELECT id FROM jobs WHERE id = $1 FOR UPDATE", first.ID); err != nil {
		t.Fatal(err)
	}

	got, err := st.ClaimJob(ctx)
	if err != nil {
		t.Fatalf("ClaimJob with the oldest job locked: %v", err)
	}
	if got.ID != second.ID {
		t.Fatalf("ClaimJob claimed job %d, want the unlocked job %d", got.ID, second.ID)
	}
	if got.State != store.JobRunning || got.Attempts != 1 || got.StartedAt == nil {
		t.Errorf("claimed job = %+v, want running, 1 attempt, started", got)
	}
	// Nothing else is claimable while the lock is held.
	if _, err := st.ClaimJob(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimJob with the only queued job locked: err = %v, want ErrNotFound", err)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got, err = st.ClaimJob(ctx)
	if err != nil || got.ID != first.ID {
		t.Errorf("ClaimJob after the lock is released = %+v, %v; want job %d", got, err, first.ID)
	}
	if _, err := st.ClaimJob(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimJob with nothing queued: err = %v, want ErrNotFound", err)
	}
}

func TestClaimJobConcurrentWorkersClaimEachJobOnce(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	const n = 6
	for i := range n {
		name := fmt.Sprintf("env-%d", i)
		if _, err := st.CreateJob(ctx, mustCreateEnvironment(t, st, name).ID, name, "deploy", "t"); err != nil {
			t.Fatal(err)
		}
	}
	type result struct {
		id  int64
		err error
	}
	results := make(chan result, n+2)
	for range n + 2 {
		go func() {
			j, err := st.ClaimJob(ctx)
			results <- result{j.ID, err}
		}()
	}
	seen := map[int64]bool{}
	notFound := 0
	for range n + 2 {
		r := <-results
		switch {
		case errors.Is(r.err, store.ErrNotFound):
			notFound++
		case r.err != nil:
			t.Errorf("ClaimJob: %v", r.err)
		case seen[r.id]:
			t.Errorf("job %d claimed twice", r.id)
		default:
			seen[r.id] = true
		}
	}
	if len(seen) != n || notFound != 2 {
		t.Errorf("claimed %d distinct jobs and %d found none; want %d and 2", len(seen), notFound, n)
	}
}

func TestFinishJobAndCounts(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)

	counts, err := st.CountJobsByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{store.JobQueued, store.JobRunning, store.JobSucceeded, store.JobFailed} {
		if c, ok := counts[s]; !ok || c != 0 {
			t.Errorf("fresh store: count[%s] = %d, %v; want 0 present", s, c, ok)
		}
	}

	var jobs []store.Job
	for _, name := range []string{"ok-env", "bad-env", "run-env", "wait-env"} {
		j, err := st.CreateJob(ctx, mustCreateEnvironment(t, st, name).ID, name, "deploy", "t")
		if err != nil {
			t.Fatal(err)
		}
		jobs = append(jobs, j)
	}
	for range 3 {
		if _, err := st.ClaimJob(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if err := st.SetJobStep(ctx, jobs[0].ID, "start server", 40); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendJobLog(ctx, jobs[0].ID, "initdb done"); err != nil {
		t.Fatal(err)
	}
	if err := st.AppendJobLog(ctx, jobs[0].ID, "server started"); err != nil {
		t.Fatal(err)
	}
	if err := st.SetJobStep(ctx, jobs[1].ID, "initdb", 30); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishJob(ctx, jobs[0].ID, ""); err != nil {
		t.Fatal(err)
	}
	if err := st.FinishJob(ctx, jobs[1].ID, "initdb failed: disk full"); err != nil {
		t.Fatal(err)
	}

	ok, err := st.JobByID(ctx, jobs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if ok.State != store.JobSucceeded || ok.Progress != 100 || ok.Error != "" || ok.FinishedAt == nil || ok.Active() {
		t.Errorf("succeeded job = %+v", ok)
	}
	bad, err := st.JobByID(ctx, jobs[1].ID)
	if err != nil {
		t.Fatal(err)
	}
	if bad.State != store.JobFailed || bad.Error != "initdb failed: disk full" || bad.Progress != 30 || bad.FinishedAt == nil || bad.Step != "initdb" {
		t.Errorf("failed job = %+v; want failed with its error, progress and step kept", bad)
	}
	lines, err := st.JobLog(ctx, jobs[0].ID)
	if err != nil || len(lines) != 2 || lines[0].Line != "initdb done" || lines[1].Line != "server started" {
		t.Errorf("JobLog = %+v, %v", lines, err)
	}
	if _, err := st.JobByID(ctx, 999999); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("JobByID(unknown) err = %v, want ErrNotFound", err)
	}

	counts, err = st.CountJobsByState(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int{store.JobQueued: 1, store.JobRunning: 1, store.JobSucceeded: 1, store.JobFailed: 1}
	for s, c := range want {
		if counts[s] != c {
			t.Errorf("count[%s] = %d, want %d (all: %v)", s, counts[s], c, counts)
		}
	}

	if a, err := st.ActiveJob(ctx, "run-env"); err != nil || a.ID != jobs[2].ID {
		t.Errorf("ActiveJob(run-env) = %+v, %v", a, err)
	}
	if _, err := st.ActiveJob(ctx, "ok-env"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ActiveJob of a finished environment: err = %v, want ErrNotFound", err)
	}
	if l, err := st.LastJob(ctx, "bad-env"); err != nil || l.ID != jobs[1].ID {
		t.Errorf("LastJob(bad-env) = %+v, %v", l, err)
	}

	// A crash leaves the running job behind; it goes back to the queue.
	requeued, err := st.RequeueRunningJobs(ctx)
	if err != nil || len(requeued) != 1 || requeued[0].ID != jobs[2].ID || requeued[0].State != store.JobQueued {
		t.Errorf("RequeueRunningJobs = %+v, %v", requeued, err)
	}
	counts, _ = st.CountJobsByState(ctx)
	if counts[store.JobQueued] != 2 || counts[store.JobRunning] != 0 {
		t.Errorf("after requeue: %v", counts)
	}
}
