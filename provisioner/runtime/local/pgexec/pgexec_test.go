package pgexec

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/internal/testkit"
)

// testBinDir finds the PostgreSQL binaries or fails the test with the
// command that installs them.
func testBinDir(t *testing.T) string {
	t.Helper()
	dir, err := FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("PostgreSQL server binaries are required (%s): %v", installHint, err)
	}
	return dir
}

// newCluster returns an uninitialised cluster in a fresh temporary folder
// that is stopped when the test ends.
func newCluster(t *testing.T, listen string) *Cluster {
	t.Helper()
	user, err := DefaultRunAs()
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	c := &Cluster{
		BinDir:        testBinDir(t),
		DataDir:       filepath.Join(root, "pgdata"),
		SocketDir:     filepath.Join(root, "run"),
		ListenAddress: listen,
		Port:          testkit.FreePort(t),
		User:          user,
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
	return c
}

func startCluster(t *testing.T, c *Cluster, opt InitOptions) {
	t.Helper()
	ctx := t.Context()
	if err := c.Init(ctx, opt); err != nil {
		t.Fatalf("init: %v", err)
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start: %v", err)
	}
}

func selectOne(t *testing.T, dsn string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect %q: %v", dsn, err)
	}
	defer conn.Close(context.Background())
	var n int
	if err := conn.QueryRow(ctx, "select 1").Scan(&n); err != nil || n != 1 {
		t.Fatalf("select 1 = %d, %v", n, err)
	}
}

func TestFindBinDir(t *testing.T) {
	dir := testBinDir(t)
	for _, bin := range []string{"initdb", "pg_ctl", "postgres", "psql"} {
		if !isExecutable(filepath.Join(dir, bin)) {
			t.Errorf("%s has no %s", dir, bin)
		}
	}
	got, err := FindBinDir(dir)
	if err != nil || got != dir {
		t.Errorf("FindBinDir(%q) = %q, %v", dir, got, err)
	}
	_, err = FindBinDir(t.TempDir())
	if err == nil || !strings.Contains(err.Error(), "apt-get install -y postgresql") || !errors.Is(err, ErrNoBinaries) {
		t.Errorf("FindBinDir(empty folder) error = %v, want the install command", err)
	}
}

func TestInitStartConnect(t *testing.T) {
	c := newCluster(t, "127.0.0.1")
	ctx := t.Context()
	if c.Initialized() {
		t.Fatal("Initialized before Init")
	}
	startCluster(t, c, InitOptions{Conf: map[string]string{"work_mem": "8MB", "application_name": "it's pgdeck"}})
	if !c.Initialized() {
		t.Fatal("not Initialized after Init")
	}
	pid, ok := c.Running()
	if !ok || pid <= 0 {
		t.Fatalf("Running() = %d, %v after Start", pid, ok)
	}
	selectOne(t, c.DSN("postgres"))

	// Start, Init and Ready again on a running cluster change nothing.
	if err := c.Start(ctx); err != nil {
		t.Fatalf("second start: %v", err)
	}
	if err := c.Init(ctx, InitOptions{Conf: map[string]string{"work_mem": "8MB"}}); err != nil {
		t.Fatalf("second init: %v", err)
	}
	if pid2, _ := c.Running(); pid2 != pid {
		t.Errorf("postmaster pid changed from %d to %d", pid, pid2)
	}
	if err := c.Ready(ctx); err != nil {
		t.Errorf("Ready: %v", err)
	}
	out, err := c.Exec(ctx, nil, "psql", "-XAtc", "show work_mem")
	if err != nil || strings.TrimSpace(string(out)) != "8MB" {
		t.Errorf("show work_mem = %q, %v", out, err)
	}
	out, err = c.Exec(ctx, []byte("select 40 + 2;\n"), "psql", "-XAt", "-v", "ON_ERROR_STOP=1")
	if err != nil || strings.TrimSpace(string(out)) != "42" {
		t.Errorf("psql with stdin = %q, %v", out, err)
	}
	if _, err := c.Exec(ctx, nil, "psql", "-XAt", "-v", "ON_ERROR_STOP=1", "-c", "select nope"); err == nil ||
		!strings.Contains(err.Error(), "nope") {
		t.Errorf("failing psql error = %v, want the output in it", err)
	}
	if _, err := c.Exec(ctx, nil, "../bin/sh"); err == nil {
		t.Error("Exec ran a program outside BinDir")
	}
}

