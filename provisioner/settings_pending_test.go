package provisioner_test

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"

	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/store"
)

func TestPendingChanges(t *testing.T) {
	// snapshot is what a deploy of saved on plan records, changed by edit.
	snapshot := func(plan string, saved store.DatabaseSettings, edit func(*provisioner.DeploySettings)) json.RawMessage {
		d, err := provisioner.ResolveSettings(deployedEnv(plan), saved)
		if err != nil {
			t.Fatal(err)
		}
		if edit != nil {
			edit(&d)
		}
		b, err := json.Marshal(d)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	notDeployed := deployedEnv("pro")
	notDeployed.DeployedAt = nil

	cases := []struct {
		name  string
		env   store.Environment
		saved store.DatabaseSettings
		want  []provisioner.PendingChange
	}{
		{name: "not deployed: its first deploy applies everything", env: notDeployed,
			saved: store.DatabaseSettings{Parameters: map[string]string{"work_mem": "8MB"}, PgBouncer: store.PoolerSettings{Enabled: true}}},
		{name: "an override equal to the recommendation", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Parameters: map[string]string{"work_mem": "5041kB", "shared_buffers": "1024MB"},
				Applied: snapshot("pro", store.DatabaseSettings{}, nil)}},
		{name: "values compared by meaning", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Parameters: map[string]string{"shared_buffers": "1GB", "random_page_cost": "1.10"},
				Applied: snapshot("pro", store.DatabaseSettings{}, func(d *provisioner.DeploySettings) {
					d.PostgreSQLConf["shared_buffers"] = "1048576kB"
				})}},
		{name: "applied, then saved again", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{
				Parameters: map[string]string{"work_mem": "8MB", "shared_buffers": "1536MB", "max_connections": "150"},
				Applied:    snapshot("pro", store.DatabaseSettings{Parameters: map[string]string{"work_mem": "8MB"}}, nil)},
			// In the panel's order; restart for postmaster parameters.
			want: []provisioner.PendingChange{
				{Name: "shared_buffers", Old: "1GB", New: "1536MB", Restart: true},
				{Name: "max_connections", Old: "200", New: "150", Restart: true}}},
		{name: "a reset", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Applied: snapshot("pro", store.DatabaseSettings{Parameters: map[string]string{"work_mem": "8MB"}}, nil)},
			want:  []provisioner.PendingChange{{Name: "work_mem", Old: "8MB", New: "5041kB"}}},
		{name: "a parameter the last deploy did not set", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Applied: snapshot("pro", store.DatabaseSettings{}, func(d *provisioner.DeploySettings) {
				delete(d.PostgreSQLConf, "effective_io_concurrency")
			})},
			want: []provisioner.PendingChange{{Name: "effective_io_concurrency", Old: "", New: "200"}}},
		{name: "a parameter pgdeck no longer sets", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Applied: snapshot("pro", store.DatabaseSettings{}, func(d *provisioner.DeploySettings) {
				d.PostgreSQLConf["log_min_duration_statement"] = "1s"
			})},
			want: []provisioner.PendingChange{{Name: "log_min_duration_statement", Old: "1s", New: ""}}},
		{name: "PgBouncer turned on with the defaults", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true}, Applied: snapshot("pro", store.DatabaseSettings{}, nil)},
			want:  []provisioner.PendingChange{{Name: "pgbouncer.enabled", Old: "off", New: "on"}}},
		{name: "PgBouncer turned on with its own pool", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true, PoolSize: 30, PoolMode: "session", MaxClientConn: 200},
				Applied: snapshot("pro", store.DatabaseSettings{}, nil)},
			want: []provisioner.PendingChange{
				{Name: "pgbouncer.enabled", Old: "off", New: "on"},
				{Name: "pgbouncer.pool_size", Old: "20", New: "30"},
				{Name: "pgbouncer.pool_mode", Old: "transaction", New: "session"},
				{Name: "pgbouncer.max_client_conn", Old: "100", New: "200"}}},
		{name: "PgBouncer's pool changed while it runs", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true, PoolSize: 40},
				Applied: snapshot("pro", store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true, PoolSize: 30}}, nil)},
			want: []provisioner.PendingChange{{Name: "pgbouncer.pool_size", Old: "30", New: "40"}}},
		{name: "PgBouncer turned off: its pool no longer matters", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{PgBouncer: store.PoolerSettings{PoolSize: 40},
				Applied: snapshot("pro", store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true, PoolSize: 30}}, nil)},
			want: []provisioner.PendingChange{{Name: "pgbouncer.enabled", Old: "on", New: "off"}}},
		{name: "a snapshot from before pooling", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Applied: snapshot("pro", store.DatabaseSettings{}, func(d *provisioner.DeploySettings) { d.PgBouncer = nil })}},
		{name: "PgBouncer saved on but the plan does not allow it", env: deployedEnv("starter"),
			saved: store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true}, Applied: snapshot("starter", store.DatabaseSettings{}, nil)}},
		{name: "read replica turned on", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{ReadReplica: true, Applied: snapshot("pro", store.DatabaseSettings{}, nil)},
			want: []provisioner.PendingChange{{Name: "max_slot_wal_keep_size", Old: "", New: "5GB"},
				{Name: "read_replica.enabled", Old: "off", New: "on"}}},
		{name: "read replica applied, then turned off", env: deployedEnv("pro"),
			saved: store.DatabaseSettings{Applied: snapshot("pro", store.DatabaseSettings{ReadReplica: true}, nil)},
			want: []provisioner.PendingChange{{Name: "max_slot_wal_keep_size", Old: "5GB", New: ""},
				{Name: "read_replica.enabled", Old: "on", New: "off"}}},
		{name: "read replica saved on but the plan does not allow it", env: deployedEnv("starter"),
			saved: store.DatabaseSettings{ReadReplica: true, Applied: snapshot("starter", store.DatabaseSettings{}, nil)}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := provisioner.PendingChanges(tc.env, tc.saved)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("pending =\n%v\nwant\n%v", fmt.Sprint(got), fmt.Sprint(tc.want))
			}
		})
	}

	// An environment deployed before snapshots runs what every deploy
	// wrote then (render.PrimaryConf): the plan's tuning is pending.
	t.Run("deployed before snapshots", func(t *testing.T) {
		got, err := provisioner.PendingChanges(deployedEnv("pro"), store.DatabaseSettings{Parameters: map[string]string{"work_mem": "8MB"}})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []provisioner.PendingChange{
			{Name: "shared_buffers", Old: "128MB", New: "1GB", Restart: true},
			{Name: "work_mem", Old: "", New: "8MB"},
			{Name: "max_connections", Old: "100", New: "200", Restart: true},
		} {
			if !slices.Contains(got, want) {
				t.Errorf("pending %v lacks %v", got, want)
			}
		}
		for _, c := range got {
			if c.Name == "password_encryption" || c.Name == "log_line_prefix" {
				t.Errorf("pending lists %s, which every deploy sets alike", c.Name)
			}
		}
	})

	t.Run("an unreadable snapshot", func(t *testing.T) {
		_, err := provisioner.PendingChanges(deployedEnv("pro"), store.DatabaseSettings{Applied: json.RawMessage(`[1]`)})
		if err == nil {
			t.Fatal("no error for a snapshot that is not an object")
		}
	})
}

