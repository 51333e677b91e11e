package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
)

// apiJob is a job as the API shows it.
type apiJob struct {
	ID          int64      `json:"id"`
	Environment string     `json:"environment"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	Step        string     `json:"step"`
	Progress    int        `json:"progress"`
	Error       string     `json:"error"`
	RequestedBy string     `json:"requested_by"`
	CreatedAt   time.Time  `json:"created_at"`
	StartedAt   *time.Time `json:"started_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	Log         []string   `json:"log,omitempty"`
}

func toAPIJob(j store.Job, log []store.JobLine) apiJob {
	out := apiJob{ID: j.ID, Environment: j.EnvName, Kind: j.Kind, State: j.State, Step: j.Step, Progress: j.Progress,
		Error: j.Error, RequestedBy: j.RequestedBy, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
	for _, l := range log {
		out.Log = append(out.Log, l.At.UTC().Format(time.RFC3339Nano)+" "+l.Line)
	}
	return out
}

// apiShowJob answers GET /api/v1/jobs/{id}.
func (s *Server) apiShowJob(c echo.Context) error {
	j, log, err := s.job(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIJob(j, log))
}
