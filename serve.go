package main

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"pgdeck/monitor"
	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/provisioner/runtime/fleet"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
	"pgdeck/store/secret"
	"pgdeck/web"
)

// serve runs the web server (and, later, the job workers and the monitor)
// until ctx ends, then shuts everything down in order.
func serve(ctx context.Context, args []string, getenv func(string) string, logOut io.Writer) error {
	cfg, err := loadConfig(flag.NewFlagSet("pgdeck", flag.ContinueOnError), args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg, logOut)
	slog.SetDefault(log)
	odooUser, err := provisioner.LookupOdooUser(cfg.OdooUser)
	if err != nil {
		return err
	}
	st, closeStore, err := openStore(ctx, cfg, log, true)
	if err != nil {
		return err
	}
	defer closeStore()

	box, err := secret.LoadOrCreate(cfg.secretKeyPath())
	if err != nil {
		return err
	}
	builtin, capacity, err := newRuntime(ctx, cfg, log)
	if err != nil {
		return err
	}
	// Environments live on servers: this host's runtime (the built-in
	// server) and the Docker hosts registered since. The fleet sends each
	// call to the runtime of the environment's server.
	servers := provisioner.NewServers(provisioner.ServersConfig{Builtin: builtin,
		Image: cfg.Docker.Image, PoolerImage: cfg.Docker.PoolerImage,
		PublishAddress: cfg.Docker.PublishAddress, Root: cfg.envRoot()}, st, box, log)
	defer servers.Close()
	self := store.Server{Runtime: store.ServerLocal, MemoryBytes: capacity.Memory, CPUs: capacity.CPUs, StorageBytes: capacity.Storage}
	if cfg.Runtime == "docker" {
		self.Runtime, self.DockerHost = store.ServerDocker, cfg.Docker.Host
	}
	if _, err := st.EnsureBuiltinServer(ctx, self); err != nil {
		return err
	}
	rt := fleet.New(servers, log)
	lo, hi, _ := parsePortRange(cfg.PortRange)
	prov := provisioner.New(provisioner.Config{
		PortLow: lo, PortHigh: hi, Workers: cfg.Workers, OdooUser: odooUser,
		ShutdownGrace: cfg.ShutdownGrace, Capacity: capacity,
		BackupDir: cfg.backupDir(), PgRestore: hostPgRestore(cfg), Version: version,
	}, st, rt, box, log, provisioner.WithServers(servers))

	mon := monitor.New(monitor.Config{
		Interval: cfg.MonitorInterval, Timeout: cfg.MonitorTimeout, Confirm: cfg.MonitorConfirm,
		Replica: monitor.ReplicaThresholds{
			WarnBytes: cfg.ReplicaWarnBytes, WarnLag: cfg.ReplicaWarnLag,
			CritBytes: cfg.ReplicaCritBytes, CritLag: cfg.ReplicaCritLag,
		},
	}, st, rt, box, log)
	metrics := promhttp.HandlerFor(monitor.NewRegistry(mon, st), promhttp.HandlerOpts{})

	key, err := cookieKey(cfg.secretKeyPath())
	if err != nil {
		return err
	}
	deps := web.Deps{Store: st, Log: log, Secure: cfg.TLSCertFile != "", Version: version,
		Jobs: prov, Box: box, Metrics: metrics, PublicURL: cfg.PublicURL, ListenAddr: cfg.Addr,
		TrustedProxies: cfg.TrustedProxies, Key: key,
		BackupUploadLimit: cfg.BackupUploadLimit, BackupWarnAge: cfg.BackupWarnAge,
		ReplicaThresholds: web.ReplicaThresholds{WarnBytes: cfg.ReplicaWarnBytes, WarnSeconds: cfg.ReplicaWarnLag.Seconds(),
			CritBytes: cfg.ReplicaCritBytes, CritSeconds: cfg.ReplicaCritLag.Seconds()}}
	if cfg.MetricsAddr != "" {
		deps.Metrics = nil
	}
	srv := web.New(deps)
	httpSrv := newHTTPServer(cfg, srv.Handler(), log)
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	var metricsSrv *http.Server
	var metricsLn net.Listener
	if cfg.MetricsAddr != "" {
		mux := http.NewServeMux()
		mux.Handle("GET /metrics", metrics)
		metricsSrv = newHTTPServer(cfg, mux, log)
		if metricsLn, err = net.Listen("tcp", cfg.MetricsAddr); err != nil {
			ln.Close()
			return fmt.Errorf("listen on %s (PGDECK_METRICS_ADDR): %w", cfg.MetricsAddr, err)
		}
		log.Info("metrics are served without a token", "url", "http://"+metricsLn.Addr().String()+"/metrics")
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	log.Info("pgdeck is serving", "url", scheme+"://"+ln.Addr().String(), "data_dir", cfg.DataDir, "version", version)
	if n, err := st.CountUsers(ctx); err == nil && n == 0 {
		log.Warn("pgdeck has no account yet: open /setup and enter this one-time setup code", "setup_code", srv.SetupCode())
	}

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return prov.Run(gctx) })
	g.Go(func() error { return mon.Run(gctx) })
	g.Go(func() error { return srv.RunSessionCleanup(gctx) })
	g.Go(func() error {
		var err error
		if cfg.TLSCertFile != "" {
			err = httpSrv.ServeTLS(ln, cfg.TLSCertFile, cfg.TLSKeyFile)
		} else {
			err = httpSrv.Serve(ln)
		}
		if errors.Is(err, http.ErrServerClosed) {
			return nil
		}
		return err
	})
	if metricsSrv != nil {
		g.Go(func() error {
			if err := metricsSrv.Serve(metricsLn); !errors.Is(err, http.ErrServerClosed) {
				return err
			}
			return nil
		})
	}
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: finishing requests in flight")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		if metricsSrv != nil {
			metricsSrv.Shutdown(sctx) //nolint:errcheck
		}
		return httpSrv.Shutdown(sctx)
	})
	err = g.Wait()
	log.Info("stopped")
	return err
}

