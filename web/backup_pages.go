package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// showBackupsTab is the Backups tab.
func (s *Server) showBackupsTab(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	return s.renderBackupsTab(c, e, http.StatusOK, nil)
}

// renderBackupsTab writes the whole tab; change (may be nil) adjusts it
// (a form's values and messages) before it is written.
func (s *Server) renderBackupsTab(c echo.Context, e store.Environment, status int, change func(*views.BackupsTab)) error {
	t, err := s.loadBackupsTab(c, e)
	if err != nil {
		return err
	}
	if change != nil {
		change(&t)
	}
	h, err := s.loadHeader(c, e)
	if err != nil {
		return err
	}
	n, err := s.loadPendingNotice(c, e)
	if err != nil {
		return err
	}
	p := s.page(c, e.Name+" · Backups", "environments")
	return s.render(c, status, p, views.EnvironmentBackups(p, h, n, t))
}

// showBackupList is the list, polled while a backup is written.
func (s *Server) showBackupList(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	l, err := s.loadBackupList(c, e)
	if err != nil {
		return err
	}
	return s.renderFragment(c, http.StatusOK, views.BackupListTable(l))
}

// createBackup is Create backup.
func (s *Server) createBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	format := c.Request().PostFormValue("format")
	if msg := validateFormat(format); msg != "" {
		return s.renderBackupsTab(c, e, http.StatusUnprocessableEntity, func(t *views.BackupsTab) {
			t.Create = views.Form{Values: map[string]string{"format": format}, Errors: map[string]string{"format": msg}}
		})
	}
	if _, err := s.startBackup(c, e, format); err != nil {
		return err
	}
	return s.afterBackupAction(c, e, "Backing up "+e.Name+".")
}

// startBackup queues an operator's backup.
func (s *Server) startBackup(c echo.Context, e store.Environment, format string) (store.Job, error) {
	return s.enqueueWith(c, e, provisioner.KindBackup, provisioner.BackupParams{Kind: store.BackupManual, Format: format}, "")
}

// afterBackupAction answers a queued backup job: with htmx the list (which
// polls while the job runs) and the header out of band (its strip follows
// the job; when the job ends the header's poll sends env-changed),
// otherwise back to the tab with a note.
func (s *Server) afterBackupAction(c echo.Context, e store.Environment, note string) error {
	if !isHTMX(c) {
		s.flash(c, "info", note)
		return redirect(c, "/environments/"+e.Name+"/backups")
	}
	l, err := s.loadBackupList(c, e)
	if err != nil {
		return err
	}
	h, err := s.loadHeader(c, e)
	if err != nil {
		return err
	}
	h.OOB = true
	c.Response().Header().Set("HX-Trigger", "env-changed")
	return s.renderFragment(c, http.StatusAccepted, views.BackupActionDone(l, h))
}

// verifyBackup is Verify.
func (s *Server) verifyBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	if _, err := s.startVerify(c, e, b); err != nil {
		return err
	}
	return s.afterBackupAction(c, e, "Checking the backup of "+backupStamp(b)+".")
}

// backupStamp is a backup's time for notes.
func backupStamp(b store.Backup) string { return views.Stamp(b.CreatedAt) }

func (s *Server) startVerify(c echo.Context, e store.Environment, b store.Backup) (store.Job, error) {
	if b.State != store.BackupSucceeded {
		return store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, "Only a finished backup can be checked; this one is "+b.State+".")
	}
	return s.enqueueWith(c, e, provisioner.KindVerifyBackup, provisioner.VerifyParams{BackupID: b.ID}, "backup "+strconv.FormatInt(b.ID, 10))
}

// restoreBackup is Restore, confirmed in its dialog.
func (s *Server) restoreBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	target := c.Request().PostFormValue("target")
	neutral := c.Request().PostFormValue("neutralize") == "on"
	t, j, err := s.startRestore(c, e, b, target, neutral)
	if err != nil {
		return err
	}
	s.flash(c, "info", "Restoring the backup of "+backupStamp(b)+" into "+t.Name+" (job "+jobRef(j)+"): a pre-restore backup is taken first.")
	return redirect(c, "/environments/"+t.Name)
}

