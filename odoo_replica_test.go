//go:build odoo

package main

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"pgdeck/internal/testkit"
)

// odooReplica is an environment's replica as GET …/replica shows it.
type odooReplica struct {
	Status     string   `json:"status"`
	Reason     string   `json:"reason"`
	Error      string   `json:"error"`
	LagBytes   *int64   `json:"lag_bytes"`
	LagSeconds *float64 `json:"lag_seconds"`
	Host       string   `json:"host"`
	Port       *int     `json:"port"`
}

// getReplica reads the environment's replica through the API.
func (b *odooBox) getReplica(name string) odooReplica {
	b.t.Helper()
	var r odooReplica
	if code := b.api(http.MethodGet, "/api/v1/environments/"+name+"/replica", b.token, "", &r); code != http.StatusOK {
		b.t.Fatalf("GET the replica of %s: %d %+v", name, code, r)
	}
	return r
}

// waitReplica waits until the API shows the replica with status.
func (b *odooBox) waitReplica(name, status string, timeout time.Duration) odooReplica {
	b.t.Helper()
	var r odooReplica
	testkit.Eventually(b.t, name+"'s replica shows "+status, timeout, func() (bool, string) {
		r = b.getReplica(name)
		return r.Status == status, fmt.Sprintf("%+v", r)
	})
	return r
}

// enableReplica turns Read Replica on in the settings, applies it with a
// redeploy (which prepares the primary), deploys the replica, waits for
// its job and for the monitor to show it online; it returns the replica as
// the API then shows it.
func (b *odooBox) enableReplica(name string) odooReplica {
	b.t.Helper()
	var saved struct {
		ReadReplica struct {
			Enabled bool `json:"enabled"`
		} `json:"read_replica"`
	}
	if code := b.api(http.MethodPut, "/api/v1/environments/"+name+"/database/settings", b.token,
		`{"read_replica": {"enabled": true}}`, &saved); code != http.StatusOK || !saved.ReadReplica.Enabled {
		b.t.Fatalf("PUT read_replica enabled on %s: %d %+v", name, code, saved)
	}
	b.action(name, "redeploy")
	if r := b.getReplica(name); r.Status != "not_deployed" {
		b.t.Errorf("before its deploy the replica shows %+v, want not_deployed", r)
	}
	var j crashJob
	if code := b.api(http.MethodPost, "/api/v1/environments/"+name+"/replica", b.token, "", &j); code != http.StatusAccepted || j.ID == 0 {
		b.t.Fatalf("POST the replica of %s: %d %+v", name, code, j)
	}
	if done := b.waitJob(j.ID); done.Kind != "deploy_replica" {
		b.t.Errorf("POST …/replica ran a %q job, want deploy_replica", done.Kind)
	}
	return b.waitReplica(name, "online", time.Minute)
}

// connectReplica opens a connection to the replica odoo.conf names, with
// the credentials Odoo uses for it (db_replica_user and _password fall
// back to db_user and db_password, as in odoo/sql_db.py).
func connectReplica(t *testing.T, conf map[string]string, db string) *pgx.Conn {
	t.Helper()
	rc := map[string]string{"db_host": conf["db_replica_host"], "db_port": conf["db_replica_port"],
		"db_user": conf["db_user"], "db_password": conf["db_password"]}
	if u := conf["db_replica_user"]; u != "" && u != "False" {
		rc["db_user"] = u
	}
	if p := conf["db_replica_password"]; p != "" && p != "False" {
		rc["db_password"] = p
	}
	return connectWithConf(t, rc, db)
}

// accessLine matches Odoo's werkzeug line for a JSON-RPC call_kw: with
// db_replica_host set, Odoo ends it with the cursor mode it chose (ro: a
// read-only route, tried on the replica; rw; ro->rw: retried on the
// primary after a write; odoo/netsvc.py PerfFilter, odoo/http.py
// _transactioning).
func accessLine(model, method, mode string) *regexp.Regexp {
	return regexp.MustCompile(`(?m)"POST /web/dataset/call_kw/` + regexp.QuoteMeta(model+"/"+method) +
		` HTTP/1\.1" 200 - \d+ [\d.]+ [\d.]+ ` + regexp.QuoteMeta(mode) + `$`)
}

// odooFallbackWarning is what odoo/modules/registry.py Registry.cursor logs
// when it cannot open a cursor on the replica and uses the primary instead.
const odooFallbackWarning = "WARNING " + `\S+ odoo\.modules\.registry: Failed to open a readonly cursor, falling back to read-write cursor`

