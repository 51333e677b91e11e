package web

import (
	"cmp"
	"context"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

// The environment page's parts. Each has a loader that reads what its part
// shows and nothing else (a polled part costs the environment's row plus one
// or two queries) and a builder from an already loaded state, so that a full
// page reads each thing once.

// recentJobWindow is how long a finished job stays in the strip.
const recentJobWindow = 2 * time.Minute

// loadHeader builds the header polled while a job runs: health and job.
func (s *Server) loadHeader(c echo.Context, e store.Environment) (views.EnvironmentHead, error) {
	st, err := s.loadState(c.Request().Context(), e, needAll)
	if err != nil {
		return views.EnvironmentHead{}, err
	}
	return s.headerView(c, e, st), nil
}

// headerView builds the header from a loaded state.
func (s *Server) headerView(c echo.Context, e store.Environment, st envState) views.EnvironmentHead {
	u, _ := currentUser(c)
	h := views.EnvironmentHead{Env: environmentView(e, st), CanChange: u.CanChange(), CSRF: s.csrfToken(c)}
	if j := st.job; j != nil && (j.Active() || (j.FinishedAt != nil && time.Since(*j.FinishedAt) < recentJobWindow)) {
		jv := jobView(*j, nil)
		h.Job = &jv
	}
	return h
}

// loadDatabaseCard builds the Database card refreshed after every health
// check: the health only.
func (s *Server) loadDatabaseCard(ctx context.Context, e store.Environment) (views.DatabaseCard, error) {
	st, err := s.loadState(ctx, e, badgeNeeds(e))
	if err != nil {
		return views.DatabaseCard{}, err
	}
	card := s.databaseCardView(e, st)
	card.Pooler, err = s.loadPoolerBadge(ctx, e)
	return card, err
}

// loadPoolerBadge reads the environment's PgBouncer health for the Database
// card: nil when it has no PgBouncer (one query only when it has one).
func (s *Server) loadPoolerBadge(ctx context.Context, e store.Environment) (*views.PoolerBadge, error) {
	if e.PoolerPort == nil || !e.Deployed() {
		return nil, nil
	}
	b := &views.PoolerBadge{Health: views.Health{Status: "checking", Reason: "waiting for the first health check"}, Host: "127.0.0.1", Port: *e.PoolerPort}
	if s.jobs != nil {
		b.Host, b.Port = s.jobs.PoolerAddress(e.Name)
		// While its server does not answer, the runtime cannot say: the
		// port pgdeck recorded is the one it publishes.
		b.Port = cmp.Or(b.Port, *e.PoolerPort)
	}
	h, err := s.poolerHealth(ctx, e)
	if err != nil || h == nil {
		return b, err
	}
	b.Health = views.Health{Status: h.Status, Reason: h.Reason, CheckedAt: h.CheckedAt, Stale: h.Stale}
	return b, nil
}

// databaseCardView builds the Database card from a loaded state.
func (s *Server) databaseCardView(e store.Environment, st envState) views.DatabaseCard {
	d := views.DatabaseDetails{Deployed: e.Deployed(), DBName: e.DBName, DBUser: e.DBUser}
	if s.jobs != nil {
		d.OdooConfPath = s.jobs.OdooConfPath(e.Name)
		d.Host, d.Port = s.jobs.DatabaseAddress(e.Name)
		if d.Port == 0 && e.Port != nil && e.Deployed() {
			d.Port = *e.Port
		}
	}
	if h := st.health; h != nil {
		d.CheckedAt = h.CheckedAt
		d.Stale = h.Stale
		d.FiguresAt = h.FiguresAt
		d.HasFigures = h.FiguresAt != nil
		d.PGVersion = h.PGVersion
		d.SizeBytes = h.DBSizeBytes
		d.Connections = h.Connections
		d.MaxConnections = h.MaxConnections
		d.StartedAt = h.ServerStartedAt
	}
	return views.DatabaseCard{Name: e.Name, Health: healthOf(e, st), Details: d}
}

// loadOverview builds the Overview's cards, fetched again when a job starts
// or ends: health and job (the delete button waits for the job).
func (s *Server) loadOverview(c echo.Context, e store.Environment) (views.Overview, error) {
	st, err := s.loadState(c.Request().Context(), e, needAll)
	if err != nil {
		return views.Overview{}, err
	}
	o := s.overviewView(c, e, st)
	if o.Database.Pooler, err = s.loadPoolerBadge(c.Request().Context(), e); err != nil {
		return o, err
	}
	o.Backups, err = s.loadBackupAge(c.Request().Context(), e)
	return o, err
}

// loadBackupAge reads how old the environment's newest good backup is.
func (s *Server) loadBackupAge(ctx context.Context, e store.Environment) (views.BackupAge, error) {
	newest, err := s.store.NewestGoodBackup(ctx, e.Name)
	if err != nil {
		return views.BackupAge{}, err
	}
	return s.ageOf(newest), nil
}

// overviewView builds the Overview's cards from a loaded state.
func (s *Server) overviewView(c echo.Context, e store.Environment, st envState) views.Overview {
	u, _ := currentUser(c)
	return views.Overview{
		Name:         e.Name,
		Database:     s.databaseCardView(e, st),
		CanChange:    u.CanChange(),
		CanReveal:    u.CanChange(),
		Busy:         st.job != nil && st.job.Active(),
		CSRF:         s.csrfToken(c),
		Deployed:     e.Deployed(),
		BackupFolder: s.backupFolder(e.Name),
	}
}

// backupFolder is where an environment's backups are kept.
func (s *Server) backupFolder(env string) string {
	if s.jobs == nil {
		return ""
	}
	return filepath.Join(s.jobs.BackupDir(), env)
}

// loadOverviewPage builds the Overview tab: header, pending notice and
// cards from one read of the state.
func (s *Server) loadOverviewPage(c echo.Context, e store.Environment) (views.EnvironmentHead, views.PendingNotice, views.Overview, error) {
	ctx := c.Request().Context()
	st, err := s.loadState(ctx, e, needAll)
	if err != nil {
		return views.EnvironmentHead{}, views.PendingNotice{}, views.Overview{}, err
	}
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return views.EnvironmentHead{}, views.PendingNotice{}, views.Overview{}, err
	}
	h := s.headerView(c, e, st)
	o := s.overviewView(c, e, st)
	if o.Database.Pooler, err = s.loadPoolerBadge(ctx, e); err != nil {
		return views.EnvironmentHead{}, views.PendingNotice{}, views.Overview{}, err
	}
	if o.Backups, err = s.loadBackupAge(ctx, e); err != nil {
		return views.EnvironmentHead{}, views.PendingNotice{}, views.Overview{}, err
	}
	return h, s.pendingNoticeView(c, e, saved, h.Busy()), o, nil
}