// startRestore checks a restore and queues it on its target (the backup's
// own environment when target is empty).
func (s *Server) startRestore(c echo.Context, e store.Environment, b store.Backup, target string, neutral bool) (store.Environment, store.Job, error) {
	ctx := c.Request().Context()
	if b.State != store.BackupSucceeded {
		return store.Environment{}, store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, "Only a finished backup can be restored; this one is "+b.State+".")
	}
	if b.VerifyError != "" {
		return store.Environment{}, store.Job{}, echo.NewHTTPError(http.StatusUnprocessableEntity, "This backup failed its last check ("+b.VerifyError+"); it cannot be restored.")
	}
	t := e
	if target != "" && target != e.Name {
		if msg := validateName(target); msg != "" {
			return t, store.Job{}, invalidFields(map[string]string{"target": "There is no environment named " + quoteName(target) + "."})
		}
		var err error
		t, err = s.store.EnvironmentByName(ctx, target)
		if errors.Is(err, store.ErrNotFound) {
			return t, store.Job{}, invalidFields(map[string]string{"target": "There is no environment named " + quoteName(target) + "."})
		}
		if err != nil {
			return t, store.Job{}, err
		}
	}
	if _, v := backupManifest(b); v != "" && v != t.OdooVersion {
		return t, store.Job{}, invalidFields(map[string]string{"target": "The backup is of Odoo " + v + "; " + t.Name + " runs Odoo " + t.OdooVersion + "."})
	}
	j, err := s.enqueueWith(c, t, provisioner.KindRestore, provisioner.RestoreParams{BackupID: b.ID, Target: t.Name, Neutralize: neutral},
		"backup "+strconv.FormatInt(b.ID, 10)+" of "+e.Name)
	return t, j, err
}

// deleteBackup is Delete, confirmed in its dialog.
func (s *Server) deleteBackup(c echo.Context) error {
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
	s.flash(c, "info", "Deleted the backup of "+backupStamp(b)+".")
	return redirect(c, "/environments/"+e.Name+"/backups")
}

func (s *Server) removeBackup(c echo.Context, b store.Backup) error {
	if s.jobs == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Jobs are not available in this process.")
	}
	err := s.jobs.DeleteBackup(c.Request().Context(), b)
	if errors.Is(err, store.ErrConflict) {
		return echo.NewHTTPError(http.StatusConflict, "This backup is being written; wait for it to finish.")
	}
	if err != nil {
		return err
	}
	s.audit(c, "backup.delete", b.EnvName, b.File)
	return nil
}

// saveSchedule is Save schedule.
func (s *Server) saveSchedule(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	ctx := c.Request().Context()
	base, err := s.store.BackupSchedule(ctx, e.ID)
	if err != nil {
		return err
	}
	form := c.Request().PostForm
	if form == nil {
		if err := c.Request().ParseForm(); err != nil {
			return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read.")
		}
		form = c.Request().PostForm
	}
	sched, errs := validateSchedule(base, func(k string) (string, bool) {
		if k == "enabled" {
			return form.Get(k), true // an unticked box sends nothing
		}
		v, ok := form[k]
		if !ok || len(v) == 0 {
			return "", true
		}
		return v[0], true
	})
	f := views.Form{Values: map[string]string{}, Errors: errs}
	for _, k := range []string{"enabled", "time", "keep_daily", "keep_weekly", "keep_monthly"} {
		f.Values[k] = form.Get(k)
	}
	status := http.StatusUnprocessableEntity
	if len(errs) == 0 {
		saved, err := s.store.SaveBackupSchedule(ctx, sched)
		if err != nil {
			return err
		}
		s.audit(c, "backup.schedule", e.Name, scheduleSummary(saved))
		f = scheduleForm(saved)
		f.Values["saved"] = "yes"
		status = http.StatusOK
	}
	if !isHTMX(c) {
		if status == http.StatusOK {
			s.flash(c, "info", "Saved the backup schedule of "+e.Name+".")
			return redirect(c, "/environments/"+e.Name+"/backups")
		}
		return s.renderBackupsTab(c, e, status, func(t *views.BackupsTab) { t.Schedule = f })
	}
	return s.renderFragment(c, status, views.BackupScheduleCard(views.BackupsTab{Name: e.Name, CSRF: s.csrfToken(c), Schedule: f}))
}

func scheduleSummary(b store.BackupSchedule) string {
	state := "off"
	if b.Enabled {
		state = "daily at " + b.TimeOfDay + " UTC"
	}
	return state + ", keep " + strconv.Itoa(b.KeepDaily) + " daily, " + strconv.Itoa(b.KeepWeekly) + " weekly, " + strconv.Itoa(b.KeepMonthly) + " monthly"
}
