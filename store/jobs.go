package store

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// Job states.
const (
	JobQueued    = "queued"
	JobRunning   = "running"
	JobSucceeded = "succeeded"
	JobFailed    = "failed"
)

// Job lanes. Each lane holds at most one active (queued or running) job per
// environment; a queued job is claimed only while no other job of its
// environment runs, whatever its lane (all lanes touch the primary today).
const (
	// LaneOps holds the operator's actions on an environment (deploy,
	// redeploy, stop, start, restart, delete).
	LaneOps = "ops"
	// LaneBackup holds the operator's backups and checks of backups.
	LaneBackup = "backup"
	// LaneSchedule holds scheduled backups, so that a scheduled backup never
	// makes an operator's backup fail as busy, nor the other way round.
	LaneSchedule = "schedule"
)

// lockNSEnvClaim: the second key is hashtext(env_name), held for the moment
// a claim checks that nothing else of the environment runs (see ClaimJob).
const lockNSEnvClaim int32 = 7_001_004

// ErrBusy is returned when an environment already has a queued or running
// job in the same lane.
var ErrBusy = errors.New("another job is already queued or running for this environment")

// Job is one change to a running system, run by a worker.
type Job struct {
	ID            int64  `db:"id"`
	EnvironmentID *int64 `db:"environment_id"`
	EnvName       string `db:"env_name"`
	Kind          string `db:"kind"`
	Lane          string `db:"lane"`
	// Params are the job's parameters as JSON (an object; {} when none),
	// decoded by the provisioner into its kind's type.
	Params      json.RawMessage `db:"params"`
	State       string          `db:"state"`
	Step        string          `db:"step"`
	Progress    int             `db:"progress"`
	Error       string          `db:"error"`
	RequestedBy string          `db:"requested_by"`
	Attempts    int             `db:"attempts"`
	CreatedAt   time.Time       `db:"created_at"`
	StartedAt   *time.Time      `db:"started_at"`
	FinishedAt  *time.Time      `db:"finished_at"`
	UpdatedAt   time.Time       `db:"updated_at"`
}

// Active reports whether the job is queued or running.
func (j Job) Active() bool { return j.State == JobQueued || j.State == JobRunning }

// JobLine is one line of a job's log.
type JobLine struct {
	At   time.Time `db:"at"`
	Line string    `db:"line"`
}

const jobColumns = `id, environment_id, env_name, kind, lane, params, state, step, progress, error, requested_by, attempts,
	created_at, started_at, finished_at, updated_at`

// NewJob is what QueueJob needs to queue a job.
type NewJob struct {
	EnvID       int64
	EnvName     string
	Kind        string
	Lane        string          // LaneOps when empty
	Params      json.RawMessage // a JSON object; {} when empty
	RequestedBy string
}

// CreateJob queues a job without parameters in the ops lane; ErrBusy when
// the environment already has an active one there.
func (s *Store) CreateJob(ctx context.Context, envID int64, envName, kind, requestedBy string) (Job, error) {
	return s.QueueJob(ctx, NewJob{EnvID: envID, EnvName: envName, Kind: kind, RequestedBy: requestedBy})
}

// QueueJob queues a job in its lane; ErrBusy when the environment already
// has an active job in that lane.
func (s *Store) QueueJob(ctx context.Context, n NewJob) (Job, error) {
	if n.Lane == "" {
		n.Lane = LaneOps
	}
	if len(n.Params) == 0 {
		n.Params = json.RawMessage(`{}`)
	}
	rows, _ := s.Pool.Query(ctx, `INSERT INTO jobs (environment_id, env_name, kind, lane, params, requested_by)
		VALUES ($1, $2, $3, $4, $5, $6)
		RETURNING `+jobColumns, n.EnvID, n.EnvName, n.Kind, n.Lane, n.Params, n.RequestedBy)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if isUniqueViolation(err) {
		return Job{}, fmt.Errorf("store: create %s job for %q: %w", n.Kind, n.EnvName, ErrBusy)
	}
	if err != nil {
		return Job{}, fmt.Errorf("store: create %s job for %q: %w", n.Kind, n.EnvName, err)
	}
	return j, nil
}