func TestStop(t *testing.T) {
	c := newCluster(t, "")
	ctx := t.Context()
	startCluster(t, c, InitOptions{})
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if pid, ok := c.Running(); ok {
		t.Fatalf("Running() = %d, true after Stop", pid)
	}
	if err := c.Stop(ctx); err != nil {
		t.Fatalf("second stop: %v", err)
	}
	if err := c.Ready(ctx); err == nil {
		t.Error("Ready() = nil on a stopped server")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start after stop: %v", err)
	}
	selectOne(t, c.DSN("postgres"))
}

// childrenOf lists the live processes whose parent is pid.
func childrenOf(pid int) []int {
	entries, _ := os.ReadDir("/proc")
	var kids []int
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if info, ok := readProc(p); ok && info.ppid == pid && info.state != 'Z' {
			kids = append(kids, p)
		}
	}
	return kids
}

func TestStartAfterKill(t *testing.T) {
	c := newCluster(t, "127.0.0.1")
	ctx := t.Context()
	startCluster(t, c, InitOptions{})
	pid, ok := c.Running()
	if !ok {
		t.Fatal("not running after Start")
	}
	kids := childrenOf(pid)
	if len(kids) == 0 {
		t.Fatal("postmaster has no children")
	}
	for _, p := range append([]int{pid}, kids...) {
		if err := syscall.Kill(p, syscall.SIGKILL); err != nil {
			t.Fatalf("kill -9 %d: %v", p, err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for len(serverProcesses(c.DataDir)) > 0 && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	if left := serverProcesses(c.DataDir); len(left) > 0 {
		t.Fatalf("processes %v survived kill -9", left)
	}
	if _, err := os.Stat(filepath.Join(c.DataDir, pidFileName)); err != nil {
		t.Fatalf("postmaster.pid gone after kill -9: %v", err)
	}
	if _, ok := c.Running(); ok {
		t.Fatal("Running() = true after kill -9")
	}
	if !c.Stale() {
		t.Fatal("Stale() = false after kill -9")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start after kill -9: %v", err)
	}
	pid2, ok := c.Running()
	if !ok || pid2 == pid {
		t.Fatalf("Running() = %d, %v after restart (old pid %d)", pid2, ok, pid)
	}
	selectOne(t, c.DSN("postgres"))
}

func TestStartWithPidOfUnrelatedProcess(t *testing.T) {
	c := newCluster(t, "")
	ctx := t.Context()
	startCluster(t, c, InitOptions{})
	if err := c.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	// A postmaster.pid naming a live process that is not PostgreSQL (this
	// test binary), as after a crash and pid reuse.
	pidFile := filepath.Join(c.DataDir, pidFileName)
	content := strconv.Itoa(os.Getpid()) + "\n" + c.DataDir + "\n"
	if err := WriteFileAs(c.User, pidFile, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok := c.Running(); ok {
		t.Fatal("Running() = true for a pid that is not postgres")
	}
	if err := c.Start(ctx); err != nil {
		t.Fatalf("start over reused pid: %v", err)
	}
	selectOne(t, c.DSN("postgres"))
}

func TestStartErrorCarriesServerLog(t *testing.T) {
	c := newCluster(t, "127.0.0.1")
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	if err := c.Init(t.Context(), InitOptions{}); err != nil {
		t.Fatal(err)
	}
	err = c.Start(t.Context())
	if err == nil || !strings.Contains(err.Error(), "could not bind") {
		t.Fatalf("start on a taken port: error = %v, want the server log's bind error", err)
	}
	if _, ok := c.Running(); ok {
		t.Fatal("Running() = true after a failed start")
	}
}

func TestNoTCP(t *testing.T) {
	c := newCluster(t, "")
	startCluster(t, c, InitOptions{})
	selectOne(t, c.DSN("postgres"))
	conn, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)), 2*time.Second)
	if err == nil {
		conn.Close()
		t.Fatalf("a cluster without ListenAddress accepts TCP on port %d", c.Port)
	}
	if fi, err := os.Stat(c.SocketDir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("socket folder mode = %v, %v; want 0700", fi.Mode().Perm(), err)
	}
}

func TestTCPWithPassword(t *testing.T) {
	c := newCluster(t, "127.0.0.1")
	startCluster(t, c, InitOptions{
		SuperuserPassword: "s3cret pass'word",
		HBA:               []string{"host all all 127.0.0.1/32 scram-sha-256"},
	})
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable dbname=postgres user=postgres")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Port = uint16(c.Port)
	cfg.Password = "s3cret pass'word"
	ctx, cancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		t.Fatalf("TCP connect with password: %v", err)
	}
	conn.Close(ctx)
	cfg.Password = "wrong"
	if conn, err := pgx.ConnectConfig(ctx, cfg); err == nil {
		conn.Close(ctx)
		t.Fatal("TCP connect with a wrong password succeeded")
	}
}

