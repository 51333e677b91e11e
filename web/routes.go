package web

import (
	"io/fs"
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"pgdeck/static"
)

func (s *Server) routes() {
	e := s.echo
	e.Use(middleware.Recover())
	e.Use(s.requestLog)
	e.Use(s.securityHeaders)
	e.Use(s.checkHost)
	e.Use(s.limitBody)

	// Health and static assets: no session. Static folders are not listed.
	e.GET("/healthz", s.showHealthz)
	if s.metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.metrics), s.apiAuth)
	}
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(noListing{http.FS(static.FS)}))))

	// JSON API: bearer tokens, no cookies, so no CSRF.
	api := e.Group("/api/v1", s.apiAuth)
	api.GET("/environments", s.apiListEnvironments)
	api.POST("/environments", s.apiCreateEnvironment, apiRequireChanger)
	api.GET("/environments/:name", s.apiShowEnvironment)
	api.DELETE("/environments/:name", s.apiDeleteEnvironment, apiRequireChanger)
	api.POST("/environments/:name/actions/:action", s.apiRunAction, apiRequireChanger)
	// Whoever may redeploy may save the settings a redeploy applies.
	api.GET("/environments/:name/database/settings", s.apiShowDatabaseSettings)
	api.PUT("/environments/:name/database/settings", s.apiUpdateDatabaseSettings, apiRequireChanger)
	// The read replica: its state, and deploy, rebuild, remove (202 with the job).
	api.GET("/environments/:name/replica", s.apiShowReplica)
	api.POST("/environments/:name/replica", s.apiDeployReplica, apiRequireChanger)
	api.POST("/environments/:name/replica/rebuild", s.apiRebuildReplica, apiRequireChanger)
	api.DELETE("/environments/:name/replica", s.apiRemoveReplica, apiRequireChanger)
	// Backups: list, create (202 with the job), import, and each one's
	// download, check, restore and removal; the daily schedule.
	api.GET("/environments/:name/backups", s.apiListBackups)
	api.POST("/environments/:name/backups", s.apiCreateBackup, apiRequireChanger)
	api.POST("/environments/:name/backups/import", s.apiImportBackup, apiRequireChanger)
	api.GET("/environments/:name/backups/schedule", s.apiShowSchedule)
	api.PUT("/environments/:name/backups/schedule", s.apiUpdateSchedule, apiRequireChanger)
	api.GET("/environments/:name/backups/:id", s.apiShowBackup)
	api.DELETE("/environments/:name/backups/:id", s.apiDeleteBackup, apiRequireChanger)
	api.GET("/environments/:name/backups/:id/download", s.apiDownloadBackup, apiRequireChanger)
	api.POST("/environments/:name/backups/:id/verify", s.apiVerifyBackup, apiRequireChanger)
	api.POST("/environments/:name/backups/:id/restore", s.apiRestoreBackup, apiRequireChanger)
	api.GET("/jobs/:id", s.apiShowJob)
	// Servers: every token sees them; owners and admins register and remove.
	api.GET("/servers", s.apiListServers)
	api.POST("/servers", s.apiRegisterServer, apiRequireChanger)
	api.GET("/servers/:name", s.apiShowServer)
	api.DELETE("/servers/:name", s.apiRemoveServer, apiRequireChanger)

	// Browser pages: session, CSRF, signed-in user.
	web := e.Group("", echo.WrapMiddleware(s.sessions.LoadAndSave), s.csrf, s.loadUser)

	// Setup and login.
	web.GET("/setup", s.showSetup)
	web.POST("/setup", s.createOwner)
	web.GET("/login", s.showLogin)
	web.POST("/login", s.createSession)
	web.POST("/logout", s.deleteSession)

	// Everything else needs a signed-in user.
	app := web.Group("", s.requireUser)
	app.GET("/", func(c echo.Context) error { return c.Redirect(http.StatusSeeOther, "/environments") })

	// Environments.
	app.GET("/environments", s.listEnvironments)
	app.GET("/environments/new", s.newEnvironment, requireChanger)
	app.POST("/environments", s.createEnvironment, requireChanger)
	app.GET("/environments/:name", s.showEnvironment)
	app.GET("/environments/:name/health", s.showEnvironmentHealth)
	app.GET("/environments/:name/settings/database", s.showDatabaseTab)
	app.POST("/environments/:name/settings/database", s.saveDatabaseSettings, requireChanger)
	app.GET("/environments/:name/settings/database/applied", s.showAppliedValues)
	app.GET("/environments/:name/settings/database/pooling", s.showPoolingCard)
	app.GET("/environments/:name/settings/database/replica", s.showReplicaWidget)
	app.POST("/environments/:name/replica", s.deployReplica, requireChanger)
	app.POST("/environments/:name/replica/rebuild", s.rebuildReplica, requireChanger)
	app.POST("/environments/:name/replica/remove", s.removeReplica, requireChanger)
	app.GET("/environments/:name/backups", s.showBackupsTab)
	app.GET("/environments/:name/backups/list", s.showBackupList)
	app.POST("/environments/:name/backups", s.createBackup, requireChanger)
	app.POST("/environments/:name/backups/import", s.importUpload, requireChanger)
	app.POST("/environments/:name/backups/import-file", s.importServerFile, requireChanger)
	app.POST("/environments/:name/backups/schedule", s.saveSchedule, requireChanger)
	app.GET("/environments/:name/backups/:id/download", s.downloadBackup, requireChanger)
	app.POST("/environments/:name/backups/:id/verify", s.verifyBackup, requireChanger)
	app.POST("/environments/:name/backups/:id/restore", s.restoreBackup, requireChanger)
	app.POST("/environments/:name/backups/:id/delete", s.deleteBackup, requireChanger)
	app.GET("/environments/:name/pending", s.showPendingNotice)
	app.GET("/environments/:name/live", s.showEnvironmentLive)
	app.GET("/environments/:name/database-card", s.showDatabaseCard)
	app.GET("/environments/:name/overview-body", s.showOverviewBody)
	app.POST("/environments/:name/actions/:action", s.runAction, requireChanger)
	app.POST("/environments/:name/delete", s.deleteEnvironment, requireChanger)
	app.POST("/environments/:name/reveal", s.revealPassword, requireAdmin)

	// Jobs.
	app.GET("/jobs", s.listJobs)
	app.GET("/jobs/:id", s.showJob)

	// Servers: everyone signed in sees them (the table refreshes itself);
	// owners and admins register and remove them.
	app.GET("/servers", s.showServers)
	app.GET("/servers/live", s.showServersLive)
	app.POST("/servers", s.registerServer, requireChanger)
	app.POST("/servers/:name/delete", s.removeServer, requireChanger)

	// Account and API tokens.
	app.GET("/account", s.showAccount)
	app.POST("/account/tokens", s.createToken, requireChanger)
	app.POST("/account/tokens/:id/revoke", s.revokeToken)

	// People: owners disable accounts, reset passwords and end sessions.
	app.GET("/users", s.listUsers, requireOwner)
	app.POST("/users/:id/disable", s.disableUser, requireOwner)
	app.POST("/users/:id/enable", s.enableUser, requireOwner)
	app.POST("/users/:id/sessions/end", s.endUserSessions, requireOwner)
	app.POST("/users/:id/password", s.resetUserPassword, requireOwner)

	// Audit log: owners and admins.
	app.GET("/audit", s.listAudit, requireAdmin)
}

// noListing serves files but answers 404 for folders, so that /static/
// lists nothing.
type noListing struct{ fs http.FileSystem }

func (n noListing) Open(name string) (http.File, error) {
	f, err := n.fs.Open(name)
	if err != nil {
		return nil, err
	}
	if st, err := f.Stat(); err != nil || st.IsDir() {
		f.Close()
		return nil, fs.ErrNotExist
	}
	return f, nil
}
