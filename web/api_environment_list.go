package web

import (
	"net/http"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
)

// apiEnvironment is an environment as the API shows it.
type apiEnvironment struct {
	Name         string    `json:"name"`
	OdooVersion  string    `json:"odoo_version"`
	Stage        string    `json:"stage"`
	Plan         string    `json:"plan"`
	Server       string    `json:"server"`
	DesiredState string    `json:"desired_state"`
	CreatedAt    time.Time `json:"created_at"`
	Health       apiHealth `json:"health"`
	Port         *int      `json:"port"`
	Database     string    `json:"database"`
	User         string    `json:"user"`
	// OdooConf is the path of the odoo.conf pgdeck writes for the
	// environment (GET of one environment only).
	OdooConf string `json:"odoo_conf,omitempty"`
	// LastJob is the environment's newest job (its deploy, right after create).
	LastJob *apiJob `json:"last_job"`
	// Pooler is PgBouncer's state (GET of one environment only).
	Pooler *apiPooler `json:"pooler,omitempty"`
	// Replica is the read replica's status and port (GET of one
	// environment only; GET …/replica says more).
	Replica *apiReplicaBrief `json:"replica,omitempty"`
}

// apiPooler is an environment's PgBouncer: running, stopped or error (its
// health), checking before its first check, or disabled when none is
// deployed; port is where Odoo reaches it (null when disabled).
type apiPooler struct {
	Status string `json:"status"`
	Port   *int   `json:"port"`
	Reason string `json:"reason"`
}

// apiHealth is the health object of an environment.
type apiHealth struct {
	Status string `json:"status"`
	// Reason is what happened in words; Advice what to do about it; Detail
	// the technical cause (the server's last log lines on lines of their own).
	Reason    string     `json:"reason"`
	Advice    string     `json:"advice"`
	Detail    string     `json:"detail"`
	CheckedAt *time.Time `json:"checked_at"`
}

func toAPIEnvironment(e store.Environment, st envState) apiEnvironment {
	v := environmentView(e, st)
	h := apiHealth{Status: v.Health.Status, Reason: v.Health.Reason, Advice: v.Health.Advice, Detail: v.Health.Detail}
	if !v.Health.CheckedAt.IsZero() {
		t := v.Health.CheckedAt
		h.CheckedAt = &t
	}
	out := apiEnvironment{Name: e.Name, OdooVersion: e.OdooVersion, Stage: e.Stage, Plan: e.Plan, Server: e.Server,
		DesiredState: e.DesiredState, CreatedAt: e.CreatedAt, Health: h, Port: e.Port, Database: e.DBName, User: e.DBUser}
	if st.job != nil {
		j := toAPIJob(*st.job, nil)
		out.LastJob = &j
	}
	return out
}

// apiListEnvironments answers GET /api/v1/environments.
func (s *Server) apiListEnvironments(c echo.Context) error {
	envs, err := s.store.ListEnvironments(c.Request().Context())
	if err != nil {
		return err
	}
	hs, js, err := s.loadStates(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]apiEnvironment, len(envs))
	for i, e := range envs {
		out[i] = toAPIEnvironment(e, stateFrom(e, hs, js))
	}
	return c.JSON(http.StatusOK, map[string]any{"environments": out})
}
