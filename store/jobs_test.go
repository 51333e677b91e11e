package store_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

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
	claimed, lock, err := st.ClaimJob(ctx)
	if err != nil || claimed.ID != j.ID {
		t.Fatalf("ClaimJob = %+v, %v; want job %d", claimed, err, j.ID)
	}
	defer lock.Release()
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

	got, lock, err := st.ClaimJob(ctx)
	if err != nil {
		t.Fatalf("ClaimJob with the oldest job locked: %v", err)
	}
	defer lock.Release()
	if got.ID != second.ID {
		t.Fatalf("ClaimJob claimed job %d, want the unlocked job %d", got.ID, second.ID)
	}
	if got.State != store.JobRunning || got.Attempts != 1 || got.StartedAt == nil {
		t.Errorf("claimed job = %+v, want running, 1 attempt, started", got)
	}
	// Nothing else is claimable while the lock is held.
	if _, _, err := st.ClaimJob(ctx); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ClaimJob with the only queued job locked: err = %v, want ErrNotFound", err)
	}

	if err := tx.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	got, lock2, err := st.ClaimJob(ctx)
	if err != nil || got.ID != first.ID {
		t.Errorf("ClaimJob after the lock is released = %+v, %v; want job %d", got, err, first.ID)
	}
	defer lock2.Release()
	if _, _, err := st.ClaimJob(ctx); !errors.Is(err, store.ErrNotFound) {
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
			j, lock, err := st.ClaimJob(ctx)
			results <- result{j.ID, err}
			lock.Release()
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
	var locks []*store.SessionLock
	for range 3 {
		_, lock, err := st.ClaimJob(ctx)
		if err != nil {
			t.Fatal(err)
		}
		locks = append(locks, lock)
	}
	defer func() {
		for _, l := range locks {
			l.Release()
		}
	}()
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

	// The running job's lock is held (by this process, on another
	// connection): it is not requeued.
	requeued, err := st.RequeueRunningJobs(ctx)
	if err != nil || len(requeued) != 0 {
		t.Errorf("RequeueRunningJobs while the job's owner lives = %+v, %v; want none", requeued, err)
	}
	if got, err := st.JobByID(ctx, jobs[2].ID); err != nil || got.State != store.JobRunning {
		t.Errorf("job after RequeueRunningJobs while its owner lives = %+v, %v; want running", got, err)
	}

	// Its owner lets go without finishing it (as a crash would): it goes
	// back to the queue.
	locks[2].Release()
	requeued, err = st.RequeueRunningJobs(ctx)
	if err != nil || len(requeued) != 1 || requeued[0].ID != jobs[2].ID || requeued[0].State != store.JobQueued {
		t.Errorf("RequeueRunningJobs = %+v, %v", requeued, err)
	}
	counts, _ = st.CountJobsByState(ctx)
	if counts[store.JobQueued] != 2 || counts[store.JobRunning] != 0 {
		t.Errorf("after requeue: %v", counts)
	}
}

// advisoryLocks lists the backends holding advisory locks in st's database.
func advisoryLocks(t *testing.T, st *store.Store) []int32 {
	t.Helper()
	rows, _ := st.Pool.Query(context.Background(), `SELECT pid FROM pg_locks
		WHERE locktype = 'advisory' AND granted AND database = (SELECT oid FROM pg_database WHERE datname = current_database())
		ORDER BY pid`)
	pids, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	return pids
}