// ClaimJob takes the oldest queued job whose environment runs no other job
// (in any lane: a queued job waits behind a running one instead of being
// refused), with FOR UPDATE SKIP LOCKED, marks it running and, in the same
// transaction, takes the job's session advisory lock on a connection kept
// out of the pool: the returned lock is the instance's ownership of the job.
// The worker calls its Release after FinishJob; if the process dies first,
// the lock dies with its connection and RequeueRunningJobs hands the job to a
// live instance. ErrNotFound when no job can be claimed now.
func (s *Store) ClaimJob(ctx context.Context) (Job, *SessionLock, error) {
	conn, err := s.Pool.Acquire(ctx)
	if err != nil {
		return Job{}, nil, fmt.Errorf("store: claim job: %w", err)
	}
	var (
		j      Job
		locked bool
	)
	err = pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
		var (
			id      int64
			envName string
		)
		err := tx.QueryRow(ctx, `SELECT id, env_name FROM jobs q WHERE state = 'queued'
				AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.env_name = q.env_name AND r.state = 'running')
			ORDER BY created_at, id LIMIT 1 FOR UPDATE OF q SKIP LOCKED`).Scan(&id, &envName)
		if err != nil {
			return notFound(err)
		}
		// Two workers may each pick a queued job of the same environment
		// (one per lane) from snapshots where nothing of it runs: the
		// environment's lock makes them check and mark one after the other,
		// and the second sees the first's committed claim. A lock held for
		// the rest of this short transaction only.
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1, hashtext($2))`, lockNSEnvClaim, envName); err != nil {
			return err
		}
		rows, _ := tx.Query(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1,
				started_at = coalesce(started_at, now()), updated_at = now()
			WHERE id = $1 AND NOT EXISTS (SELECT 1 FROM jobs r WHERE r.env_name = $2 AND r.state = 'running')
			RETURNING `+jobColumns, id, envName)
		j, err = pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
		if err != nil {
			return notFound(err) // another job of the environment was claimed meanwhile: next poll
		}
		// Try, not wait: the lock of a queued job is only ever held for a
		// moment by a RequeueRunningJobs that may itself be waiting for
		// this row, and waiting here could deadlock with it. The job stays
		// queued for the next poll.
		if err := tx.QueryRow(ctx, `SELECT pg_try_advisory_lock($1, $2)`, lockNSJobs, jobLockKey(j.ID)).Scan(&locked); err != nil {
			return err
		}
		if !locked {
			return fmt.Errorf("job %d is being looked at by another instance: %w", j.ID, ErrNotFound)
		}
		return nil
	})
	if err != nil {
		if locked {
			// The session lock outlives a failed commit: drop the session.
			conn.Conn().Close(context.WithoutCancel(ctx)) //nolint:errcheck
		}
		conn.Release()
		return Job{}, nil, fmt.Errorf("store: claim job: %w", err)
	}
	return j, &SessionLock{conn: conn, ns: lockNSJobs, key: jobLockKey(j.ID)}, nil
}

// jobLockKey is the second key of a job's advisory lock: the id's low 32
// bits, as the SQL expression jobLockKeySQL computes them.
func jobLockKey(id int64) int32 { return int32(uint32(id)) }

// jobLockKeySQL is jobLockKey in SQL, over the jobs.id column.
const jobLockKeySQL = `id::bit(32)::int`

// RequeueRunningJobs puts running jobs whose owner is gone back in the queue
// (their steps are idempotent) and returns them. A job's owner is the
// session holding its advisory lock (see ClaimJob): a job another live
// instance, or this one, is running keeps its lock and is left alone. Jobs
// in except (those this process is running) are left alone even when their
// lock's session was lost, since their worker still runs them.
func (s *Store) RequeueRunningJobs(ctx context.Context, except ...int64) ([]Job, error) {
	if except == nil {
		except = []int64{} // nil would be NULL, and "id = ANY(NULL)" is never false
	}
	// The try-lock is transaction-scoped, so it is gone when the statement
	// ends; it fails for a lock another session holds (session locks are
	// re-entrant only within their own session, and claim sessions never go
	// back to the pool while they hold one). CASE keeps the planner from
	// trying the lock of rows that are not candidates.
	rows, _ := s.Pool.Query(ctx, `UPDATE jobs SET state = 'queued', updated_at = now()
		WHERE CASE WHEN state = 'running' AND NOT (id = ANY($2)) THEN pg_try_advisory_xact_lock($1, `+jobLockKeySQL+`) ELSE false END
		RETURNING `+jobColumns, lockNSJobs, except)
	js, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return nil, fmt.Errorf("store: requeue running jobs: %w", err)
	}
	return js, nil
}

// SetJobStep records the step a job is on and its progress.
func (s *Store) SetJobStep(ctx context.Context, id int64, step string, progress int) error {
	_, err := s.Pool.Exec(ctx, `UPDATE jobs SET step = $2, progress = $3, updated_at = now() WHERE id = $1`, id, step, progress)
	if err != nil {
		return fmt.Errorf("store: job %d step: %w", id, err)
	}
	return nil
}

// FinishJob ends a job: succeeded when errMsg is empty, else failed.
func (s *Store) FinishJob(ctx context.Context, id int64, errMsg string) error {
	state, progress := JobSucceeded, 100
	if errMsg != "" {
		state, progress = JobFailed, -1
	}
	_, err := s.Pool.Exec(ctx, `UPDATE jobs SET state = $2, error = $3,
			progress = CASE WHEN $4 < 0 THEN progress ELSE $4 END, finished_at = now(), updated_at = now()
		WHERE id = $1`, id, state, errMsg, progress)
	if err != nil {
		return fmt.Errorf("store: finish job %d: %w", id, err)
	}
	return nil
}