func TestSameValue(t *testing.T) {
	cases := []struct {
		name, a, b string
		same       bool
	}{
		{"shared_buffers", "128MB", "131072kB", true},
		{"shared_buffers", "1GB", "1024MB", true},
		{"shared_buffers", "1GB", "1025MB", false},
		{"work_mem", "4MB", "4096kB", true},
		{"work_mem", "4MB", "8MB", false},
		{"random_page_cost", "1.1", "1.10", true},
		{"checkpoint_completion_target", "0.9", "0.90", true},
		{"max_connections", "100", "100", true},
		{"max_connections", "100", "101", false},
		{"min_wal_size", "1GB", "1024MB", true},
		// Not tuned, or unreadable: as text.
		{"log_line_prefix", "%m", "%m ", false},
		{"work_mem", "lots", "lots", true},
		{"work_mem", "lots", "4MB", false},
	}
	for _, tc := range cases {
		if got := provisioner.SameValue(tc.name, tc.a, tc.b); got != tc.same {
			t.Errorf("SameValue(%s, %q, %q) = %v, want %v", tc.name, tc.a, tc.b, got, tc.same)
		}
	}
	// The recommendation reads the same as itself in any unit.
	for _, p := range render.Recommend(render.Resources{Memory: 4 * render.GiB, CPUs: 2, Storage: 50 * render.GiB}) {
		if !provisioner.SameValue(p.Name, p.Value, p.Value) {
			t.Errorf("%s %s differs from itself", p.Name, p.Value)
		}
	}
}
