package pgexec

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

func TestParseProgress(t *testing.T) {
	tests := []struct {
		line        string
		done, total int64
		ok          bool
	}{
		{"    0/22949 kB (0%), 0/1 tablespace (...ata.basebackup-1/backup_label)", 0, 22949 * 1024, true},
		{"22949/22949 kB (100%), 1/1 tablespace", 22949 * 1024, 22949 * 1024, true},
		{"123/456 kB (26%), 0/1 tablespace", 123 * 1024, 456 * 1024, true},
		{"pg_basebackup: checkpoint completed", 0, 0, false},
		{"pg_basebackup: write-ahead log start point: 0/2000028 on timeline 1", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.line, func(t *testing.T) {
			done, total, ok := parseProgress(tt.line)
			if done != tt.done || total != tt.total || ok != tt.ok {
				t.Fatalf("parseProgress = %d, %d, %v; want %d, %d, %v", done, total, ok, tt.done, tt.total, tt.ok)
			}
		})
	}
}

func TestLineWriterSplitsCarriageReturns(t *testing.T) {
	var progress []string
	w := NewLineWriter(func(l string) bool {
		_, _, ok := parseProgress(l)
		if ok {
			progress = append(progress, l)
		}
		return ok
	})
	w.Write([]byte("pg_basebackup: starting\n 1/10 kB (10%), 0/1 tablespace\r 10/1"))
	w.Write([]byte("0 kB (100%), 1/1 tablespace\npg_basebackup: error: boom"))
	w.Flush()
	if len(progress) != 2 {
		t.Errorf("progress lines = %q, want 2", progress)
	}
	if got := strings.Join(w.tail, "|"); got != "pg_basebackup: starting|pg_basebackup: error: boom" {
		t.Errorf("tail = %q", got)
	}
}

func testStandby() StandbyOptions {
	return StandbyOptions{Host: "127.0.0.1", Port: 5433, User: "pgdeck_replication", Password: `a:b\c 'd`,
		Slot: "pgdeck_replica", ApplicationName: "shop_replica", PassFile: "/srv/envs/shop/replica/primary.pgpass"}
}

func TestStandbySettings(t *testing.T) {
	s := testStandby()
	if err := s.validate(); err != nil {
		t.Fatal(err)
	}
	if got, want := s.passfileLine(), `127.0.0.1:5433:*:pgdeck_replication:a\:b\\c 'd`+"\n"; got != want {
		t.Errorf("passfile line = %q, want %q", got, want)
	}
	c := &Cluster{SocketDir: "/srv/run", ListenAddress: "127.0.0.1", Port: 5434}
	conf, err := c.renderConf(map[string]string{"work_mem": "4MB"}, &s)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"primary_conninfo = 'host=127.0.0.1 port=5433 user=pgdeck_replication passfile=/srv/envs/shop/replica/primary.pgpass application_name=shop_replica'\n",
		"primary_slot_name = 'pgdeck_replica'\n",
		"hot_standby = on\n",
		"port = 5434\n",
	} {
		if !strings.Contains(conf, want) {
			t.Errorf("pgdeck.conf lacks %q:\n%s", want, conf)
		}
	}
	if strings.Contains(conf, "a:b") || strings.Contains(conf, "password") {
		t.Errorf("pgdeck.conf holds the password:\n%s", conf)
	}
	for _, name := range []string{"primary_conninfo", "primary_slot_name", "hot_standby"} {
		if _, err := c.renderConf(map[string]string{name: "x"}, nil); err == nil {
			t.Errorf("Conf may set %s", name)
		}
	}
}

