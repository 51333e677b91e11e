package web

import (
	"context"
	"encoding/json"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// The Backups tab and the backups' API read the same things: the list, the
// newest good backup's age and the schedule.

// backup returns the backup named by the URL's id, which must belong to the
// environment (404 otherwise: ids of other environments are not revealed).
func (s *Server) backup(c echo.Context, e store.Environment) (store.Backup, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return store.Backup{}, echo.NewHTTPError(404, "There is no backup "+quoteName(c.Param("id"))+" of "+e.Name+".")
	}
	b, err := s.store.BackupByID(c.Request().Context(), id)
	if err != nil || b.EnvName != e.Name {
		return store.Backup{}, echo.NewHTTPError(404, "There is no backup "+strconv.FormatInt(id, 10)+" of "+e.Name+".")
	}
	return b, nil
}

// backupManifest reads what the pages need of a backup's manifest: the
// environment it was made of and its Odoo version ("" when it does not
// say).
func backupManifest(b store.Backup) (source, odooMajor string) {
	var m struct {
		MajorVersion string `json:"major_version"`
		Pgdeck       *struct {
			Environment string `json:"environment"`
		} `json:"pgdeck"`
	}
	if len(b.Manifest) == 0 || json.Unmarshal(b.Manifest, &m) != nil {
		return "", ""
	}
	if m.Pgdeck != nil {
		source = m.Pgdeck.Environment
	}
	return source, m.MajorVersion
}

func backupRowView(b store.Backup) views.BackupRow {
	source, _ := backupManifest(b)
	return views.BackupRow{ID: b.ID, Kind: b.Kind, Format: b.Format, State: b.State, Error: b.Error,
		SizeBytes: b.SizeBytes, CreatedAt: b.CreatedAt, VerifiedAt: b.VerifiedAt, VerifyError: b.VerifyError,
		File: b.File, Source: source}
}

// backupAge says how old the newest good backup of the list is.
func (s *Server) backupAge(backups []store.Backup) views.BackupAge {
	var newest *time.Time
	for _, b := range backups {
		if b.Good() && (newest == nil || b.CreatedAt.After(*newest)) {
			t := b.CreatedAt
			newest = &t
		}
	}
	return s.ageOf(newest)
}

// ageOf places the newest good backup's time (nil: none) against the
// warning age: the one rule for the tab, the Overview and the list.
func (s *Server) ageOf(newest *time.Time) views.BackupAge {
	return views.BackupAge{Newest: newest, WarnAfter: humanDuration(s.backupWarnAge),
		Warn: newest == nil || time.Since(*newest) > s.backupWarnAge}
}

// humanDuration writes a warning age in words: "1 day", "36 hours".
func humanDuration(d time.Duration) string {
	switch {
	case d%(24*time.Hour) == 0:
		if n := int(d / (24 * time.Hour)); n != 1 {
			return strconv.Itoa(n) + " days"
		}
		return "1 day"
	case d%time.Hour == 0:
		return strconv.Itoa(int(d/time.Hour)) + " hours"
	}
	return d.String()
}

// loadBackupList reads the list part of the tab.
func (s *Server) loadBackupList(c echo.Context, e store.Environment) (views.BackupList, error) {
	ctx := c.Request().Context()
	backups, err := s.store.ListBackups(ctx, e.Name, 200)
	if err != nil {
		return views.BackupList{}, err
	}
	u, _ := currentUser(c)
	st, err := s.loadState(ctx, e, needJob)
	if err != nil {
		return views.BackupList{}, err
	}
	l := views.BackupList{Name: e.Name, CSRF: s.csrfToken(c), CanChange: u.CanChange(), CanDownload: u.CanChange(),
		Age: s.backupAge(backups), JobActive: st.job != nil && st.job.Active()}
	for _, b := range backups {
		l.Backups = append(l.Backups, backupRowView(b))
	}
	l.Targets, err = s.restoreTargets(ctx, e)
	return l, err
}