// TestRequeueRunningJobsLeavesLiveInstancesJobs runs two pgdeck instances on
// one store: the job instance A runs is not requeued by instance B until A's
// session dies, and then B resumes it. Job ids past 2^31 and 2^32 check that
// claim and requeue agree on the lock key.
func TestRequeueRunningJobsLeavesLiveInstancesJobs(t *testing.T) {
	t.Parallel()
	for _, firstID := range []int64{1, 1<<31 + 5, 1<<32 + 7} {
		t.Run(fmt.Sprint(firstID), func(t *testing.T) {
			t.Parallel()
			ctx := context.Background()
			url := storetest.URL(t)
			b, err := store.Open(ctx, url)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(b.Close)
			// Instance A: a one-connection pool, held by the claim.
			cfg, err := pgxpool.ParseConfig(url)
			if err != nil {
				t.Fatal(err)
			}
			cfg.MaxConns = 1
			pool, err := pgxpool.NewWithConfig(ctx, cfg)
			if err != nil {
				t.Fatal(err)
			}
			a := &store.Store{Pool: pool}

			if _, err := b.Pool.Exec(ctx, "SELECT setval('jobs_id_seq', $1, false)", firstID); err != nil {
				t.Fatal(err)
			}
			queued, err := b.CreateJob(ctx, mustCreateEnvironment(t, b, "shop").ID, "shop", "deploy", "t")
			if err != nil {
				t.Fatal(err)
			}
			if queued.ID != firstID {
				t.Fatalf("job id = %d, want %d", queued.ID, firstID)
			}
			j, lockA, err := a.ClaimJob(ctx)
			if err != nil || j.ID != queued.ID {
				t.Fatalf("A: ClaimJob = %+v, %v", j, err)
			}
			if err := b.SetJobStep(ctx, j.ID, "initdb", 20); err != nil {
				t.Fatal(err)
			}
			holders := advisoryLocks(t, b)
			if len(holders) != 1 {
				t.Fatalf("advisory locks held after the claim: %v, want one (A's)", holders)
			}

			// A lives: B leaves its job alone, and takes no lock of its own.
			for range 3 {
				requeued, err := b.RequeueRunningJobs(ctx)
				if err != nil || len(requeued) != 0 {
					t.Fatalf("B: RequeueRunningJobs while A runs the job = %+v, %v; want none", requeued, err)
				}
			}
			if got, err := b.JobByID(ctx, j.ID); err != nil || got.State != store.JobRunning {
				t.Fatalf("job after B's requeue = %+v, %v; want running", got, err)
			}
			if _, _, err := b.ClaimJob(ctx); !errors.Is(err, store.ErrNotFound) {
				t.Errorf("B: ClaimJob while A runs the only job: err = %v, want ErrNotFound", err)
			}
			if got := advisoryLocks(t, b); len(got) != 1 || got[0] != holders[0] {
				t.Errorf("advisory locks after B's requeue: %v, want only A's %v", got, holders)
			}

			// A dies: its connection goes (the server ends A's session, as
			// when the process is killed), then its pool.
			var terminated bool
			if err := b.Pool.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", holders[0]).Scan(&terminated); err != nil || !terminated {
				t.Fatalf("terminate A's session: %v, %v", terminated, err)
			}
			lockA.Release()
			a.Close()

			var requeued []store.Job
			for deadline := time.Now().Add(10 * time.Second); len(requeued) == 0 && time.Now().Before(deadline); {
				requeued, err = b.RequeueRunningJobs(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(requeued) == 0 {
					time.Sleep(20 * time.Millisecond)
				}
			}
			if len(requeued) != 1 || requeued[0].ID != j.ID || requeued[0].State != store.JobQueued || requeued[0].Step != "initdb" {
				t.Fatalf("B: RequeueRunningJobs after A died = %+v; want job %d queued at its step", requeued, j.ID)
			}
			if got := advisoryLocks(t, b); len(got) != 0 {
				t.Errorf("advisory locks left after the requeue: %v", got)
			}
			again, lockB, err := b.ClaimJob(ctx)
			if err != nil || again.ID != j.ID || again.Attempts != 2 {
				t.Fatalf("B: ClaimJob after the requeue = %+v, %v; want job %d, attempt 2", again, err, j.ID)
			}
			if err := b.FinishJob(ctx, j.ID, ""); err != nil {
				t.Fatal(err)
			}
			lockB.Release()
			lockB.Release() // twice is harmless
			if got := advisoryLocks(t, b); len(got) != 0 {
				t.Errorf("advisory locks left after Release: %v", got)
			}
			if requeued, err := b.RequeueRunningJobs(ctx); err != nil || len(requeued) != 0 {
				t.Errorf("RequeueRunningJobs after the job finished = %+v, %v", requeued, err)
			}
		})
	}
}

// TestTryLock checks that one session at a time holds a task lock and that
// Release hands it on.
func TestTryLock(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	first, err := st.TryLock(ctx, store.LockMonitor)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Release()
	if err := first.Alive(ctx); err != nil {
		t.Errorf("Alive: %v", err)
	}
	// Another connection of the same pool is another session: refused.
	if l, err := st.TryLock(ctx, store.LockMonitor); !errors.Is(err, store.ErrLockHeld) {
		l.Release()
		t.Fatalf("second TryLock: err = %v, want ErrLockHeld", err)
	}
	first.Release()
	first.Release()
	if err := first.Alive(ctx); err == nil {
		t.Error("Alive after Release: nil error")
	}
	second, err := st.TryLock(ctx, store.LockMonitor)
	if err != nil {
		t.Fatalf("TryLock after Release: %v", err)
	}
	second.Release()
	if got := advisoryLocks(t, st); len(got) != 0 {
		t.Errorf("advisory locks left: %v", got)
	}
}

func TestOpenPoolSize(t *testing.T) {
	t.Parallel()
	st := storetest.New(t)
	if got := st.Pool.Config().MaxConns; got < store.MinPoolConns {
		t.Errorf("MaxConns = %d, want at least %d", got, store.MinPoolConns)
	}
}

