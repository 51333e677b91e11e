// Package storetest starts one real control-plane PostgreSQL cluster per test
// binary and hands each test a fresh, migrated database on it.
package storetest

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
)

var (
	once    sync.Once
	emb     *pgexec.ControlPlane
	rootDir string
	initErr error
	dbSeq   atomic.Int64
)

// Main runs the package's tests and stops the shared cluster afterwards.
// Use it from TestMain: func TestMain(m *testing.M) { storetest.Main(m) }.
func Main(m *testing.M) {
	code := m.Run()
	if emb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		_ = emb.Stop(ctx)
		cancel()
	}
	if rootDir != "" {
		// Nothing of the cluster may outlive the tests (nor keep its files).
		if _, err := testkit.StopPostgres(rootDir, time.Minute); err != nil {
			fmt.Fprintf(os.Stderr, "storetest: %v\n", err)
			code = 1
		}
		os.RemoveAll(rootDir)
	}
	os.Exit(code)
}

func start() {
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		initErr = err
		return
	}
	runAs, err := pgexec.DefaultRunAs()
	if err != nil {
		initErr = err
		return
	}
	// Short path: the socket path must stay under 107 bytes.
	rootDir, err = os.MkdirTemp("", "pgdeck-store-")
	if err != nil {
		initErr = err
		return
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	emb, err = pgexec.NewControlPlane(rootDir, bin, runAs, log)
	if err != nil {
		initErr = err
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	initErr = emb.Start(ctx)
}

// Cluster returns the shared embedded cluster, starting it on first use.
func Cluster(t testing.TB) *pgexec.ControlPlane {
	t.Helper()
	once.Do(start)
	if initErr != nil {
		t.Fatalf("storetest: start the control-plane PostgreSQL: %v", initErr)
	}
	return emb
}

// URL returns the connection string of a new, empty database.
func URL(t testing.TB) string {
	t.Helper()
	e := Cluster(t)
	ctx := context.Background()
	admin, err := store.Open(ctx, e.URL())
	if err != nil {
		t.Fatalf("storetest: %v", err)
	}
	defer admin.Close()
	name := fmt.Sprintf("t_%d_%d", os.Getpid(), dbSeq.Add(1))
	if _, err := admin.Pool.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatalf("storetest: create database: %v", err)
	}
	return e.URLFor(name)
}

// New returns a store on a fresh, migrated database, closed when the test ends.
func New(t testing.TB) *store.Store {
	t.Helper()
	st, err := store.Open(context.Background(), URL(t))
	if err != nil {
		t.Fatalf("storetest: open store: %v", err)
	}
	t.Cleanup(st.Close)
	return st
}
