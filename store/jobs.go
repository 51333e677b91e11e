package store

import (
	"context"
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

// ErrBusy is returned when an environment already has a queued or running job.
var ErrBusy = errors.New("another job is already queued or running for this environment")

// Job is one change to a running system, run by a worker.
type Job struct {
	ID            int64      `db:"id"`
	EnvironmentID *int64     `db:"environment_id"`
	EnvName       string     `db:"env_name"`
	Kind          string     `db:"kind"`
	State         string     `db:"state"`
	Step          string     `db:"step"`
	Progress      int        `db:"progress"`
	Error         string     `db:"error"`
	RequestedBy   string     `db:"requested_by"`
	Attempts      int        `db:"attempts"`
	CreatedAt     time.Time  `db:"created_at"`
	StartedAt     *time.Time `db:"started_at"`
	FinishedAt    *time.Time `db:"finished_at"`
	UpdatedAt     time.Time  `db:"updated_at"`
}

// Active reports whether the job is queued or running.
func (j Job) Active() bool { return j.State == JobQueued || j.State == JobRunning }

// JobLine is one line of a job's log.
type JobLine struct {
	At   time.Time `db:"at"`
	Line string    `db:"line"`
}

const jobColumns = `id, environment_id, env_name, kind, state, step, progress, error, requested_by, attempts,
	created_at, started_at, finished_at, updated_at`

// CreateJob queues a job; ErrBusy when the environment already has an active one.
func (s *Store) CreateJob(ctx context.Context, envID int64, envName, kind, requestedBy string) (Job, error) {
	rows, _ := s.Pool.Query(ctx, `INSERT INTO jobs (environment_id, env_name, kind, requested_by) VALUES ($1, $2, $3, $4)
		RETURNING `+jobColumns, envID, envName, kind, requestedBy)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if isUniqueViolation(err) {
		return Job{}, fmt.Errorf("store: create %s job for %q: %w", kind, envName, ErrBusy)
	}
	if err != nil {
		return Job{}, fmt.Errorf("store: create %s job for %q: %w", kind, envName, err)
	}
	return j, nil
}

// ClaimJob takes the oldest queued job with FOR UPDATE SKIP LOCKED and marks
// it running; ErrNotFound when none waits.
func (s *Store) ClaimJob(ctx context.Context) (Job, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE jobs SET state = 'running', attempts = attempts + 1,
			started_at = coalesce(started_at, now()), updated_at = now()
		WHERE id = (SELECT id FROM jobs WHERE state = 'queued' ORDER BY created_at, id LIMIT 1 FOR UPDATE SKIP LOCKED)
		RETURNING `+jobColumns)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, fmt.Errorf("store: claim job: %w", notFound(err))
	}
	return j, nil
}

// RequeueRunningJobs puts jobs left running by a process that died back in the
// queue (their steps are idempotent), returning them.
func (s *Store) RequeueRunningJobs(ctx context.Context) ([]Job, error) {
	rows, _ := s.Pool.Query(ctx, `UPDATE jobs SET state = 'queued', updated_at = now() WHERE state = 'running' RETURNING `+jobColumns)
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

// ActiveJob returns the environment's queued or running job, or ErrNotFound.
func (s *Store) ActiveJob(ctx context.Context, envName string) (Job, error) {
	rows, _ := s.Pool.Query(ctx, `SELECT `+jobColumns+` FROM jobs WHERE env_name = $1 AND state IN ('queued', 'running')`, envName)
	j, err := pgx.CollectExactlyOneRow(rows, pgx.RowToStructByName[Job])
	if err != nil {
		return Job{}, fmt.Errorf("store: active job of %q: %w", envName, notFound(err))
	}
	return j, nil
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