// TestOdooReadsFromReplica is the real-Odoo test of the read replica: on
// an environment whose replica pgdeck deployed, Odoo 18 writes on the
// primary and serves the read-only web_search_read from the replica (seen
// in the replica's statistics and sessions); when the replica is killed,
// Odoo answers the same call from the primary and the API shows the
// replica offline.
func TestOdooReadsFromReplica(t *testing.T) {
	b := startOdooBox(t)
	e := b.createEnv("mirror")
	r := b.enableReplica("mirror")
	if r.Port == nil || r.Host == "" {
		t.Fatalf("the online replica has no address: %+v", r)
	}
	if e.Port != nil && *r.Port == *e.Port {
		t.Fatalf("the replica shares the primary's port %d", *r.Port)
	}
	conf := odooConfValues(t, e.OdooConf)
	if conf["db_replica_host"] != r.Host || conf["db_replica_port"] != strconv.Itoa(*r.Port) {
		t.Fatalf("odoo.conf db_replica_host:db_replica_port = %s:%s, want the replica's %s:%d",
			conf["db_replica_host"], conf["db_replica_port"], r.Host, *r.Port)
	}
	if conf["db_port"] == conf["db_replica_port"] {
		t.Fatalf("odoo.conf sends writes and reads to the same port %s", conf["db_port"])
	}

	// Base installs on the primary: odoo-bin -i writes through read/write
	// cursors only.
	b.installBase(e)
	odoo := startOdoo(t, b.src, b.acct, e.OdooConf)
	rpc := odoo.Client()
	if _, err := rpc.Authenticate(e.Database, "admin", "admin"); err != nil {
		t.Fatalf("sign in as admin: %v", err)
	}
	const name = "Written on the primary, read on the replica"
	var partnerID int
	if err := rpc.CallKW("res.partner", "create", []any{map[string]any{"name": name}}, nil, &partnerID); err != nil {
		t.Fatalf("create a res.partner: %v", err)
	}

	primaryDB := connectWithConf(t, conf, e.Database)
	replicaDB := connectReplica(t, conf, e.Database)
	t.Run("the write went to the primary", func(t *testing.T) {
		var got string
		if err := primaryDB.QueryRow(t.Context(), "SELECT name FROM res_partner WHERE id = $1", partnerID).Scan(&got); err != nil || got != name {
			t.Fatalf("res_partner %d on the primary: %q, %v", partnerID, got, err)
		}
		if !accessLine("res.partner", "create", "rw").MatchString(odoo.Log()) {
			t.Errorf("Odoo's log has no read/write (rw) line for create:\n%s", tail(odoo.Log(), 2000))
		}
		// The replica takes no write at all.
		_, err := replicaDB.Exec(t.Context(), "UPDATE res_partner SET name = name WHERE id = $1", partnerID)
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "25006" {
			t.Errorf("an UPDATE on the replica: %v, want read_only_sql_transaction (25006)", err)
		}
	})

	// The replica replays asynchronously (Odoo does not wait for it):
	// wait until it has replayed the create before reading.
	var lsn string
	if err := primaryDB.QueryRow(t.Context(), "SELECT pg_current_wal_lsn()::text").Scan(&lsn); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, "the replica replays the primary's WAL up to "+lsn, 30*time.Second, func() (bool, string) {
		var caught bool
		var replay string
		err := replicaDB.QueryRow(t.Context(), "SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn, pg_last_wal_replay_lsn()::text", lsn).Scan(&caught, &replay)
		return err == nil && caught, fmt.Sprintf("replayed up to %s, %v", replay, err)
	})

	// web_search_read is what Odoo's list views call; it is @api.readonly
	// (odoo/addons/web/models/models.py), so /web/dataset/call_kw serves
	// it read-only (DataSet._call_kw_readonly), on the replica when
	// odoo.conf names one (Registry.cursor(readonly=True)).
	searchRead := func() (int, []string, error) {
		var res struct {
			Length  int `json:"length"`
			Records []struct {
				ID   int    `json:"id"`
				Name string `json:"name"`
			} `json:"records"`
		}
		err := rpc.CallKW("res.partner", "web_search_read", []any{}, map[string]any{
			"domain": []any{[]any{"id", "=", partnerID}}, "specification": map[string]any{"name": map[string]any{}},
		}, &res)
		var names []string
		for _, rec := range res.Records {
			names = append(names, rec.Name)
		}
		return res.Length, names, err
	}
	// Scans of res_partner counted by the replica itself: nothing but Odoo
	// reads that table there.
	partnerScans := func() int64 {
		var n int64
		err := replicaDB.QueryRow(t.Context(), `SELECT coalesce(seq_scan, 0) + coalesce(idx_scan, 0)
			FROM pg_stat_user_tables WHERE relname = 'res_partner'`).Scan(&n)
		if err != nil {
			t.Fatalf("pg_stat_user_tables on the replica: %v", err)
		}
		return n
	}

	t.Run("web_search_read is served by the replica", func(t *testing.T) {
		before := partnerScans()
		n, names, err := searchRead()
		if err != nil || n != 1 || len(names) != 1 || names[0] != name {
			t.Fatalf("web_search_read of partner %d: %d %q, %v; want the partner written on the primary", partnerID, n, names, err)
		}
		if !accessLine("res.partner", "web_search_read", "ro").MatchString(odoo.Log()) {
			t.Errorf("Odoo's log has no read-only (ro) line for web_search_read:\n%s", tail(odoo.Log(), 2000))
		}
		// Odoo's last statement on its replica session is COMMIT, so
		// pg_stat_activity cannot show the SELECT; the table's scan
		// counters can. A backend that goes idle less than a second after
		// its last flush sends its counts only after PGSTAT_IDLE_INTERVAL
		// (10 s in PostgreSQL 15).
		testkit.Eventually(t, "the replica counts Odoo's scans of res_partner", 30*time.Second, func() (bool, string) {
			after := partnerScans()
			return after > before, fmt.Sprintf("res_partner scans on the replica: %d before the call, %d after", before, after)
		})
		// Odoo's own sessions on the replica (application_name odoo-<pid>,
		// odoo/sql_db.py connection_info_for), on the environment's
		// database, as its role.
		rows, _ := replicaDB.Query(t.Context(), `SELECT pid || ' ' || application_name || ' ' || coalesce(state, '') || ': ' || query
			FROM pg_stat_activity WHERE datname = $1 AND usename = $2 AND application_name = $3 AND pid <> pg_backend_pid()`,
			e.Database, conf["db_user"], fmt.Sprintf("odoo-%d", odoo.cmd.Process.Pid))
		sessions, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil || len(sessions) == 0 {
			t.Fatalf("Odoo (pid %d) holds no session on the replica: %q, %v", odoo.cmd.Process.Pid, sessions, err)
		}
		t.Logf("Odoo's sessions on the replica: %q", sessions)
	})

	t.Run("with the replica killed Odoo reads from the primary", func(t *testing.T) {
		replicaData := filepath.Join(b.data, "envs", "mirror", "replica", "pgdata")
		pid, err := strconv.Atoi(strings.SplitN(readFile(filepath.Join(replicaData, "postmaster.pid")), "\n", 2)[0])
		if err != nil || !testkit.Alive(pid) {
			t.Fatalf("the replica's postmaster.pid in %s: %d, %v", replicaData, pid, err)
		}
		logBefore := len(odoo.Log())
		if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		// Its backends (Odoo's pooled connections among them) exit when
		// they see the postmaster gone.
		testkit.Eventually(t, "the replica's processes exit", 30*time.Second, func() (bool, string) {
			left := testkit.PostgresUnder(replicaData)
			return len(left) == 0, fmt.Sprintf("left: %v", left)
		})
		for i := range 2 {
			n, names, err := searchRead()
			if err != nil || n != 1 || len(names) != 1 || names[0] != name {
				t.Fatalf("web_search_read %d after the replica was killed: %d %q, %v; Odoo's log:\n%s", i+1, n, names, err, tail(odoo.Log(), 3000))
			}
		}
		since := odoo.Log()[logBefore:]
		// Registry.cursor catches the OperationalError of the replica,
		// logs one warning and serves read-only requests from the primary
		// until Odoo restarts: the second call does not try the replica.
		if got := len(regexp.MustCompile(`(?m)`+odooFallbackWarning).FindAllString(since, -1)); got != 1 {
			t.Errorf("after the kill Odoo logged the fallback warning %d times, want once:\n%s", got, since)
		}
		if got := len(accessLine("res.partner", "web_search_read", "ro").FindAllString(since, -1)); got != 2 {
			t.Errorf("after the kill Odoo logged %d read-only web_search_read lines, want 2:\n%s", got, since)
		}
		off := b.waitReplica("mirror", "offline", 30*time.Second)
		t.Logf("the API's replica after the kill: status %s, reason %q, error %q", off.Status, off.Reason, off.Error)
	})

	if errs := odooErrors(odoo.Log()); len(errs) > 0 {
		t.Errorf("Odoo logged errors:\n%s", strings.Join(errs, "\n"))
	}
	odoo.Stop()
	b.deleteEnv("mirror")
	if pids := testkit.PostgresUnder(filepath.Join(b.data, "envs")); len(pids) > 0 {
		t.Errorf("the environment's PostgreSQL processes outlived its delete: %v", pids)
	}
}
