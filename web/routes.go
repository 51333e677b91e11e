package web

import (
	"net/http"

	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"

	"pgdeck/static"
)

func (s *Server) routes() {
	e := s.echo
	e.Use(middleware.Recover())
	e.Use(s.requestLog)
	e.Use(middleware.SecureWithConfig(middleware.SecureConfig{
		XSSProtection:      "0",
		ContentTypeNosniff: "nosniff",
		XFrameOptions:      "DENY",
		ReferrerPolicy:     "same-origin",
	}))

	// Health and static assets: no session.
	e.GET("/healthz", s.showHealthz)
	if s.metrics != nil {
		e.GET("/metrics", echo.WrapHandler(s.metrics))
	}
	e.GET("/static/*", echo.WrapHandler(http.StripPrefix("/static/", http.FileServer(http.FS(static.FS)))))

	// JSON API: bearer tokens, no cookies, so no CSRF.
	api := e.Group("/api/v1", s.apiAuth)
	api.GET("/environments", s.apiListEnvironments)
	api.POST("/environments", s.apiCreateEnvironment, s.apiRequireChanger)
	api.GET("/environments/:name", s.apiShowEnvironment)
	api.DELETE("/environments/:name", s.apiDeleteEnvironment, s.apiRequireChanger)
	api.POST("/environments/:name/actions/:action", s.apiRunAction, s.apiRequireChanger)
	api.GET("/jobs/:id", s.apiShowJob)

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
	app.GET("/environments/new", s.newEnvironment, s.requireChanger)
	app.POST("/environments", s.createEnvironment, s.requireChanger)
	app.GET("/environments/:name", s.showEnvironment)
	app.GET("/environments/:name/health", s.showEnvironmentHealth)
	app.GET("/environments/:name/settings/database", s.showDatabaseTab)
	app.GET("/environments/:name/live", s.showEnvironmentLive)
	app.GET("/environments/:name/database-card", s.showDatabaseCard)
	app.GET("/environments/:name/overview-body", s.showOverviewBody)
	app.POST("/environments/:name/actions/:action", s.runAction, s.requireChanger)
	app.POST("/environments/:name/delete", s.deleteEnvironment, s.requireChanger)
	app.POST("/environments/:name/reveal", s.revealPassword, s.requireAdmin)

	// Jobs.
	app.GET("/jobs", s.listJobs)
	app.GET("/jobs/:id", s.showJob)

	// Account and API tokens.
	app.GET("/account", s.showAccount)
	app.POST("/account/tokens", s.createToken, s.requireChanger)
	app.POST("/account/tokens/:id/revoke", s.revokeToken, s.requireChanger)

	// Audit log: owners and admins.
	app.GET("/audit", s.listAudit, s.requireAdmin)
}