// TestRequeueRunningJobsExcept loses the session holding a job's lock while
// its worker still runs it: the process running it passes the id and keeps
// the job; any other caller requeues it.
func TestRequeueRunningJobsExcept(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	queued, err := st.CreateJob(ctx, mustCreateEnvironment(t, st, "shop").ID, "shop", "deploy", "t")
	if err != nil {
		t.Fatal(err)
	}
	j, lock, err := st.ClaimJob(ctx)
	if err != nil || j.ID != queued.ID {
		t.Fatalf("ClaimJob = %+v, %v", j, err)
	}
	holders := advisoryLocks(t, st)
	if len(holders) != 1 {
		t.Fatalf("advisory locks: %v, want one", holders)
	}
	var terminated bool
	if err := st.Pool.QueryRow(ctx, "SELECT pg_terminate_backend($1, 10000)", holders[0]).Scan(&terminated); err != nil || !terminated {
		t.Fatalf("terminate the lock's session: %v, %v", terminated, err)
	}
	lock.Release() // the unlock fails on the dead session; the pool drops it
	for range 3 {
		if requeued, err := st.RequeueRunningJobs(ctx, 999_999, j.ID); err != nil || len(requeued) != 0 {
			t.Fatalf("RequeueRunningJobs(except the job) = %+v, %v; want none", requeued, err)
		}
	}
	requeued, err := st.RequeueRunningJobs(ctx)
	if err != nil || len(requeued) != 1 || requeued[0].ID != j.ID {
		t.Errorf("RequeueRunningJobs() = %+v, %v; want job %d", requeued, err, j.ID)
	}
}

// TestJobLanes checks the lane rule: one active job per environment and
// lane (a backup never makes an operator's action busy, nor the other way
// round), and a queued job waits while another job of its environment runs.
func TestJobLanes(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	env := mustCreateEnvironment(t, st, "shop")
	queue := func(kind, lane, params string) (store.Job, error) {
		return st.QueueJob(ctx, store.NewJob{EnvID: env.ID, EnvName: env.Name, Kind: kind, Lane: lane,
			Params: json.RawMessage(params), RequestedBy: "t"})
	}
	claim := func() (store.Job, *store.SessionLock) {
		t.Helper()
		j, lock, err := st.ClaimJob(ctx)
		if err != nil {
			t.Fatalf("ClaimJob: %v", err)
		}
		return j, lock
	}
	wantNothingToClaim := func(why string) {
		t.Helper()
		if j, lock, err := st.ClaimJob(ctx); !errors.Is(err, store.ErrNotFound) {
			lock.Release()
			t.Fatalf("ClaimJob %s = %+v, %v; want ErrNotFound", why, j, err)
		}
	}

	backup, err := queue("backup", store.LaneBackup, `{"kind": "scheduled"}`)
	if err != nil {
		t.Fatal(err)
	}
	if backup.Lane != store.LaneBackup || string(backup.Params) != `{"kind": "scheduled"}` {
		t.Errorf("queued backup: lane %q, params %s", backup.Lane, backup.Params)
	}
	restart, err := queue("restart", "", "")
	if err != nil {
		t.Fatalf("an operator's restart while a backup is queued: %v, want it queued", err)
	}
	if restart.Lane != store.LaneOps || string(restart.Params) != `{}` {
		t.Errorf("queued restart: lane %q, params %s; want ops and {}", restart.Lane, restart.Params)
	}
	if _, err := queue("stop", store.LaneOps, ""); !errors.Is(err, store.ErrBusy) {
		t.Errorf("a second ops job: %v, want ErrBusy", err)
	}
	if _, err := queue("backup", store.LaneBackup, ""); !errors.Is(err, store.ErrBusy) {
		t.Errorf("a second backup: %v, want ErrBusy", err)
	}
	if _, err := queue("backup", "replica", ""); err == nil {
		t.Error("a job in an unknown lane was queued")
	}
	if _, err := queue("redeploy", store.LaneOps, `[1]`); err == nil {
		t.Error("a job whose params are not a JSON object was queued")
	}

	// The backup came first: it runs, and the restart waits in the queue.
	got, lock := claim()
	if got.ID != backup.ID || got.State != store.JobRunning {
		t.Fatalf("claimed %+v, want the backup %d", got, backup.ID)
	}
	wantNothingToClaim("while the backup runs")
	if a, err := st.ActiveJob(ctx, env.Name); err != nil || a.ID != backup.ID {
		t.Errorf("ActiveJob = %+v, %v; want the running backup", a, err)
	}
	if a, err := st.ActiveJobIn(ctx, env.Name, store.LaneOps); err != nil || a.ID != restart.ID {
		t.Errorf("ActiveJobIn(ops) = %+v, %v; want the queued restart", a, err)
	}
	if err := st.FinishJob(ctx, backup.ID, ""); err != nil {
		t.Fatal(err)
	}
	lock.Release()

	got, lock = claim()
	if got.ID != restart.ID {
		t.Fatalf("claimed %d after the backup, want the restart %d", got.ID, restart.ID)
	}
	// And the other way round: a backup queued while the restart runs waits.
	backup2, err := queue("backup", store.LaneBackup, `{"kind": "manual"}`)
	if err != nil {
		t.Fatalf("a backup while an operator's action runs: %v, want it queued", err)
	}
	wantNothingToClaim("while the restart runs")
	// Another environment is not held up.
	other := mustCreateEnvironment(t, st, "blog")
	oj, err := st.CreateJob(ctx, other.ID, other.Name, "deploy", "t")
	if err != nil {
		t.Fatal(err)
	}
	got2, lock2 := claim()
	if got2.ID != oj.ID {
		t.Errorf("claimed %d, want the other environment's deploy %d", got2.ID, oj.ID)
	}
	lock2.Release()
	if err := st.FinishJob(ctx, restart.ID, ""); err != nil {
		t.Fatal(err)
	}
	lock.Release()
	got, lock = claim()
	defer lock.Release()
	if got.ID != backup2.ID || string(got.Params) != `{"kind": "manual"}` {
		t.Errorf("claimed %+v, want the backup %d with its params", got, backup2.ID)
	}
}

