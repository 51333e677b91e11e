package pgexec

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgdeck/internal/testkit"
)

// newBouncer returns a PgBouncer on a minimal ini in a fresh folder owned by
// the run-as user, stopped when the test ends, or fails the test with the
// command that installs PgBouncer.
func newBouncer(t *testing.T) *PgBouncer {
	t.Helper()
	bin, err := FindPgBouncer("")
	if err != nil {
		t.Fatalf("PgBouncer is required (%s): %v", pgbouncerInstallHint, err)
	}
	user, err := DefaultRunAs()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "pooler")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := user.Chown(dir); err != nil {
		t.Fatal(err)
	}
	if err := user.EnsureTraversable(dir, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	b := &PgBouncer{
		Bin:           bin,
		IniFile:       filepath.Join(dir, "pgbouncer.ini"),
		PidFile:       filepath.Join(dir, "pgbouncer.pid"),
		LogFile:       filepath.Join(dir, "pgbouncer.log"),
		ListenAddress: "127.0.0.1",
		Port:          testkit.FreePort(t),
		User:          user,
	}
	ini := fmt.Sprintf("[databases]\n[pgbouncer]\nlisten_addr = %s\nlisten_port = %d\nunix_socket_dir =\nauth_type = trust\nlogfile = %s\npidfile = %s\n",
		b.ListenAddress, b.Port, b.LogFile, b.PidFile)
	if err := WriteFileAs(user, b.IniFile, []byte(ini), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := b.Stop(ctx); err != nil {
			t.Errorf("cleanup stop: %v", err)
		}
	})
	return b
}

func TestFindPgBouncer(t *testing.T) {
	if _, err := FindPgBouncer(""); err != nil {
		t.Fatalf("PgBouncer is required (%s): %v", pgbouncerInstallHint, err)
	}
	_, err := FindPgBouncer(filepath.Join(t.TempDir(), "pgbouncer"))
	if !errors.Is(err, ErrNoPgBouncer) || !strings.Contains(err.Error(), "apt-get install -y pgbouncer") {
		t.Errorf("FindPgBouncer(missing file) error = %v, want the install command", err)
	}
}

func TestPgBouncerStartOverReusedPid(t *testing.T) {
	b := newBouncer(t)
	ctx := t.Context()
	// A pid file naming a live process that is not PgBouncer (this test
	// binary), as after a kill -9 and pid reuse.
	if err := WriteFileAs(b.User, b.PidFile, []byte(strconv.Itoa(os.Getpid())+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, ok := b.Running(); ok {
		t.Fatal("Running() = true for a pid that is not pgbouncer")
	}
	if pid, stale := b.Stale(); !stale || pid != os.Getpid() {
		t.Fatalf("Stale() = %d, %v; want this process's pid, true", pid, stale)
	}
	if err := b.Start(ctx); err != nil {
		t.Fatalf("start over a reused pid: %v", err)
	}
	pid, ok := b.Running()
	if !ok || pid == os.Getpid() {
		t.Fatalf("Running() = %d, %v after start", pid, ok)
	}
	if err := b.Accepts(time.Second); err != nil {
		t.Fatalf("started pgbouncer does not accept TCP: %v", err)
	}
	if err := b.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(b.PidFile); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("pid file after stop: %v, want it removed", err)
	}
	if b.Accepts(time.Second) == nil {
		t.Error("stopped pgbouncer still accepts TCP")
	}
	if left := processesOnIni(b.IniFile); len(left) > 0 {
		t.Errorf("pgbouncer processes %v left after stop", left)
	}
}
