package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"
	"golang.org/x/sync/errgroup"

	"pgdeck/monitor"
	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
	"pgdeck/store/secret"
	"pgdeck/web"
)

// serve runs the web server (and, later, the job workers and the monitor)
// until ctx ends, then shuts everything down in order.
func serve(ctx context.Context, args []string, getenv func(string) string) error {
	cfg, err := loadConfig(flag.NewFlagSet("pgdeck", flag.ContinueOnError), args, getenv)
	if err != nil {
		return err
	}
	log := newLogger(cfg)
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
	rt, err := local.New(local.Config{Root: cfg.envRoot(), BinDir: cfg.PGBinDir, Logger: log})
	if err != nil {
		return err
	}
	lo, hi, _ := parsePortRange(cfg.PortRange)
	prov := provisioner.New(provisioner.Config{
		EnvRoot: cfg.envRoot(), PortLow: lo, PortHigh: hi, Workers: cfg.Workers, OdooUser: odooUser,
		ShutdownGrace: cfg.ShutdownGrace,
	}, st, rt, box, log)

	mon := monitor.New(monitor.Config{
		Interval: cfg.MonitorInterval, Timeout: cfg.MonitorTimeout, Confirm: cfg.MonitorConfirm,
	}, st, rt, box, log)
	metrics := promhttp.HandlerFor(monitor.NewRegistry(mon, st), promhttp.HandlerOpts{})

	srv := web.New(web.Deps{Store: st, Log: log, Secure: cfg.TLSCertFile != "", Version: version,
		Jobs: prov, Box: box, Metrics: metrics})
	httpSrv := &http.Server{
		Handler:           srv.Handler(),
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	ln, err := net.Listen("tcp", cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", cfg.Addr, err)
	}
	scheme := "http"
	if cfg.TLSCertFile != "" {
		scheme = "https"
	}
	log.Info("pgdeck is serving", "url", scheme+"://"+ln.Addr().String(), "data_dir", cfg.DataDir, "version", version)

	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error { return prov.Run(gctx) })
	g.Go(func() error { return mon.Run(gctx) })
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
	g.Go(func() error {
		<-gctx.Done()
		log.Info("shutting down: finishing requests in flight")
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
		defer cancel()
		return httpSrv.Shutdown(sctx)
	})
	err = g.Wait()
	log.Info("stopped")
	return err
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