// databaseSettingsPage is Settings → Database as a whole page.
type databaseSettingsPage struct {
	head     views.EnvironmentHead
	notice   views.PendingNotice
	settings views.DatabaseSettings
}

// loadDatabaseSettingsPage builds Settings → Database: the header, the
// pending notice and the three cards. typed, when not nil, is a refused
// form shown again as it was typed.
func (s *Server) loadDatabaseSettingsPage(c echo.Context, e store.Environment, typed *views.Form) (databaseSettingsPage, error) {
	ctx := c.Request().Context()
	st, err := s.loadState(ctx, e, needAll)
	if err != nil {
		return databaseSettingsPage{}, err
	}
	saved, err := s.store.DatabaseSettings(ctx, e.ID)
	if err != nil {
		return databaseSettingsPage{}, err
	}
	opt, err := s.optimizationView(c, e, saved, st.health, typed)
	if err != nil {
		return databaseSettingsPage{}, err
	}
	ps, err := s.loadPooler(ctx, e, saved)
	if err != nil {
		return databaseSettingsPage{}, err
	}
	rep, err := s.replicaCard(c, e, saved)
	if err != nil {
		return databaseSettingsPage{}, err
	}
	h := s.headerView(c, e, st)
	return databaseSettingsPage{
		head:   h,
		notice: s.pendingNoticeView(c, e, saved, h.Busy()),
		settings: views.DatabaseSettings{Name: e.Name, Optimization: opt,
			Pooling: poolingView(e, saved, ps), Replica: rep},
	}, nil
}
