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

	"pgdeck/provisioner"
)

// apiServer is a server as the API shows it. Capacity and used are bytes
// and CPUs; a capacity of 0 is not counted.
type apiServer struct {
	Name string `json:"name"`
	// Runtime is "local" (processes on pgdeck's host) or "docker".
	Runtime    string `json:"runtime"`
	DockerHost string `json:"docker_host"`
	// Builtin is this host's own server, made by PGDECK_RUNTIME.
	Builtin bool `json:"builtin"`
	// Status is the monitor's last check: online, offline or unknown.
	Status       string       `json:"status"`
	Reason       string       `json:"reason"`
	CheckedAt    *time.Time   `json:"checked_at"`
	Capacity     apiResources `json:"capacity"`
	Used         apiResources `json:"used"`
	Environments []string     `json:"environments"`
	CreatedAt    time.Time    `json:"created_at"`
}

// apiResources are memory and storage in bytes and a number of CPUs.
type apiResources struct {
	MemoryBytes  int64 `json:"memory_bytes"`
	CPUs         int   `json:"cpus"`
	StorageBytes int64 `json:"storage_bytes"`
}

func toAPIServer(l provisioner.ServerLoad) apiServer {
	c := l.Capacity()
	out := apiServer{Name: l.Name, Runtime: l.Runtime, DockerHost: l.DockerHost, Builtin: l.Builtin,
		Status: serverStatus(l.Status), Reason: l.Reason, CheckedAt: l.CheckedAt,
		Capacity:     apiResources{MemoryBytes: c.Memory, CPUs: c.CPUs, StorageBytes: c.Storage},
		Used:         apiResources{MemoryBytes: l.Used.Memory, CPUs: l.Used.CPUs, StorageBytes: l.Used.Storage},
		Environments: l.Environments, CreatedAt: l.CreatedAt}
	if out.Environments == nil {
		out.Environments = []string{}
	}
	return out
}

// apiListServers answers GET /api/v1/servers.
func (s *Server) apiListServers(c echo.Context) error {
	loads, err := s.loadServers(c.Request().Context())
	if err != nil {
		return err
	}
	out := make([]apiServer, len(loads))
	for i, l := range loads {
		out[i] = toAPIServer(l)
	}
	return c.JSON(http.StatusOK, map[string]any{"servers": out})
}

// apiShowServer answers GET /api/v1/servers/{name}.
func (s *Server) apiShowServer(c echo.Context) error {
	l, err := s.serverLoad(c)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIServer(l))
}

// apiRemoveServer answers DELETE /api/v1/servers/{name}: 204, or 409
// with the reason (the built-in server, environments on it).
func (s *Server) apiRemoveServer(c echo.Context) error {
	l, err := s.serverLoad(c)
	if err != nil {
		return err
	}
	if err := s.forgetServer(c, l); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiServerInput is the body of POST /api/v1/servers.
type apiServerInput struct {
	Name       string `json:"name"`
	DockerHost string `json:"docker_host"`
	// TLSCA, TLSCert and TLSKey are PEM (a tcp endpoint needs all three).
	TLSCA   string `json:"tls_ca"`
	TLSCert string `json:"tls_cert"`
	TLSKey  string `json:"tls_key"`
	// A capacity of 0 (or left out) is read from the engine.
	MemoryBytes  int64 `json:"memory_bytes"`
	CPUs         int   `json:"cpus"`
	StorageBytes int64 `json:"storage_bytes"`
}

// apiServerField names a provisioner's field as the API's body does.
func apiServerField(k string) string {
	switch k {
	case "memory":
		return "memory_bytes"
	case "storage":
		return "storage_bytes"
	}
	return k
}

// apiRegisterServer answers POST /api/v1/servers with the registered
// server (201); a refusal is 422 with a message per field.
func (s *Server) apiRegisterServer(c echo.Context) error {
	if s.jobs == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "servers cannot be registered in this process")
	}
	if !strings.HasPrefix(c.Request().Header.Get("Content-Type"), "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
	}
	in, err := decodeServerInput(c.Request().Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return echo.NewHTTPError(http.StatusRequestEntityTooLarge, "The request is too large.")
		}
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	fields := map[string]string{}
	for k, v := range map[string]string{"name": in.Name, "docker_host": in.DockerHost} {
		if msg := CheckText(v); msg != "" {
			fields[k] = msg
		}
	}
	for k, v := range map[string]string{"tls_ca": in.TLSCA, "tls_cert": in.TLSCert, "tls_key": in.TLSKey} {
		if msg := checkPEM([]byte(v)); msg != "" {
			fields[k] = msg
		}
	}
	if len(fields) > 0 {
		return invalidFields(fields)
	}
	sv, err := s.jobs.RegisterServer(c.Request().Context(), provisioner.ServerInput{
		Name: strings.TrimSpace(in.Name), DockerHost: strings.TrimSpace(in.DockerHost),
		CA: []byte(in.TLSCA), Cert: []byte(in.TLSCert), Key: []byte(in.TLSKey),
		MemoryBytes: in.MemoryBytes, CPUs: in.CPUs, StorageBytes: in.StorageBytes,
	})
	if fields, err := serverInvalid(err, apiServerField); err != nil {
		return err
	} else if fields != nil {
		return invalidFields(fields)
	}
	s.audit(c, "server.register", sv.Name, registerDetail(sv))
	return c.JSON(http.StatusCreated, toAPIServer(provisioner.ServerLoad{Server: sv, Environments: []string{}}))
}

// decodeServerInput reads exactly one JSON object with apiServerInput's
// keys, spelled exactly, and nothing after it.
func decodeServerInput(r io.Reader) (apiServerInput, error) {
	dec := json.NewDecoder(r)
	var raw map[string]json.RawMessage
	if err := dec.Decode(&raw); err != nil {
		return apiServerInput{}, err
	}
	if raw == nil {
		return apiServerInput{}, errors.New("want a JSON object")
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return apiServerInput{}, errors.New("unexpected data after the JSON object")
	}
	var in apiServerInput
	dst := map[string]any{"name": &in.Name, "docker_host": &in.DockerHost, "tls_ca": &in.TLSCA, "tls_cert": &in.TLSCert,
		"tls_key": &in.TLSKey, "memory_bytes": &in.MemoryBytes, "cpus": &in.CPUs, "storage_bytes": &in.StorageBytes}
	for k, v := range raw {
		p, ok := dst[k]
		if !ok {
			return apiServerInput{}, fmt.Errorf("unknown field %q (fields: name, docker_host, tls_ca, tls_cert, tls_key, memory_bytes, cpus, storage_bytes)", k)
		}
		if err := json.Unmarshal(v, p); err != nil {
			want := "a string"
			if strings.HasSuffix(k, "_bytes") || k == "cpus" {
				want = "a whole number"
			}
			return apiServerInput{}, fmt.Errorf("field %q: want %s", k, want)
		}
	}
	return in, nil
}
