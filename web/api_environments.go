package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
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
	out := apiEnvironment{Name: e.Name, OdooVersion: e.OdooVersion, Stage: e.Stage, Plan: e.Plan,
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

// apiShowEnvironment answers GET /api/v1/environments/{name}.
func (s *Server) apiShowEnvironment(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	st, err := s.loadState(c.Request().Context(), e, needAll)
	if err != nil {
		return err
	}
	out := toAPIEnvironment(e, st)
	if s.jobs != nil && e.Deployed() {
		out.OdooConf = s.jobs.OdooConfPath(e.Name)
	}
	return c.JSON(http.StatusOK, out)
}

// apiCreateEnvironment answers POST /api/v1/environments.
func (s *Server) apiCreateEnvironment(c echo.Context) error {
	ct := c.Request().Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return c.JSON(http.StatusUnsupportedMediaType, apiError{Error: "send a JSON body with Content-Type: application/json"})
	}
	in, fields, err := decodeEnvironmentInput(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err != nil {
		return c.JSON(http.StatusBadRequest, apiError{Error: "invalid JSON body: " + err.Error()})
	}
	if len(fields) > 0 {
		return c.JSON(http.StatusUnprocessableEntity, apiError{Error: "validation failed", Fields: fields})
	}
	in.Name = strings.TrimSpace(in.Name)
	env, err := s.insertEnvironment(c, in)
	var ve validationError
	if errors.As(err, &ve) {
		return c.JSON(http.StatusUnprocessableEntity, apiError{Error: "validation failed", Fields: ve.fields})
	}
	if err != nil {
		return err
	}
	st, err := s.loadState(c.Request().Context(), env, needAll)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toAPIEnvironment(env, st))
}

// decodeEnvironmentInput reads exactly one JSON object with the keys of
// environmentInput, spelled exactly (encoding/json would also take "NAME"),
// each a string, and nothing after it. Strings CheckText refuses come back
// as messages per field.
func decodeEnvironmentInput(r io.Reader) (environmentInput, map[string]string, error) {
	dec := json.NewDecoder(r)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return environmentInput{}, nil, err
	}
	if raw == nil {
		return environmentInput{}, nil, errors.New("want a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return environmentInput{}, nil, errors.New("unexpected data after the JSON object")
	}
	var in environmentInput
	dst := map[string]*string{"name": &in.Name, "odoo_version": &in.OdooVersion, "stage": &in.Stage, "plan": &in.Plan}
	fields := map[string]string{}
	for k, v := range raw {
		p, ok := dst[k]
		if !ok {
			return environmentInput{}, nil, fmt.Errorf("unknown field %q (fields: name, odoo_version, stage, plan)", k)
		}
		if err := json.Unmarshal(v, p); err != nil {
			return environmentInput{}, nil, fmt.Errorf("field %q: want a string", k)
		}
		if msg := CheckText(*p); msg != "" {
			fields[k] = msg
		}
	}
	return in, fields, nil
}
