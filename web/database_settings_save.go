package web

import (
	"errors"
	"maps"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/views"
)

// saveDatabaseSettings saves Settings → Database's form: Save Settings
// saves every field, a row's Reset that one reset. Nothing reaches the
// running database; the pending notice lists what waits for a redeploy
// (swapped in at once for htmx). A refused save answers 422 with the card
// again, a message under each bad field and what was typed kept; a plan
// gate answers 403 with the reason.
func (s *Server) saveDatabaseSettings(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	in, err := readSettingsForm(c)
	if err != nil {
		return err
	}
	saved, err := s.updateSettings(c, e, in.update, in.unreadable)
	var fe fieldsError
	if errors.As(err, &fe) {
		typed := in.typed
		typed.Errors = fe.fields
		if isHTMX(c) {
			st, err := s.loadState(c.Request().Context(), e, needHealth)
			if err != nil {
				return err
			}
			current, err := s.store.DatabaseSettings(c.Request().Context(), e.ID)
			if err != nil {
				return err
			}
			o, err := s.optimizationView(c, e, current, st.health, &typed)
			if err != nil {
				return err
			}
			return s.renderFragment(c, http.StatusUnprocessableEntity, views.OptimizationCard(o))
		}
		d, err := s.loadDatabaseSettingsPage(c, e, &typed)
		if err != nil {
			return err
		}
		p := s.page(c, e.Name+" · Database", "environments")
		return s.render(c, http.StatusUnprocessableEntity, p, views.EnvironmentDatabaseSettings(p, d.head, d.notice, d.settings))
	}
	if err != nil {
		return err
	}

	msg := savedMessage(e, saved)
	if !isHTMX(c) {
		s.flash(c, "success", msg)
		return redirect(c, "/environments/"+e.Name+"/settings/database")
	}
	ctx := c.Request().Context()
	st, err := s.loadState(ctx, e, needAll)
	if err != nil {
		return err
	}
	o, err := s.optimizationView(c, e, saved, st.health, nil)
	if err != nil {
		return err
	}
	o.Saved = msg
	n := s.pendingNoticeView(c, e, saved, st.job != nil && st.job.Active())
	n.OOB = true
	// The Read Replica widget says what comes next from the saved setting.
	c.Response().Header().Set("HX-Trigger", "settings-saved")
	return s.renderFragment(c, http.StatusOK, views.SettingsSaved(o, n))
}

// savedMessage says what a save did and what comes next.
func savedMessage(e store.Environment, saved store.DatabaseSettings) string {
	if !e.Deployed() {
		return "Saved. The first deploy applies these settings."
	}
	if p, err := provisioner.PendingChanges(e, saved); err == nil && len(p) > 0 {
		return "Saved. Redeploy to apply."
	}
	return "Saved. The running database already has these settings."
}

// updateSettings saves u into e's settings in one locked read-modify-write
// (parallel saves of one environment happen one after the other, none
// lost), checked by provisioner.ApplySettingsUpdate against the plan and
// the server's read-back rows. unreadable are messages for fields the
// caller could not read: the save is refused with them and the update's
// own. A refusal saves nothing: a plan gate is a 403 with its reason, bad
// fields a fieldsError (422). A save that changed something is audited.
func (s *Server) updateSettings(c echo.Context, e store.Environment, u provisioner.SettingsUpdate, unreadable map[string]string) (store.DatabaseSettings, error) {
	ctx := c.Request().Context()
	st, err := s.loadState(ctx, e, needHealth)
	if err != nil {
		return store.DatabaseSettings{}, err
	}
	server := serverSettings(st.health)
	var before store.DatabaseSettings
	saved, err := s.store.UpdateDatabaseSettings(ctx, e.ID, func(d *store.DatabaseSettings) error {
		before = *d
		before.Parameters = maps.Clone(d.Parameters)
		next, err := provisioner.ApplySettingsUpdate(e, *d, u, server)
		var invalid *provisioner.SettingsInvalidError
		switch {
		case errors.As(err, &invalid):
			fields := maps.Clone(invalid.Fields)
			maps.Copy(fields, unreadable)
			return invalidFields(fields)
		case err != nil:
			return err
		case len(unreadable) > 0:
			return invalidFields(maps.Clone(unreadable))
		}
		*d = next
		return nil
	})
	var gate *provisioner.PlanGateError
	if errors.As(err, &gate) {
		return store.DatabaseSettings{}, echo.NewHTTPError(http.StatusForbidden, gate.Reason)
	}
	if errors.Is(err, store.ErrNotFound) {
		return store.DatabaseSettings{}, echo.NewHTTPError(http.StatusNotFound, "There is no environment named "+quoteName(e.Name)+".")
	}
	if err != nil {
		return store.DatabaseSettings{}, err
	}
	if d := describeSettingsChange(before, saved); d != "" {
		s.audit(c, "environment.settings", e.Name, d)
	}
	return saved, nil
}

// describeSettingsChange is the audit log's account of a save: each
// changed field, in order ("work_mem=8MB, shared_buffers reset,
// pgbouncer.enabled=on"); "" when nothing changed.
func describeSettingsChange(before, after store.DatabaseSettings) string {
	var parts []string
	seen := map[string]bool{}
	for k := range before.Parameters {
		seen[k] = true
	}
	for k := range after.Parameters {
		seen[k] = true
	}
	names := slices.Sorted(maps.Keys(seen))
	for _, n := range names {
		b, hadB := before.Parameters[n]
		a, hasA := after.Parameters[n]
		switch {
		case hasA && (!hadB || a != b):
			parts = append(parts, n+"="+a)
		case hadB && !hasA:
			parts = append(parts, n+" reset")
		}
	}
	pb, pa := before.PgBouncer, after.PgBouncer
	if pb.Enabled != pa.Enabled {
		parts = append(parts, "pgbouncer.enabled="+onOff(pa.Enabled))
	}
	if pb.PoolSize != pa.PoolSize {
		parts = append(parts, "pgbouncer.pool_size="+strconv.Itoa(pa.PoolSize))
	}
	if pb.PoolMode != pa.PoolMode {
		parts = append(parts, "pgbouncer.pool_mode="+pa.PoolMode)
	}
	if pb.MaxClientConn != pa.MaxClientConn {
		parts = append(parts, "pgbouncer.max_client_conn="+strconv.Itoa(pa.MaxClientConn))
	}
	if before.ReadReplica != after.ReadReplica {
		parts = append(parts, "read_replica="+onOff(after.ReadReplica))
	}
	return strings.Join(parts, ", ")
}

func onOff(b bool) string {
	if b {
		return "on"
	}
	return "off"
}