func TestStandbyValidate(t *testing.T) {
	tests := map[string]func(*StandbyOptions){
		"no host":          func(s *StandbyOptions) { s.Host = "" },
		"host with colon":  func(s *StandbyOptions) { s.Host = "::1" },
		"no port":          func(s *StandbyOptions) { s.Port = 0 },
		"bad user":         func(s *StandbyOptions) { s.User = "rep user" },
		"no password":      func(s *StandbyOptions) { s.Password = "" },
		"password newline": func(s *StandbyOptions) { s.Password = "a\nb" },
		"bad slot":         func(s *StandbyOptions) { s.Slot = "Slot-1" },
		"no slot":          func(s *StandbyOptions) { s.Slot = "" },
		"relative passfile": func(s *StandbyOptions) {
			s.PassFile = "primary.pgpass"
		},
	}
	for name, mutate := range tests {
		t.Run(name, func(t *testing.T) {
			s := testStandby()
			mutate(&s)
			if err := s.validate(); err == nil {
				t.Fatalf("validate accepted %+v", s)
			}
		})
	}
}

// TestBaseBackupCutShort: a base backup killed in the middle leaves no
// data directory, no leftover folder, no passfile and no process, and the
// next Init copies the primary whole.
func TestBaseBackupCutShort(t *testing.T) {
	primary := newCluster(t, "127.0.0.1")
	startCluster(t, primary, InitOptions{
		Conf: map[string]string{"wal_level": "replica", "max_wal_senders": "5"},
		HBA:  []string{"host replication rep 127.0.0.1/32 scram-sha-256"},
	})
	if _, err := primary.Exec(t.Context(), nil, "psql", "-X", "-v", "ON_ERROR_STOP=1", "-d", "postgres", "-c",
		"create role rep replication login password 'rep-pw'; select pg_create_physical_replication_slot('s1')"); err != nil {
		t.Fatal(err)
	}
	standby := newCluster(t, "127.0.0.1")
	for standby.Port == primary.Port {
		standby.Port++
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	s := &StandbyOptions{Host: "127.0.0.1", Port: primary.Port, User: "rep", Password: "rep-pw", Slot: "s1",
		ApplicationName: "test_replica", PassFile: filepath.Join(filepath.Dir(standby.DataDir), "primary.pgpass"),
		// The last progress report comes before pg_basebackup has the
		// WAL end point and has synced the copy: cut it short there.
		Progress: func(done, total int64) { cancel() }}
	if err := standby.Init(ctx, InitOptions{Standby: s}); err == nil {
		t.Fatal("Init with a cancelled base backup succeeded")
	} else {
		t.Logf("cut short: %v", err)
	}
	if standby.Initialized() {
		t.Fatal("a cut-short base backup left an initialised data directory")
	}
	if _, err := os.Lstat(standby.DataDir); !os.IsNotExist(err) {
		t.Fatalf("a cut-short base backup left its data directory (stat: %v)", err)
	}
	if left, _ := filepath.Glob(standby.DataDir + baseBackupPattern); len(left) > 0 {
		t.Fatalf("a cut-short base backup left %v", left)
	}
	if _, err := os.Stat(s.PassFile); !os.IsNotExist(err) {
		t.Fatalf("a cut-short base backup left its passfile (stat: %v)", err)
	}
	if pids := processesMentioning(standby.DataDir); len(pids) > 0 {
		t.Fatalf("processes still working on %s: %v", standby.DataDir, pids)
	}

	s.Progress = nil
	startCluster(t, standby, InitOptions{Standby: s})
	out, err := standby.Exec(t.Context(), nil, "psql", "-X", "-At", "-d", "postgres", "-c", "select pg_is_in_recovery()")
	if err != nil || strings.TrimSpace(string(out)) != "t" {
		t.Fatalf("pg_is_in_recovery() = %q, %v", out, err)
	}
	if _, err := os.Stat(filepath.Join(standby.DataDir, standbySignal)); err != nil {
		t.Errorf("standby.signal: %v", err)
	}
}

// processesMentioning lists the processes whose command line mentions s.
func processesMentioning(s string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.Contains(string(b), s) {
			if info, ok := readProc(pid); ok && info.state != 'Z' {
				pids = append(pids, pid)
			}
		}
	}
	return pids
}