// newHTTPServer bounds what a client may hold: headers within 10 s and 64
// KiB, the whole request within PGDECK_READ_TIMEOUT (a body sent a byte at a
// time is cut off), each answer within PGDECK_WRITE_TIMEOUT, and an idle
// keep-alive connection within PGDECK_IDLE_TIMEOUT. Answers that stream for
// longer (server-sent events, backup downloads) extend their own deadlines
// with http.ResponseController.
func newHTTPServer(cfg Config, h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.ReadTimeout,
		WriteTimeout:      cfg.WriteTimeout,
		IdleTimeout:       cfg.IdleTimeout,
		MaxHeaderBytes:    web.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// cookieKey derives the key that signs pgdeck's cookies and setup code from
// the secret key file, so that every instance sharing it agrees.
func cookieKey(path string) ([]byte, error) {
	raw, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read secret key: %w", err)
	}
	m := hmac.New(sha256.New, raw)
	m.Write([]byte("pgdeck web cookies"))
	return m.Sum(nil), nil
}

// openStore connects to PGDECK_DATABASE_URL, or starts the embedded
// control-plane cluster under the data directory. The returned func closes
// the pool and stops the embedded cluster: always when owned (the server),
// otherwise only if this call started it (a CLI command next to a server).
func openStore(ctx context.Context, cfg Config, log *slog.Logger, owned bool) (*store.Store, func(), error) {
	if cfg.DatabaseURL != "" {
		st, err := store.Open(ctx, cfg.DatabaseURL)
		if err != nil {
			return nil, nil, err
		}
		return st, st.Close, nil
	}
	if err := os.MkdirAll(cfg.DataDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("data dir: %w", err)
	}
	bin, err := pgexec.FindBinDir(cfg.PGBinDir)
	if err != nil {
		return nil, nil, err
	}
	runAs, err := pgexec.DefaultRunAs()
	if err != nil {
		return nil, nil, err
	}
	emb, err := pgexec.NewControlPlane(cfg.DataDir, bin, runAs, log)
	if err != nil {
		return nil, nil, err
	}
	if err := emb.Start(ctx); err != nil {
		return nil, nil, err
	}
	stop := func() {
		if !owned && !emb.StartedByUs() {
			return
		}
		sctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		if err := emb.Stop(sctx); err != nil {
			log.Error("stop control-plane cluster", "error", err)
		} else {
			log.Info("control-plane cluster stopped")
		}
	}
	st, err := store.Open(ctx, emb.URL())
	if err != nil {
		stop()
		return nil, nil, err
	}
	return st, func() { st.Close(); stop() }, nil
}

// hostPgRestore is pg_restore on this host (verify lists a custom-format
// dump with it): from the PostgreSQL binaries, else from PATH; "" when
// there is none (verify then says so).
func hostPgRestore(cfg Config) string {
	if dir, err := pgexec.FindBinDir(cfg.PGBinDir); err == nil {
		return filepath.Join(dir, "pg_restore")
	}
	if p, err := exec.LookPath("pg_restore"); err == nil {
		return p
	}
	return ""
}

// newRuntime builds this host's runtime as PGDECK_RUNTIME selects it:
// processes (local) or containers on a Docker Engine (docker), whose engine
// must answer at start. It also returns this host's capacity: PGDECK_CAPACITY,
// and on Docker what the engine has for each resource it leaves out.
func newRuntime(ctx context.Context, cfg Config, log *slog.Logger) (runtime.Runtime, render.Resources, error) {
	if cfg.Runtime != "docker" {
		rt, err := local.New(local.Config{Root: cfg.envRoot(), BinDir: cfg.PGBinDir, Logger: log})
		return rt, cfg.Capacity, err
	}
	rt, err := docker.New(docker.Config{
		Host: cfg.Docker.Host, Image: cfg.Docker.Image, PoolerImage: cfg.Docker.PoolerImage,
		PublishAddress: cfg.Docker.PublishAddress, Root: cfg.envRoot(), Logger: log,
	})
	if err != nil {
		return nil, render.Resources{}, err
	}
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	if err := rt.Ping(pctx); err != nil {
		rt.Close()
		return nil, render.Resources{}, fmt.Errorf("PGDECK_DOCKER_HOST %s: %w", cfg.Docker.Host, err)
	}
	c := cfg.Capacity
	if has, err := rt.Capacity(pctx); err == nil {
		c = provisioner.FillCapacity(c, has)
	} else {
		log.Warn("the Docker engine does not say what it has: its capacity is PGDECK_CAPACITY", "error", err)
	}
	return rt, c, nil
}
