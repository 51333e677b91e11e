// Package web is pgdeck's echo server: routes, middleware, one file per page
// or action, and the render helper.
package web

import (
	"cmp"
	"context"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"runtime"
	"strings"
	"time"

	"github.com/alexedwards/scs/v2"
	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// Deps are what the web layer needs from the rest of pgdeck.
type Deps struct {
	Store *store.Store
	Log   *slog.Logger
	// Secure marks session cookies Secure and turns on HSTS (pgdeck serves TLS).
	Secure bool
	// PublicURL is where people open pgdeck; https there also makes cookies
	// Secure and turns on HSTS (TLS ends at a proxy). Its host is accepted
	// in Host and Origin.
	PublicURL *url.URL
	// ListenAddr is the address pgdeck listens on; its host name, if it is
	// one, is accepted in Host.
	ListenAddr string
	// TrustedProxies are the networks whose X-Forwarded-For is believed.
	TrustedProxies []netip.Prefix
	// Key signs the anonymous CSRF and device cookies and derives the setup
	// code; nil uses a random key (cookies then last one process).
	Key []byte
	// HashSlots is how many password hashes may run at once; 0 means one
	// per CPU.
	HashSlots int
	// AccountLoginCeiling is how many attempts per window an account takes
	// from browsers and addresses that never signed in to it; 0 means 100.
	AccountLoginCeiling int
	// Version is shown by /healthz.
	Version string
	// Jobs queues changes to environments (the provisioner); nil in tests
	// that need no jobs.
	Jobs Jobs
	// Box opens sealed database passwords (for the reveal).
	Box *secret.Box
	// Metrics serves /metrics to bearer tokens of any role; nil leaves the
	// route out (pgdeck then serves metrics on PGDECK_METRICS_ADDR).
	Metrics http.Handler
	// ReplicaThresholds are the replica lag's thresholds; zero fields take
	// DefaultReplicaThresholds'.
	ReplicaThresholds ReplicaThresholds
	// BackupUploadLimit bounds an uploaded archive; 0 means 20 GB.
	BackupUploadLimit int64
	// BackupWarnAge is the newest good backup's age over which pages
	// warn; 0 means a day.
	BackupWarnAge time.Duration
}

// Jobs is what the web layer asks of the provisioner.
type Jobs interface {
	// EnqueueWith queues a job of kind on env with its parameters (nil:
	// the kind's own snapshot, or none).
	EnqueueWith(ctx context.Context, env store.Environment, kind provisioner.Kind, params any, by string) (store.Job, error)
	OdooConfPath(env string) string
	// DatabaseAddress is where Odoo (and pgdeck) reach the environment's
	// database, as its runtime says; port 0 when it has none.
	DatabaseAddress(env string) (host string, port int)
	// PoolerAddress is where Odoo reaches the environment's PgBouncer.
	PoolerAddress(env string) (host string, port int)
	// ReplicaAddress is where Odoo reaches the environment's replica.
	ReplicaAddress(env string) (host string, port int)
	// ReplicaRequirements says what a read replica of env needs and
	// whether each holds (plan, Odoo version, quota and capacity).
	ReplicaRequirements(ctx context.Context, env store.Environment) ([]provisioner.Requirement, error)

	// BackupPath is where a backup's archive is on this host.
	BackupPath(b store.Backup) string
	// DeleteBackup removes a backup's archive and forgets it.
	DeleteBackup(ctx context.Context, b store.Backup) error
	// UploadFile creates the file an upload for env is streamed into.
	UploadFile(env string) (*os.File, error)
	// ImportBackup records an archive on this host as an imported backup
	// of env once checked (a *backup.Error says why not); move renames it
	// into place, otherwise it is copied.
	ImportBackup(ctx context.Context, env store.Environment, path string, move bool, by string) (store.Backup, error)
	// ImportFiles lists the archives waiting in the backup folder's import
	// folder; ImportFilePath is where one of them is.
	ImportFiles() ([]string, error)
	ImportFilePath(name string) (string, error)
	// BackupDir is the backup folder.
	BackupDir() string

	// RegisterServer checks a Docker host and registers it as a server
	// (a *provisioner.ServerInvalidError says, field by field, why not).
	RegisterServer(ctx context.Context, in provisioner.ServerInput) (store.Server, error)
	// RemoveServer forgets a registered server that holds no environment
	// (provisioner.ErrBuiltinServer, store.ErrServerInUse, store.ErrNotFound).
	RemoveServer(ctx context.Context, name string) error
	// ServerLoads returns every server with its environments, what they
	// use and what is left.
	ServerLoads(ctx context.Context) ([]provisioner.ServerLoad, error)
	// PlaceEnvironment returns the server a new environment on plan lives
	// on: choice when given and possible, else the roomiest that fits (a
	// *provisioner.ServerInvalidError, field "server", says why not).
	PlaceEnvironment(ctx context.Context, plan, choice string) (string, error)
}

// ReplicaThresholds are the replica lag's warning and critical
// thresholds, as the monitor uses them: the page's chart bands and the
// API show them.
type ReplicaThresholds struct {
	WarnBytes   int64
	WarnSeconds float64
	CritBytes   int64
	CritSeconds float64
}

// DefaultReplicaThresholds are 50 MB or 15 s (warning) and 100 MB or 30 s
// (critical).
var DefaultReplicaThresholds = ReplicaThresholds{WarnBytes: 50_000_000, WarnSeconds: 15, CritBytes: 100_000_000, CritSeconds: 30}

// Server holds the handlers' dependencies and the echo instance.
type Server struct {
	store    *store.Store
	log      *slog.Logger
	sessions *scs.SessionManager
	limiter  *loginLimiter
	// hashSlots holds one token per password hash running.
	hashSlots chan struct{}
	ceiling   int
	key       []byte
	secure    bool
	hsts      bool
	publicURL *url.URL
	// hosts are the host names (not IP literals) pgdeck answers to.
	hosts   []string
	version string
	jobs    Jobs
	box     *secret.Box
	metrics http.Handler
	// thresholds are the replica lag's (chart bands, API).
	thresholds ReplicaThresholds
	// uploadLimit bounds an uploaded archive; backupWarnAge is the newest
	// good backup's age over which pages warn.
	uploadLimit   int64
	backupWarnAge time.Duration
	echo          *echo.Echo
}

// New builds the server and its routes.
func New(d Deps) *Server {
	secure := d.Secure || (d.PublicURL != nil && d.PublicURL.Scheme == "https")
	key := d.Key
	if len(key) == 0 {
		key = []byte(randomToken(32))
	}
	slots := d.HashSlots
	if slots <= 0 {
		slots = max(runtime.NumCPU(), 1)
	}
	var hosts []string
	if d.PublicURL != nil {
		hosts = append(hosts, strings.ToLower(d.PublicURL.Hostname()))
	}
	if h, _, err := net.SplitHostPort(d.ListenAddr); err == nil && h != "" {
		hosts = append(hosts, strings.ToLower(h))
	}

	sm := scs.New()
	// Sessions go through the store; serve deletes expired ones in a loop
	// that stops with it (RunSessionCleanup).
	sm.Store = d.Store.Sessions()
	sm.Lifetime = 7 * 24 * time.Hour
	sm.IdleTimeout = 24 * time.Hour
	sm.Cookie.Name = "pgdeck_session"
	sm.Cookie.HttpOnly = true
	sm.Cookie.SameSite = http.SameSiteLaxMode
	sm.Cookie.Secure = secure
	sm.Cookie.Path = "/"

	s := &Server{
		store:    d.Store,
		log:      d.Log,
		sessions: sm,
		limiter:  newLoginLimiter(loginWindow, loginLimiterKeys),

		hashSlots:     make(chan struct{}, slots),
		ceiling:       cmp.Or(d.AccountLoginCeiling, loginPerAccount),
		key:           key,
		secure:        secure,
		hsts:          secure,
		publicURL:     d.PublicURL,
		hosts:         hosts,
		version:       d.Version,
		jobs:          d.Jobs,
		box:           d.Box,
		metrics:       d.Metrics,
		uploadLimit:   cmp.Or(d.BackupUploadLimit, 20_000_000_000),
		backupWarnAge: cmp.Or(d.BackupWarnAge, 24*time.Hour),
		thresholds: ReplicaThresholds{
			WarnBytes:   cmp.Or(d.ReplicaThresholds.WarnBytes, DefaultReplicaThresholds.WarnBytes),
			WarnSeconds: cmp.Or(d.ReplicaThresholds.WarnSeconds, DefaultReplicaThresholds.WarnSeconds),
			CritBytes:   cmp.Or(d.ReplicaThresholds.CritBytes, DefaultReplicaThresholds.CritBytes),
			CritSeconds: cmp.Or(d.ReplicaThresholds.CritSeconds, DefaultReplicaThresholds.CritSeconds),
		},
	}
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.handleError
	// The client address (login rate limit, audit log) comes from the
	// connection; X-Forwarded-For is believed only from the proxies named in
	// PGDECK_TRUSTED_PROXIES, so that a client cannot forge it to escape the
	// per-address limit or to write another address into the audit log.
	trust := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, p := range d.TrustedProxies {
		trust = append(trust, echo.TrustIPRange(&net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}))
	}
	e.IPExtractor = echo.ExtractIPFromXFFHeader(trust...)
	s.echo = e
	s.routes()
	return s
}

// Handler is the HTTP handler serving every route.
func (s *Server) Handler() http.Handler { return s.echo }

// SessionCleanupInterval is how often RunSessionCleanup deletes expired
// sessions.
const SessionCleanupInterval = 30 * time.Minute

// RunSessionCleanup deletes expired sessions at once and then every
// SessionCleanupInterval until ctx ends.
func (s *Server) RunSessionCleanup(ctx context.Context) error {
	t := time.NewTicker(SessionCleanupInterval)
	defer t.Stop()
	for {
		if n, err := s.store.DeleteExpiredSessions(ctx); err != nil && ctx.Err() == nil {
			s.log.Warn("delete expired sessions", "error", err)
		} else if n > 0 {
			s.log.Debug("deleted expired sessions", "count", n)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}