// restoreTargets are the environments a backup of e may be restored into:
// e first, then the others with the same Odoo version.
func (s *Server) restoreTargets(ctx context.Context, e store.Environment) ([]string, error) {
	envs, err := s.store.ListEnvironments(ctx)
	if err != nil {
		return nil, err
	}
	out := []string{e.Name}
	for _, o := range envs {
		if o.Name != e.Name && o.OdooVersion == e.OdooVersion {
			out = append(out, o.Name)
		}
	}
	return out, nil
}

// scheduleForm is a saved schedule as the form shows it.
func scheduleForm(b store.BackupSchedule) views.Form {
	f := views.Form{Values: map[string]string{
		"time":         b.TimeOfDay,
		"keep_daily":   strconv.Itoa(b.KeepDaily),
		"keep_weekly":  strconv.Itoa(b.KeepWeekly),
		"keep_monthly": strconv.Itoa(b.KeepMonthly),
	}, Errors: map[string]string{}}
	if b.Enabled {
		f.Values["enabled"] = "on"
	}
	return f
}

// loadBackupsTab reads the whole tab.
func (s *Server) loadBackupsTab(c echo.Context, e store.Environment) (views.BackupsTab, error) {
	l, err := s.loadBackupList(c, e)
	if err != nil {
		return views.BackupsTab{}, err
	}
	sched, err := s.store.BackupSchedule(c.Request().Context(), e.ID)
	if err != nil {
		return views.BackupsTab{}, err
	}
	t := views.BackupsTab{Name: e.Name, CSRF: l.CSRF, CanChange: l.CanChange, CanDownload: l.CanDownload,
		Deployed: e.Deployed(), List: l, Targets: l.Targets, Schedule: scheduleForm(sched),
		UploadLimit: s.uploadLimit}
	if s.jobs != nil {
		t.Folder = filepath.Join(s.jobs.BackupDir(), e.Name)
		t.ImportFolder = filepath.Join(s.jobs.BackupDir(), provisioner.ImportDir)
		if t.ImportFiles, err = s.jobs.ImportFiles(); err != nil {
			return t, err
		}
	}
	return t, nil
}

// validateFormat checks a backup format.
func validateFormat(f string) string {
	switch f {
	case "", "zip", "dump":
		return ""
	}
	return "Choose Odoo zip or custom dump."
}

// validateSchedule changes base with the values get gives: enabled ("on"
// or "true"), time (HH:MM, UTC), keep_daily/weekly/monthly (whole
// numbers); a value get has not is left as it is.
func validateSchedule(base store.BackupSchedule, get func(string) (string, bool)) (store.BackupSchedule, map[string]string) {
	b := base
	errs := map[string]string{}
	if v, ok := get("enabled"); ok {
		b.Enabled = v == "on" || v == "true"
	}
	if v, ok := get("time"); ok {
		v = strings.TrimSpace(v)
		if t, err := time.Parse("15:04", v); err != nil || len(v) != 5 {
			errs["time"] = "Give a time of day as HH:MM, 24-hour, UTC (e.g. 02:30)."
		} else {
			b.TimeOfDay = t.Format("15:04")
		}
	}
	for _, k := range []struct {
		name string
		max  int
		dst  *int
	}{{"keep_daily", 366, &b.KeepDaily}, {"keep_weekly", 520, &b.KeepWeekly}, {"keep_monthly", 1200, &b.KeepMonthly}} {
		v, ok := get(k.name)
		if !ok {
			continue
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || n < 0 || n > k.max {
			errs[k.name] = "A whole number from 0 to " + strconv.Itoa(k.max) + "."
			continue
		}
		*k.dst = n
	}
	if len(errs) == 0 && b.Enabled && b.KeepDaily+b.KeepWeekly+b.KeepMonthly == 0 {
		errs["keep_daily"] = "Keep at least one backup, or the schedule deletes each one it takes."
	}
	return b, errs
}
