package web

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"
)

// apiCreateEnvironment answers POST /api/v1/environments.
func (s *Server) apiCreateEnvironment(c echo.Context) error {
	ct := c.Request().Header.Get("Content-Type")
	if !strings.HasPrefix(ct, "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
	}
	in, fields, err := decodeEnvironmentInput(http.MaxBytesReader(c.Response(), c.Request().Body, 64<<10))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	if len(fields) > 0 {
		return invalidFields(fields)
	}
	in.Name = strings.TrimSpace(in.Name)
	env, err := s.insertEnvironment(c, in)
	var ve validationError
	if errors.As(err, &ve) {
		return invalidFields(ve.fields)
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
	dst := map[string]*string{"name": &in.Name, "odoo_version": &in.OdooVersion, "stage": &in.Stage, "plan": &in.Plan, "server": &in.Server}
	fields := map[string]string{}
	for k, v := range raw {
		p, ok := dst[k]
		if !ok {
			return environmentInput{}, nil, fmt.Errorf("unknown field %q (fields: name, odoo_version, stage, plan, server)", k)
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