// TestClaimJobLanesConcurrent has two workers claim at once while an
// environment has a job queued in each lane: exactly one of them may run.
func TestClaimJobLanesConcurrent(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	for round := range 20 {
		name := fmt.Sprintf("env-%d", round)
		env := mustCreateEnvironment(t, st, name)
		for _, lane := range []string{store.LaneOps, store.LaneBackup} {
			if _, err := st.QueueJob(ctx, store.NewJob{EnvID: env.ID, EnvName: name, Kind: "k", Lane: lane}); err != nil {
				t.Fatal(err)
			}
		}
		type result struct {
			j    store.Job
			lock *store.SessionLock
			err  error
		}
		results := make(chan result, 2)
		for range 2 {
			go func() {
				j, lock, err := st.ClaimJob(ctx)
				results <- result{j, lock, err}
			}()
		}
		// Both answers are in before the claimed job finishes.
		var claimed []result
		for range 2 {
			r := <-results
			switch {
			case r.err == nil:
				claimed = append(claimed, r)
			case !errors.Is(r.err, store.ErrNotFound):
				t.Fatalf("ClaimJob: %v", r.err)
			}
		}
		for _, r := range claimed {
			if err := st.FinishJob(ctx, r.j.ID, ""); err != nil {
				t.Fatal(err)
			}
			r.lock.Release()
		}
		if len(claimed) != 1 {
			t.Fatalf("round %d: %d jobs of one environment claimed at once, want 1", round, len(claimed))
		}
		// The other lane's job runs after.
		j, lock, err := st.ClaimJob(ctx)
		if err != nil || j.EnvName != name {
			t.Fatalf("round %d: ClaimJob after the first ended = %+v, %v", round, j, err)
		}
		if err := st.FinishJob(ctx, j.ID, ""); err != nil {
			t.Fatal(err)
		}
		lock.Release()
	}
}

// TestUnclaimJob: a claim undone (pgdeck began stopping while it was made)
// leaves the job as it was before: queued, the attempt not counted, no start
// time; the next claim counts its first attempt.
func TestUnclaimJob(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	st := storetest.New(t)
	queued, err := st.CreateJob(ctx, mustCreateEnvironment(t, st, "shop").ID, "shop", "deploy", "t")
	if err != nil {
		t.Fatal(err)
	}
	j, lock, err := st.ClaimJob(ctx)
	if err != nil || j.ID != queued.ID || j.Attempts != 1 {
		t.Fatalf("ClaimJob = %+v, %v", j, err)
	}
	if err := st.UnclaimJob(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	lock.Release()
	back, err := st.JobByID(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if back.State != store.JobQueued || back.Attempts != 0 || back.StartedAt != nil {
		t.Fatalf("after UnclaimJob: state %q, attempts %d, started %v; want queued, 0, none", back.State, back.Attempts, back.StartedAt)
	}
	again, lock, err := st.ClaimJob(ctx)
	if err != nil || again.ID != j.ID || again.Attempts != 1 {
		t.Fatalf("ClaimJob after UnclaimJob = %+v, %v; want the job, attempt 1", again, err)
	}
	lock.Release()
}
