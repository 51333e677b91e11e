package web

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
)

// apiBackup is a backup in the API (DESIGN.md).
type apiBackup struct {
	ID          int64      `json:"id"`
	Environment string     `json:"environment"`
	Kind        string     `json:"kind"`
	State       string     `json:"state"`
	Format      string     `json:"format"`
	SizeBytes   int64      `json:"size_bytes"`
	SHA256      string     `json:"sha256,omitempty"`
	File        string     `json:"file"`
	CreatedAt   time.Time  `json:"created_at"`
	FinishedAt  *time.Time `json:"finished_at"`
	VerifiedAt  *time.Time `json:"verified_at"`
	VerifyError string     `json:"verify_error,omitempty"`
	Error       string     `json:"error,omitempty"`
	// Source is the environment the backup was made of, when it says.
	Source string `json:"source,omitempty"`
}

func toAPIBackup(b store.Backup) apiBackup {
	source, _ := backupManifest(b)
	return apiBackup{ID: b.ID, Environment: b.EnvName, Kind: b.Kind, State: b.State, Format: b.Format,
		SizeBytes: b.SizeBytes, SHA256: b.SHA256, File: b.File, CreatedAt: b.CreatedAt, FinishedAt: b.FinishedAt,
		VerifiedAt: b.VerifiedAt, VerifyError: b.VerifyError, Error: b.Error, Source: source}
}

// apiListBackups answers GET /api/v1/environments/{name}/backups.
func (s *Server) apiListBackups(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	backups, err := s.store.ListBackups(c.Request().Context(), e.Name, 0)
	if err != nil {
		return err
	}
	out := make([]apiBackup, 0, len(backups))
	for _, b := range backups {
		out = append(out, toAPIBackup(b))
	}
	return c.JSON(http.StatusOK, map[string][]apiBackup{"backups": out})
}

// apiShowBackup answers GET /api/v1/environments/{name}/backups/{id}.
func (s *Server) apiShowBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, toAPIBackup(b))
}

// apiCreateBackup answers POST /api/v1/environments/{name}/backups
// ({"format": "zip"|"dump"}, optional) with the job (202).
func (s *Server) apiCreateBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	var body struct {
		Format string `json:"format"`
	}
	if err := decodeOptionalJSON(c, &body); err != nil {
		return err
	}
	if msg := validateFormat(body.Format); msg != "" {
		return invalidFields(map[string]string{"format": `want "zip" or "dump"`})
	}
	j, err := s.startBackup(c, e, body.Format)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}

// apiDeleteBackup answers DELETE /api/v1/environments/{name}/backups/{id} (204).
func (s *Server) apiDeleteBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	if err := s.removeBackup(c, b); err != nil {
		return err
	}
	return c.NoContent(http.StatusNoContent)
}

// apiVerifyBackup answers POST …/backups/{id}/verify with the job (202).
func (s *Server) apiVerifyBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	j, err := s.startVerify(c, e, b)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}

// apiRestoreBackup answers POST …/backups/{id}/restore ({"target",
// "neutralize"}, both optional: the same environment, not neutralized)
// with the job (202).
func (s *Server) apiRestoreBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	var body struct {
		Target     string `json:"target"`
		Neutralize bool   `json:"neutralize"`
	}
	if err := decodeOptionalJSON(c, &body); err != nil {
		return err
	}
	_, j, err := s.startRestore(c, e, b, body.Target, body.Neutralize)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusAccepted, toAPIJob(j, nil))
}

// apiDownloadBackup answers GET …/backups/{id}/download with the archive.
func (s *Server) apiDownloadBackup(c echo.Context) error {
	return s.downloadBackup(c)
}

// apiShowSchedule answers GET /api/v1/environments/{name}/backups/schedule.
func (s *Server) apiShowSchedule(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.store.BackupSchedule(c.Request().Context(), e.ID)
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, b)
}

// apiUpdateSchedule answers PUT …/backups/schedule: any of enabled, time,
// keep_daily, keep_weekly, keep_monthly; answers like GET.
func (s *Server) apiUpdateSchedule(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	if mt := c.Request().Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json")
	}
	top, err := decodeObject(http.MaxBytesReader(c.Response(), c.Request().Body, 16<<10))
	if err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	values := map[string]string{}
	fields := map[string]string{}
	for k, raw := range top {
		switch k {
		case "enabled":
			var v bool
			if json.Unmarshal(raw, &v) != nil {
				fields[k] = "want true or false"
				continue
			}
			values[k] = fmt.Sprint(v)
		case "time":
			var v string
			if json.Unmarshal(raw, &v) != nil {
				fields[k] = `want a string "HH:MM"`
				continue
			}
			values[k] = v
		case "keep_daily", "keep_weekly", "keep_monthly":
			var v int
			if json.Unmarshal(raw, &v) != nil {
				fields[k] = "want a whole number"
				continue
			}
			values[k] = fmt.Sprint(v)
		default:
			return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: unknown key "+quoteName(k))
		}
	}
	ctx := c.Request().Context()
	base, err := s.store.BackupSchedule(ctx, e.ID)
	if err != nil {
		return err
	}
	sched, errs := validateSchedule(base, func(k string) (string, bool) { v, ok := values[k]; return v, ok })
	for k, v := range errs {
		if _, ok := fields[k]; !ok {
			fields[k] = v
		}
	}
	if len(fields) > 0 {
		return invalidFields(fields)
	}
	saved, err := s.store.SaveBackupSchedule(ctx, sched)
	if err != nil {
		return err
	}
	s.audit(c, "backup.schedule", e.Name, scheduleSummary(saved))
	return c.JSON(http.StatusOK, saved)
}

// decodeOptionalJSON reads a small JSON object into v; an empty body is
// fine, unknown keys are not (400).
func decodeOptionalJSON(c echo.Context, v any) error {
	r := c.Request()
	if r.ContentLength == 0 || r.Body == nil || r.Body == http.NoBody {
		return nil
	}
	if mt := r.Header.Get("Content-Type"); !strings.HasPrefix(mt, "application/json") {
		return echo.NewHTTPError(http.StatusUnsupportedMediaType, "send a JSON body with Content-Type: application/json, or none")
	}
	dec := json.NewDecoder(http.MaxBytesReader(c.Response(), r.Body, 16<<10))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: "+err.Error())
	}
	if dec.More() {
		return echo.NewHTTPError(http.StatusBadRequest, "invalid JSON body: one object only")
	}
	return nil
}
