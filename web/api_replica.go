package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
)

// apiReplica is GET /environments/{name}/replica.
type apiReplica struct {
	// Enabled is the saved setting; Applied says the last redeploy
	// applied it (Deploy is possible then).
	Enabled      bool             `json:"enabled"`
	Applied      bool             `json:"applied"`
	Requirements []apiRequirement `json:"requirements"`
	// Status is not_deployed, deploying, online, lagging, offline or error.
	Status   string `json:"status"`
	Severity string `json:"severity"`
	Reason   string `json:"reason"`
	// LagBytes, LagSeconds and SafeWALBytes are null when not measured
	// (safe_wal_bytes also when the slot's WAL is not limited).
	LagBytes     *int64     `json:"lag_bytes"`
	LagSeconds   *float64   `json:"lag_seconds"`
	SafeWALBytes *int64     `json:"safe_wal_bytes"`
	WALStatus    string     `json:"wal_status,omitempty"`
	CheckedAt    *time.Time `json:"checked_at"`
	// Error is what Error or Offline comes from; null otherwise.
	Error *string `json:"error"`
	// LogLine is the replica's relevant server log line, with Error.
	LogLine    string        `json:"log_line,omitempty"`
	Host       *string       `json:"host"`
	Port       *int          `json:"port"`
	Thresholds apiThresholds `json:"thresholds"`
	// Job is the environment's queued or running job, if any.
	Job *apiJob `json:"job"`
}

type apiRequirement struct {
	Name   string `json:"name"`
	Met    bool   `json:"met"`
	Reason string `json:"reason"`
}

type apiThresholds struct {
	WarnBytes   int64   `json:"warn_bytes"`
	WarnSeconds float64 `json:"warn_seconds"`
	CritBytes   int64   `json:"crit_bytes"`
	CritSeconds float64 `json:"crit_seconds"`
}

// apiReplicaBrief is the replica in GET /environments/{name}.
type apiReplicaBrief struct {
	Status string `json:"status"`
	Port   *int   `json:"port"`
}

// apiShowReplica answers GET /api/v1/environments/{name}/replica.
func (s *Server) apiShowReplica(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return err
	}
	r, err := s.loadReplica(ctx, e, saved, true)
	if err != nil {
		return err
	}
	t := s.thresholds
	out := apiReplica{Enabled: r.Enabled, Applied: r.Applied, Requirements: []apiRequirement{},
		Status: r.Status, Severity: r.Severity, Reason: r.Reason, Port: r.Port,
		Thresholds: apiThresholds(t)}
	for _, q := range r.Requirements {
		out.Requirements = append(out.Requirements, apiRequirement{Name: q.Name, Met: q.Met, Reason: q.Reason})
	}
	if r.Port != nil {
		out.Host = &r.Host
	}
	if h := r.Health; h != nil {
		out.LagBytes, out.LagSeconds, out.CheckedAt = h.LagBytes, h.LagSeconds, &h.CheckedAt
		out.SafeWALBytes, out.WALStatus = r.Details.SafeWALBytes, r.Details.WALStatus
	}
	if msg := r.Error(); msg != "" {
		out.Error = &msg
		out.LogLine = r.Details.LogLine
	}
	if r.Job != nil {
		j := toAPIJob(*r.Job, nil)
		out.Job = &j
	}
	return c.JSON(http.StatusOK, out)
}

// apiDeployReplica answers POST /api/v1/environments/{name}/replica (202 with the job).
func (s *Server) apiDeployReplica(c echo.Context) error {
	return s.apiReplicaJob(c, provisioner.KindDeployReplica)
}

// apiRebuildReplica answers POST /api/v1/environments/{name}/replica/rebuild.
func (s *Server) apiRebuildReplica(c echo.Context) error {
	return s.apiReplicaJob(c, provisioner.KindRebuildReplica)
}

// apiRemoveReplica answers DELETE /api/v1/environments/{name}/replica.
func (s *Server) apiRemoveReplica(c echo.Context) error {
	return s.apiReplicaJob(c, provisioner.KindRemoveReplica)
}

func (s *Server) apiReplicaJob(c echo.Context, kind provisioner.Kind) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	j, err := s.startReplicaJob(c, e, kind)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}
