package web

import (
	"strings"
	"testing"
)

func TestExplain(t *testing.T) {
	const logLines = "2025-01-02 10:00:00.000 UTC [41] LOG: database system is ready to accept connections | 2025-01-02 10:00:01.000 UTC [41] LOG: listening on Unix socket \"/tmp/x/.s.PGSQL.5433\""
	tests := []struct {
		name             string
		status, reason   string
		headline, advice string
		// detailHas are substrings the detail must carry; nil: no detail.
		detailHas []string
	}{
		{name: "running has nothing to explain", status: "running"},
		{name: "stopped on purpose", status: "stopped"},
		{name: "another status keeps its words", status: "deploying", reason: "initdb",
			headline: "initdb"},
		{name: "stale postmaster.pid while it should run",
			status: "error", reason: "should be running but is not: postmaster is not running (stale postmaster.pid, last log: " + logLines + ")",
			headline: "The database stopped unexpectedly", advice: "Restart the environment; if it fails again, read the log below.",
			detailHas: []string{"postmaster is not running (stale postmaster.pid)\nLast lines of the server log:\n",
				"ready to accept connections\n", `.s.PGSQL.5433"`}},
		{name: "stale postmaster.pid while stopped",
			status: "error", reason: "postmaster is not running (stale postmaster.pid, last log: empty)",
			headline: "The database stopped unexpectedly", advice: "Start the environment; if it fails again, read the log below.",
			detailHas: []string{"(stale postmaster.pid)\nThe server log is empty."}},
		{name: "postmaster runs, socket fails",
			status: "error", reason: "should be running but is not: postmaster (pid 4242) runs but pg_isready: no response; last log: " + logLines,
			headline: "The database is running but does not answer", advice: "Restart the environment; if it fails again, read the log below.",
			detailHas: []string{"postmaster (pid 4242) runs but pg_isready: no response\n", "LOG: listening"}},
		{name: "its server is offline",
			status: "error", reason: "server dock-2 is offline: Cannot connect to the Docker daemon at unix:///run/d.sock",
			headline:  "Server dock-2, where this environment lives, is offline",
			advice:    "pgdeck cannot reach its Docker engine. Check that the engine runs and answers; the Servers page shows the server's status.",
			detailHas: []string{"Cannot connect to the Docker daemon"}},
		{name: "stopped while it should run",
			status: "error", reason: "should be running but is not: it is stopped",
			headline: "The database is stopped but should be running", advice: "Restart the environment; if it stops again, read the log of its last job.",
			detailHas: []string{"it is stopped"}},
		{name: "instance missing",
			status: "error", reason: "should be running but is not: its instance does not exist",
			headline: "The database's files are missing", advice: "Redeploy the environment to create it again, then restore a backup if data was lost.",
			detailHas: []string{"does not exist"}},
		{name: "wrong password",
			status: "error", reason: `runs but does not answer: cannot connect: failed to connect to ` + "`user=odoo database=shop`" + `: 127.0.0.1:5433 (127.0.0.1): server error: FATAL: password authentication failed for user "odoo" (SQLSTATE 28P01)`,
			headline: "pgdeck cannot log in to the database", advice: "Redeploy the environment to reset its roles and access rules.",
			detailHas: []string{"SQLSTATE 28P01"}},
		{name: "no pg_hba line",
			status: "error", reason: `runs but does not answer: cannot connect: server error: FATAL: no pg_hba.conf entry for host "127.0.0.1" (SQLSTATE 28000)`,
			headline: "pgdeck cannot log in to the database", advice: "Redeploy the environment to reset its roles and access rules."},
		{name: "too many connections",
			status: "error", reason: `runs but does not answer: cannot connect: server error: FATAL: sorry, too many clients already (SQLSTATE 53300)`,
			headline: "The database accepts no more connections", advice: "Close idle connections or raise max_connections; restarting the environment frees them."},
		{name: "runs, refuses the connection",
			status: "error", reason: `runs but does not answer: cannot connect: dial tcp 127.0.0.1:5433: connect: connection refused`,
			headline: "The database is running but does not answer", advice: "Restart the environment; if it fails again, read the detail below.",
			detailHas: []string{"connection refused"}},
		{name: "cannot connect, runtime cannot tell",
			status: "error", reason: "cannot connect: dial tcp: i/o timeout; the runtime cannot tell why: permission denied",
			headline: "pgdeck cannot reach the database", advice: "Check that the host the database runs on is up; the detail below says what failed."},
		{name: "cannot connect while out of time",
			status: "error", reason: "cannot connect: context deadline exceeded",
			headline: "pgdeck cannot connect to the database", advice: "Restart the environment; if it fails again, read the detail below."},
		{name: "timeout",
			status: "error", reason: "health check timed out after 2s",
			headline: "The database is too slow to answer", advice: "It may be overloaded or stuck. If this lasts, restart the environment.",
			detailHas: []string{"timed out after 2s"}},
		{name: "sealed password unreadable",
			status: "error", reason: "runs but does not answer: cannot open the stored password of odoo: message authentication failed",
			headline: "pgdeck cannot read the database's password", advice: "Check that pgdeck runs with the secret key it had when the environment was deployed."},
		{name: "unknown, should run",
			status: "error", reason: "should be running but is not: something new",
			headline: "The database is not running", advice: "Restart the environment; if it fails again, read the log below."},
		{name: "unknown",
			status: "error", reason: "data directory has wrong ownership",
			headline: "The database has a problem", advice: "Read the detail below; restarting the environment often helps.",
			detailHas: []string{"data directory has wrong ownership"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := Explain(tt.status, tt.reason)
			if e.Headline != tt.headline || e.Advice != tt.advice {
				t.Errorf("Explain = %q / %q, want %q / %q", e.Headline, e.Advice, tt.headline, tt.advice)
			}
			if tt.detailHas == nil && tt.status != "error" && e.Detail != "" {
				t.Errorf("detail = %q, want none", e.Detail)
			}
			for _, s := range tt.detailHas {
				if !strings.Contains(e.Detail, s) {
					t.Errorf("detail = %q, want it to contain %q", e.Detail, s)
				}
			}
			if strings.Contains(e.Detail, " | ") {
				t.Errorf("detail = %q still joins log lines with |", e.Detail)
			}
		})
	}
}
