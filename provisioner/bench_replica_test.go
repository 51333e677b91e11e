package provisioner_test

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// BenchmarkReplica compares the deploy of a read replica through pgdeck (a
// deploy_replica job: slot, pg_basebackup, standby start, until the WAL
// receiver streams, odoo.conf) with the raw tools on the same primary
// holding about 100 MB, in the same run: pg_basebackup --checkpoint=fast
// through a slot, standby.signal and primary_conninfo, pg_ctl start -w, and
// polling pg_stat_wal_receiver until it streams. It reports raw-ms/op,
// pgdeck-ms/op and their ratio x-raw (goal ≤ 1.3). Printed, never asserted.
// Run with: make bench, or go test -run '^$' -bench Replica -benchtime 3x ./provisioner/
func BenchmarkReplica(b *testing.B) {
	prev := slog.Default()
	slog.SetDefault(slog.New(slog.NewTextHandler(io.Discard, nil)))
	b.Cleanup(func() { slog.SetDefault(prev) })

	h := newHarness(b)
	e := h.deploy("bench")
	h.saveReplica(e, true)
	h.succeed("bench", provisioner.KindRedeploy)
	e = h.env("bench")
	h.pgbench(e, *e.Port, "-i", "-q", "-s", "6") // about 100 MB
	b.Logf("primary database: %s", h.superSQL(primary("bench"), "SELECT pg_size_pretty(pg_database_size('"+e.DBName+"'))"))
	replPassword, err := h.box.Open(e.ReplicationPassword)
	if err != nil {
		b.Fatal(err)
	}
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		b.Fatal(err)
	}
	runAs, err := pgexec.DefaultRunAs()
	if err != nil {
		b.Fatal(err)
	}
	r := &rawCluster{b: b, bin: bin, runAs: runAs}
	b.Cleanup(r.remove)

	var raw, pgdeck time.Duration
	b.StopTimer()
	for i := 0; i < b.N; i++ {
		// Raw: the same steps by hand, through a slot of their own.
		port := h.freePort()
		r.prepare(filepath.Join(h.root, fmt.Sprintf("rawreplica%d", i)), port)
		os.Remove(r.data) // pg_basebackup makes it
		h.superSQL(primary("bench"), "SELECT pg_create_physical_replication_slot('raw_slot')")
		conninfo := fmt.Sprintf("host=127.0.0.1 port=%d user=%s password=%s application_name=raw", *e.Port, e.ReplicationUser, replPassword)
		start := time.Now()
		r.runEnv(false, []string{"PGHOST=127.0.0.1", "PGPORT=" + strconv.Itoa(*e.Port), "PGUSER=" + e.ReplicationUser, "PGPASSWORD=" + replPassword},
			"pg_basebackup", "--checkpoint=fast", "--wal-method=stream", "--slot=raw_slot", "-D", r.data)
		conf := fmt.Sprintf("port = %d\nunix_socket_directories = '%s'\nlisten_addresses = '127.0.0.1'\nprimary_conninfo = '%s'\nprimary_slot_name = 'raw_slot'\n", port, r.sock, conninfo)
		writeAs(b, runAs, filepath.Join(r.data, "postgresql.auto.conf"), conf)
		writeAs(b, runAs, filepath.Join(r.data, "standby.signal"), "")
		r.run(true, "pg_ctl", "start", "-w", "-t", "60", "-D", r.data, "-l", filepath.Join(r.dir, "postgresql.log"))
		for {
			out := r.runEnv(false, nil, "psql", "-X", "-A", "-t", "-d", "postgres", "-c", "SELECT coalesce((SELECT status FROM pg_stat_wal_receiver), '')")
			if strings.TrimSpace(string(out)) == "streaming" {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		raw += time.Since(start)
		r.remove()
		h.superSQL(primary("bench"), "SELECT pg_drop_replication_slot('raw_slot')")

		// pgdeck: the deploy_replica job.
		start = time.Now()
		j := h.enqueue("bench", provisioner.KindDeployReplica)
		h.runOne()
		pgdeck += time.Since(start)
		h.wantSucceeded(h.job(j.ID))
		if i == b.N-1 {
			b.Logf("steps of the last replica deploy: %s", stepDurations(b, h, j.ID))
		}
		h.succeed("bench", provisioner.KindRemoveReplica)
	}
	n := float64(b.N)
	b.ReportMetric(float64(raw.Milliseconds())/n, "raw-ms/op")
	b.ReportMetric(float64(pgdeck.Milliseconds())/n, "pgdeck-ms/op")
	b.ReportMetric(float64(pgdeck)/float64(raw), "x-raw")
	b.ReportMetric(0, "ns/op")
}

// writeAs writes a file owned by the run-as user.
func writeAs(b *testing.B, runAs pgexec.RunAs, path, text string) {
	b.Helper()
	if err := os.WriteFile(path, []byte(text), 0o600); err != nil {
		b.Fatal(err)
	}
	if runAs.Set {
		if err := os.Chown(path, runAs.UID, runAs.GID); err != nil {
			b.Fatal(err)
		}
	}
}