// AppendJobLog adds a line to a job's log.
func (s *Store) AppendJobLog(ctx context.Context, id int64, line string) error {
	_, err := s.Pool.Exec(ctx, `INSERT INTO job_logs (job_id, line) VALUES ($1, $2)`, id, line)
	if err != nil {
		return fmt.Errorf("store: job %d log: %w", id, err)
	}
	return nil
}

// JobLog returns a job's log lines in order.
func (s *Store) JobLog(ctx context.Context, id int64) ([]JobLine, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT at, line FROM job_logs WHERE job_id = $1 ORDER BY id`, id)
	ls, err := pgx.CollectRows(rows, pgx.RowToStructByName[JobLine])
	if err != nil {
		return nil, fmt.Errorf("store: job %d log: %w", id, err)
	}
	return ls, nil
}

// JobByID finds a job.
func (s *Store) JobByID(ctx context.Context, id int64) (Job, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE id = $1`, id)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, fmt.Errorf("store: job %d: %w", id, notFound(err))
	}
	return j, nil
}

// ActiveJob returns the environment's queued or running job in any lane
// (the running one first, else the oldest), or ErrNotFound.
func (s *Store) ActiveJob(ctx context.Context, envName string) (Job, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE env_name = $1 AND state IN ('queued', 'running')
		ORDER BY state = 'running' DESC, created_at, id LIMIT 1`, envName)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, fmt.Errorf("store: active job of %q: %w", envName, notFound(err))
	}
	return j, nil
}

// ActiveJobIn returns the environment's queued or running job in lane, or
// ErrNotFound.
func (s *Store) ActiveJobIn(ctx context.Context, envName, lane string) (Job, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE env_name = $1 AND lane = $2 AND state IN ('queued', 'running')`, envName, lane)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, fmt.Errorf("store: active %s job of %q: %w", lane, envName, notFound(err))
	}
	return j, nil
}

// RequeueJob puts a running job this instance stops running (pgdeck shuts
// down before it ended) back in the queue; its steps are idempotent.
func (s *Store) RequeueJob(ctx context.Context, id int64) error {
	_, err := s.Pool.Exec(ctx, `UPDATE jobs SET state = 'queued', updated_at = now() WHERE id = $1 AND state = 'running'`, id)
	if err != nil {
		return fmt.Errorf("store: requeue job %d: %w", id, err)
	}
	return nil
}

// UnclaimJob undoes a claim whose job never started: pgdeck began stopping
// while the claim was being made. The job is queued again as it was, its
// attempt not counted (and its start time cleared if it had none before).
func (s *Store) UnclaimJob(ctx context.Context, id int64) error {
	_, err := s.Pool.Exec(ctx, `UPDATE jobs SET state = 'queued', attempts = attempts - 1,
			started_at = CASE WHEN attempts = 1 THEN NULL ELSE started_at END, updated_at = now()
		WHERE id = $1 AND state = 'running'`, id)
	if err != nil {
		return fmt.Errorf("store: unclaim job %d: %w", id, err)
	}
	return nil
}

// ListJobs returns the newest jobs, all environments or one (envName != "").
func (s *Store) ListJobs(ctx context.Context, envName string, limit int) ([]Job, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE $1 = '' OR env_name = $1
		ORDER BY created_at DESC, id DESC LIMIT $2`, envName, limit)
	js, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return nil, fmt.Errorf("store: list jobs: %w", err)
	}
	return js, nil
}

// LastJob returns the environment's newest job, or ErrNotFound.
func (s *Store) LastJob(ctx context.Context, envName string) (Job, error) {
	js, err := s.ListJobs(ctx, envName, 1)
	if err != nil {
		return Job{}, err
	}
	if len(js) == 0 {
		return Job{}, fmt.Errorf("store: last job of %q: %w", envName, ErrNotFound)
	}
	return js[0], nil
}

// CountJobsByState counts jobs per state (for /metrics).
func (s *Store) CountJobsByState(ctx context.Context) (map[string]int, error) {
	rows, err := s.Pool.Query(ctx, `SELECT state, count(*) FROM jobs GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("store: count jobs: %w", err)
	}
	defer rows.Close()
	out := map[string]int{JobQueued: 0, JobRunning: 0, JobSucceeded: 0, JobFailed: 0}
	for rows.Next() {
		var state string
		var n int
		if err := rows.Scan(&state, &n); err != nil {
			return nil, fmt.Errorf("store: count jobs: %w", err)
		}
		out[state] = n
	}
	return out, rows.Err()
}

// LatestJobs returns each environment's newest job, by environment name.
func (s *Store) LatestJobs(ctx context.Context) (map[string]Job, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT DISTINCT ON (env_name) `+jobColumns+` FROM jobs ORDER BY env_name, created_at DESC, id DESC`)
	js, err := pgx.CollectRows(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return nil, fmt.Errorf("store: latest jobs: %w", err)
	}
	out := make(map[string]Job, len(js))
	for _, j := range js {
		out[j.EnvName] = j
	}
	return out, nil
}
