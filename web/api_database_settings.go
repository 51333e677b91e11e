package web

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// apiDatabaseSettings is GET|PUT /environments/{name}/database/settings.
type apiDatabaseSettings struct {
	Parameters  []apiParameter `json:"parameters"`
	PgBouncer   apiPgBouncer   `json:"pgbouncer"`
	ReadReplica apiReadReplica `json:"read_replica"`
	// Pending names what waits for a redeploy; PendingChanges says from
	// what to what.
	Pending        []string           `json:"pending"`
	PendingChanges []apiPendingChange `json:"pending_changes"`
}

// apiParameter is one tuned parameter.
type apiParameter struct {
	Name        string `json:"name"`
	Recommended string `json:"recommended"`
	// Saved is the override (null: none); Applied the running server's
	// value as read back (null: not read yet, or not deployed).
	Saved   *string `json:"saved"`
	Applied *string `json:"applied"`
	Context string  `json:"context"`
	Rule    string  `json:"rule,omitempty"`
	// Restart says whether a change restarts PostgreSQL (else a reload).
	Restart bool `json:"restart"`
}

// apiPgBouncer is the saved PgBouncer settings with the defaults filled
// in, and whether the plan allows PgBouncer (reason when not).
type apiPgBouncer struct {
	Enabled       bool   `json:"enabled"`
	PoolSize      int    `json:"pool_size"`
	PoolMode      string `json:"pool_mode"`
	MaxClientConn int    `json:"max_client_conn"`
	Allowed       bool   `json:"allowed"`
	Reason        string `json:"reason,omitempty"`
}

type apiReadReplica struct {
	Enabled bool `json:"enabled"`
}

type apiPendingChange struct {
	Name    string `json:"name"`
	Old     string `json:"old"`
	New     string `json:"new"`
	Restart bool   `json:"restart"`
}

// apiShowDatabaseSettings answers GET /api/v1/environments/{name}/database/settings.
func (s *Server) apiShowDatabaseSettings(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	saved, err := s.store.DatabaseSettings(c.Request().Context(), e.ID)
	if err != nil {
		return err
	}
	return s.answerDatabaseSettings(c, e, saved)
}

// apiUpdateDatabaseSettings answers PUT /api/v1/environments/{name}/database/settings:
// any subset, null resets a parameter; answers like GET.
func (s *Server) apiUpdateDatabaseSettings(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	if mt := c.Request().Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
	}
	u, fields, err := decodeSettingsUpdate(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	saved, err := s.updateSettings(c, e, u, fields)
	if err != nil {
		return err
	}
	return s.answerDatabaseSettings(c, e, saved)
}

// answerDatabaseSettings writes the GET shape.
func (s *Server) answerDatabaseSettings(c echo.Context, e store.Environment, saved store.DatabaseSettings) error {
	st, err := s.loadState(c.Request().Context(), e, needHealth)
	if err != nil {
		return err
	}
	rows, err := parameterRows(e, saved, serverSettings(st.health))
	if err != nil {
		return err
	}
	out := apiDatabaseSettings{Parameters: make([]apiParameter, len(rows)), Pending: []string{}, PendingChanges: []apiPendingChange{},
		ReadReplica: apiReadReplica{Enabled: saved.ReadReplica}}
	for i, r := range rows {
		p := apiParameter{Name: r.Name, Recommended: r.Recommended, Context: r.Context, Rule: r.Rule, Restart: r.Restart}
		if r.Saved != "" {
			v := r.Saved
			p.Saved = &v
		}
		if r.Applied != "" {
			v := r.Applied
			p.Applied = &v
		}
		out.Parameters[i] = p
	}
	pool := savedPooler(saved)
	ok, reason := render.PlanAllowsPooler(e.Plan)
	out.PgBouncer = apiPgBouncer{Enabled: pool.Enabled, PoolSize: pool.PoolSize, PoolMode: pool.PoolMode,
		MaxClientConn: pool.MaxClientConn, Allowed: ok, Reason: reason}
	pending, err := provisioner.PendingChanges(e, saved)
	if err != nil {
		return err
	}
	for _, p := range pending {
		out.Pending = append(out.Pending, p.Name)
		out.PendingChanges = append(out.PendingChanges, apiPendingChange{Name: p.Name, Old: p.Old, New: p.New, Restart: p.Restart})
	}
	return c.JSON(http.StatusOK, out)
}

// maxAPIParameters bounds how many parameters one PUT may name (pgdeck
// tunes fifteen).
const maxAPIParameters = 64

