package provisioner_test

import (
	"bytes"
	"strings"
	"testing"

	"pgdeck/provisioner"
)

// TestDeployMakesTheMonitoringRole: the deploy makes a pg_monitor role with
// its own sealed password that reaches only `postgres`; an environment
// deployed before it existed gets it on its next redeploy.
func TestDeployMakesTheMonitoringRole(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("shop")
	if e.MonitorUser != "pgdeck_monitor" {
		t.Fatalf("monitor_user = %q, want pgdeck_monitor", e.MonitorUser)
	}
	pw, err := h.box.Open(e.MonitorPassword)
	if err != nil {
		t.Fatal(err)
	}
	if len(pw) < 32 || pw == h.password(e) || bytes.Contains(e.MonitorPassword, []byte(pw)) {
		t.Errorf("monitoring password: %d chars, shared with Odoo's %v, stored in clear %v",
			len(pw), pw == h.password(e), bytes.Contains(e.MonitorPassword, []byte(pw)))
	}

	conn, err := connect(ctx, *e.Port, "postgres", e.MonitorUser, pw)
	if err != nil {
		t.Fatalf("the monitoring role cannot reach postgres: %v", err)
	}
	defer conn.Close(ctx)
	var super, monitor bool
	var replicas int
	err = conn.QueryRow(ctx, `SELECT rolsuper, pg_has_role(current_user, 'pg_monitor', 'MEMBER'),
			(SELECT count(*) FROM pg_stat_replication)::int
		FROM pg_roles WHERE rolname = current_user`).Scan(&super, &monitor, &replicas)
	if err != nil || super || !monitor {
		t.Errorf("monitoring role: superuser %v, pg_monitor %v, %v", super, monitor, err)
	}
	if c, err := connect(ctx, *e.Port, e.DBName, e.MonitorUser, pw); err == nil {
		c.Close(ctx)
		t.Error("the monitoring role reached the environment's database")
	}
	out, err := h.rt.Exec(ctx, primary("shop"), nil, "psql", "-X", "-qAt", "-d", "postgres", "-c",
		"SELECT rolpassword LIKE 'SCRAM-SHA-256$%' FROM pg_authid WHERE rolname = 'pgdeck_monitor'")
	if err != nil || strings.TrimSpace(string(out)) != "t" {
		t.Errorf("the monitoring role's password is not SCRAM: %q, %v", out, err)
	}

	t.Run("redeploy keeps it, and makes it where it is missing", func(t *testing.T) {
		// As an environment deployed before the monitoring role existed.
		if _, err := h.rt.Exec(ctx, primary("shop"), nil, "psql", "-X", "-q", "-d", "postgres", "-c", "DROP ROLE pgdeck_monitor"); err != nil {
			t.Fatal(err)
		}
		if _, err := h.st.Pool.Exec(ctx, "UPDATE environments SET monitor_user = '', monitor_password = NULL WHERE id = $1", e.ID); err != nil {
			t.Fatal(err)
		}
		h.succeed("shop", provisioner.KindRedeploy)
		after := h.env("shop")
		pw2, err := h.box.Open(after.MonitorPassword)
		if err != nil || after.MonitorUser != "pgdeck_monitor" {
			t.Fatalf("after redeploy: %q, %v", after.MonitorUser, err)
		}
		c, err := connect(ctx, *after.Port, "postgres", after.MonitorUser, pw2)
		if err != nil {
			t.Fatalf("after redeploy the monitoring role cannot connect: %v", err)
		}
		c.Close(ctx)
		h.succeed("shop", provisioner.KindRedeploy)
		if again := h.env("shop"); !bytes.Equal(again.MonitorPassword, after.MonitorPassword) {
			t.Error("a second redeploy changed the monitoring role's password")
		}
	})
}