func TestInitReplacesHalfMadeDataDir(t *testing.T) {
	c := newCluster(t, "")
	if err := os.MkdirAll(c.DataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(c.DataDir, "junk"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	startCluster(t, c, InitOptions{})
	if _, err := os.Stat(filepath.Join(c.DataDir, "junk")); err == nil {
		t.Error("junk from the half-made data directory survived Init")
	}
	selectOne(t, c.DSN("postgres"))
}

func TestInvalidSettings(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("s", 100))
	tests := []struct {
		name string
		c    Cluster
		opt  InitOptions
		want string
	}{
		{"socket path too long", Cluster{SocketDir: long, Port: 5432}, InitOptions{}, "unix socket path"},
		{"no port", Cluster{}, InitOptions{}, "port 0"},
		{"relative data dir", Cluster{DataDir: "data", Port: 5432}, InitOptions{}, "absolute"},
		{"managed setting", Cluster{Port: 5432}, InitOptions{Conf: map[string]string{"port": "1"}}, "managed by pgdeck"},
		{"bad setting name", Cluster{Port: 5432}, InitOptions{Conf: map[string]string{"a = 1\nb": "1"}}, "invalid setting name"},
		{"line break in value", Cluster{Port: 5432}, InitOptions{Conf: map[string]string{"work_mem": "1\nport=2"}}, "line break"},
		{"line break in hba", Cluster{Port: 5432}, InitOptions{HBA: []string{"host all all 0.0.0.0/0 trust\nx"}}, "line break"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			root := t.TempDir()
			c := tt.c
			c.BinDir = testBinDir(t)
			if c.DataDir == "" {
				c.DataDir = filepath.Join(root, "pgdata")
			}
			if c.SocketDir == "" {
				c.SocketDir = filepath.Join(root, "run")
			}
			c.User, _ = DefaultRunAs()
			err := c.Init(t.Context(), tt.opt)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Init error = %v, want %q", err, tt.want)
			}
			if strings.Contains(tt.name, "socket") {
				if err := c.Start(t.Context()); err == nil || !strings.Contains(err.Error(), tt.want) {
					t.Fatalf("Start error = %v, want %q", err, tt.want)
				}
			}
		})
	}
}

func TestEnsureTraversable(t *testing.T) {
	u, err := LookupRunAs("postgres")
	if err != nil {
		t.Fatal(err)
	}
	if u.UID == os.Geteuid() {
		// The check is about another user's access.
		if u, err = LookupRunAs("nobody"); err != nil {
			t.Fatal(err)
		}
	}
	root := t.TempDir()
	closed := filepath.Join(root, "closed")
	if err := os.MkdirAll(filepath.Join(closed, "inner"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(closed, 0o700); err != nil {
		t.Fatal(err)
	}
	dirs := []string{root, closed, filepath.Join(closed, "inner")}
	before := map[string]os.FileMode{}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		before[d] = fi.Mode().Perm()
	}
	if err := u.EnsureTraversable(filepath.Join(closed, "inner", "pgdata", "x"), slog.Default()); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		fi, err := os.Stat(d)
		if err != nil {
			t.Fatal(err)
		}
		if got, want := fi.Mode().Perm(), before[d]|0o001; got != want {
			t.Errorf("%s mode %v, want %v (only o+x added)", d, got, want)
		}
	}
	if err := (RunAs{}).EnsureTraversable(closed, slog.Default()); err != nil {
		t.Errorf("zero RunAs: %v", err)
	}
}

func TestDSNQuoting(t *testing.T) {
	c := Cluster{SocketDir: "/tmp/with space", Port: 5433}
	got := c.DSN("it's")
	want := `host='/tmp/with space' port=5433 user=postgres dbname='it\'s' sslmode=disable`
	if got != want {
		t.Errorf("DSN = %s, want %s", got, want)
	}
	if _, err := pgx.ParseConfig(got); err != nil {
		t.Errorf("pgx cannot parse %s: %v", got, err)
	}
}