// decodeSettingsUpdate reads exactly one JSON object with any of
// parameters, pgbouncer and read_replica, their keys spelled exactly,
// and nothing after it. The shape (an unknown key, not an object) is an
// error (400); a value of the wrong type is a message for its field (422,
// with the rest of the update's messages).
func decodeSettingsUpdate(r io.Reader) (provisioner.SettingsUpdate, map[string]string, error) {
	var u provisioner.SettingsUpdate
	fields := map[string]string{}
	top, err := decodeObject(r)
	if err != nil {
		return u, nil, err
	}
	for key, raw := range top {
		switch key {
		case "parameters":
			ps, err := objectOf(raw, "parameters")
			if err != nil {
				return u, nil, err
			}
			if len(ps) > maxAPIParameters {
				return u, nil, fmt.Errorf("parameters: at most %d (pgdeck tunes %d)", maxAPIParameters, len(render.TunedParameters()))
			}
			u.Parameters = map[string]*string{}
			for name, v := range ps {
				key := "parameters." + name
				if msg := CheckText(name); msg != "" {
					return u, nil, fmt.Errorf("parameters: a name holds characters that are not allowed: %s", msg)
				}
				switch {
				case isNull(v):
					u.Parameters[name] = nil
				case v[0] == '"':
					var s string
					if json.Unmarshal(v, &s) != nil {
						fields[key] = "Use a string such as \"8MB\", or null to reset to the recommendation."
					} else if msg := CheckText(s); msg != "" {
						fields[key] = msg
					} else {
						u.Parameters[name] = &s
					}
				case v[0] == '-' || v[0] >= '0' && v[0] <= '9':
					// A plain number (max_connections: 200) reads as its text.
					s := string(v)
					u.Parameters[name] = &s
				default:
					fields[key] = "Use a string such as \"8MB\", or null to reset to the recommendation."
				}
			}
		case "pgbouncer":
			ps, err := objectOf(raw, "pgbouncer")
			if err != nil {
				return u, nil, err
			}
			p := &provisioner.PoolerUpdate{}
			for name, v := range ps {
				key := "pgbouncer." + name
				switch name {
				case "enabled":
					p.Enabled = decodeField[bool](v, key, "Use true or false.", fields)
				case "pool_size":
					p.PoolSize = decodeField[int](v, key, "Use a whole number, such as 20.", fields)
				case "max_client_conn":
					p.MaxClientConn = decodeField[int](v, key, "Use a whole number, such as 100.", fields)
				case "pool_mode":
					p.PoolMode = decodeField[string](v, key, "Use \"transaction\" or \"session\".", fields)
				default:
					return u, nil, fmt.Errorf("unknown field %s (pgbouncer fields: enabled, pool_size, pool_mode, max_client_conn)", quoteJSON(key))
				}
			}
			u.PgBouncer = p
		case "read_replica":
			rr, err := objectOf(raw, "read_replica")
			if err != nil {
				return u, nil, err
			}
			for name, v := range rr {
				if name != "enabled" {
					return u, nil, fmt.Errorf("unknown field %s (read_replica fields: enabled)", quoteJSON("read_replica."+name))
				}
				u.ReadReplica = decodeField[bool](v, "read_replica.enabled", "Use true or false.", fields)
			}
		default:
			return u, nil, fmt.Errorf("unknown field %s (fields: parameters, pgbouncer, read_replica)", quoteJSON(key))
		}
	}
	return u, fields, nil
}

// decodeObject reads one JSON object and nothing after it.
func decodeObject(r io.Reader) (map[string]json.RawMessage, error) {
	dec := json.NewDecoder(r)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return nil, errors.New("the body is too large")
		}
		return nil, err
	}
	if raw == nil {
		return nil, errors.New("want a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, errors.New("unexpected data after the JSON object")
	}
	return raw, nil
}

// objectOf reads a nested JSON object.
func objectOf(raw json.RawMessage, name string) (map[string]json.RawMessage, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(raw, &m); err != nil || m == nil {
		return nil, fmt.Errorf("%s: want a JSON object", name)
	}
	return m, nil
}

// decodeField reads one value of type T, or records msg for key and
// returns nil (null included: PgBouncer's fields have no "reset").
func decodeField[T any](raw json.RawMessage, key, msg string, fields map[string]string) *T {
	var v T
	if isNull(raw) || json.Unmarshal(raw, &v) != nil {
		fields[key] = msg
		return nil
	}
	if s, ok := any(v).(string); ok {
		if m := CheckText(s); m != "" {
			fields[key] = m
			return nil
		}
	}
	return &v
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// quoteJSON quotes a key for a message, shortened.
func quoteJSON(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	b, _ := json.Marshal(s)
	return string(b)
}
