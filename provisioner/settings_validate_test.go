package provisioner_test

import (
	"errors"
	"maps"
	"strings"
	"testing"
	"time"

	"pgdeck/provisioner"
	"pgdeck/store"
)

func ptr[T any](v T) *T { return &v }

// deployedEnv is an environment on plan, deployed an hour ago.
func deployedEnv(plan string) store.Environment {
	at := time.Now().Add(-time.Hour)
	return store.Environment{ID: 1, Name: "shop", OdooVersion: "18.0", Plan: plan, DeployedAt: &at}
}

func TestApplySettingsUpdate(t *testing.T) {
	params := func(kv ...string) map[string]*string {
		m := map[string]*string{}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = ptr(kv[i+1])
		}
		return m
	}
	// Rows as a PostgreSQL server reports them, narrower than 15's own.
	server := map[string]store.ServerSetting{
		"max_connections": {Value: "200", Setting: "200", VarType: "integer", MinVal: "1", MaxVal: "500", Context: "postmaster"},
		// A row pgdeck cannot read: PostgreSQL 15's row is used instead.
		"work_mem": {Value: "4MB", Setting: "4096", VarType: "integer", Unit: "furlong", MinVal: "64", MaxVal: "2147483647", Context: "user"},
	}
	cases := []struct {
		name   string
		plan   string
		saved  store.DatabaseSettings
		update provisioner.SettingsUpdate
		server map[string]store.ServerSetting
		// want is the saved settings after the update (when no error).
		wantParams map[string]string
		wantPool   store.PoolerSettings
		wantRR     bool
		// fields are the messages expected, by key, as substrings; gate the
		// plan gate's feature.
		fields map[string]string
		gate   string
	}{
		{name: "a valid override", plan: "pro",
			update:     provisioner.SettingsUpdate{Parameters: params("work_mem", "8MB")},
			wantParams: map[string]string{"work_mem": "8MB"}},
		{name: "stored canonical", plan: "pro",
			update:     provisioner.SettingsUpdate{Parameters: params("work_mem", " 8 MB ", "random_page_cost", "1.5")},
			wantParams: map[string]string{"work_mem": "8MB", "random_page_cost": "1.5"}},
		{name: "equal to the recommendation is kept as given", plan: "pro",
			update:     provisioner.SettingsUpdate{Parameters: params("work_mem", "5041kB")},
			wantParams: map[string]string{"work_mem": "5041kB"}},
		{name: "null resets", plan: "pro",
			saved:      store.DatabaseSettings{Parameters: map[string]string{"work_mem": "8MB", "max_connections": "150"}},
			update:     provisioner.SettingsUpdate{Parameters: map[string]*string{"work_mem": nil}},
			wantParams: map[string]string{"max_connections": "150"}},
		{name: "an empty form field resets", plan: "pro",
			saved:      store.DatabaseSettings{Parameters: map[string]string{"work_mem": "8MB"}},
			update:     provisioner.SettingsUpdate{Parameters: params("work_mem", "  ")},
			wantParams: map[string]string{}},
		{name: "an update leaves the other overrides", plan: "pro",
			saved:      store.DatabaseSettings{Parameters: map[string]string{"max_connections": "150"}},
			update:     provisioner.SettingsUpdate{Parameters: params("work_mem", "8MB")},
			wantParams: map[string]string{"max_connections": "150", "work_mem": "8MB"}},
		{name: "an IEC unit", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "8 MiB")},
			fields: map[string]string{"parameters.work_mem": `"MiB" is not a unit PostgreSQL knows: use kB, MB or GB (e.g. 8MB)`}},
		{name: "units are case-sensitive", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "8mb")},
			fields: map[string]string{"parameters.work_mem": "Units are case-sensitive"}},
		{name: "a size without a unit", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("shared_buffers", "4096")},
			fields: map[string]string{"parameters.shared_buffers": "Add a unit"}},
		{name: "a unit where none belongs", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("max_connections", "200MB")},
			fields: map[string]string{"parameters.max_connections": "Takes a plain number without a unit"}},
		{name: "above PostgreSQL's maximum", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "10TB")},
			fields: map[string]string{"parameters.work_mem": "10TB is above PostgreSQL's maximum of 2147483647kB."}},
		{name: "below PostgreSQL's minimum", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("max_connections", "0")},
			fields: map[string]string{"parameters.max_connections": "0 is below PostgreSQL's minimum of 1."}},
		{name: "the server's range is the truth", plan: "pro", server: server,
			update: provisioner.SettingsUpdate{Parameters: params("max_connections", "600")},
			fields: map[string]string{"parameters.max_connections": "600 is above PostgreSQL's maximum of 500."}},
		{name: "a server row pgdeck cannot read falls back to PostgreSQL 15's", plan: "pro", server: server,
			update:     provisioner.SettingsUpdate{Parameters: params("work_mem", "8MB")},
			wantParams: map[string]string{"work_mem": "8MB"}},
		{name: "an unknown parameter", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("fsync", "off")},
			fields: map[string]string{"parameters.fsync": `Unknown parameter "fsync": pgdeck tunes shared_buffers,`}},
		{name: "too long", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", strings.Repeat("9", 65)+"kB")},
			fields: map[string]string{"parameters.work_mem": "Use at most 64 characters."}},
		{name: "quotes", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "8MB'; DROP")},
			fields: map[string]string{"parameters.work_mem": "Quotes, backslashes and control characters are not allowed."}},
		{name: "over the plan's memory", plan: "starter",
			update: provisioner.SettingsUpdate{Parameters: params("shared_buffers", "768MB")},
			fields: map[string]string{"parameters.shared_buffers": "768MB is more than half the plan's 1GB of memory"}},
		{name: "work_mem times connections over the plan's memory", plan: "starter",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "64MB")},
			fields: map[string]string{"parameters.work_mem": "more than twice the plan's 1GB of memory"}},
		{name: "every bad field at once, nothing saved", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "8 MiB", "max_connections", "x", "random_page_cost", "1.2"),
				PgBouncer: &provisioner.PoolerUpdate{PoolMode: ptr("statement")}},
			fields: map[string]string{"parameters.work_mem": "MiB", "parameters.max_connections": "Takes a whole number",
				"pgbouncer.pool_mode": "Use session or transaction."}},

		{name: "PgBouncer on, pro", plan: "pro",
			update:     provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{Enabled: ptr(true), PoolSize: ptr(30)}},
			wantParams: map[string]string{},
			wantPool:   store.PoolerSettings{Enabled: true, PoolSize: 30}},
		{name: "PgBouncer's other fields stay", plan: "pro",
			saved:      store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true, PoolSize: 30, PoolMode: "session"}},
			update:     provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{MaxClientConn: ptr(200)}},
			wantParams: map[string]string{},
			wantPool:   store.PoolerSettings{Enabled: true, PoolSize: 30, PoolMode: "session", MaxClientConn: 200}},
		{name: "pool size 0 is not the default", plan: "pro",
			update: provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{PoolSize: ptr(0)}},
			fields: map[string]string{"pgbouncer.pool_size": "Use 1 to 177 (max_connections 200 leaves 177"}},
		{name: "pool larger than max_connections leaves", plan: "pro",
			update: provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{Enabled: ptr(true), PoolSize: ptr(178), MaxClientConn: ptr(500)}},
			fields: map[string]string{"pgbouncer.pool_size": "Use 1 to 177"}},
		{name: "pool checked against the max_connections being saved", plan: "pro",
			update: provisioner.SettingsUpdate{Parameters: params("max_connections", "150"),
				PgBouncer: &provisioner.PoolerUpdate{Enabled: ptr(true), PoolSize: ptr(150), MaxClientConn: ptr(500)}},
			fields: map[string]string{"pgbouncer.pool_size": "Use 1 to 127 (max_connections 150"}},
		{name: "lowering max_connections under PgBouncer's pool", plan: "pro",
			saved:  store.DatabaseSettings{PgBouncer: store.PoolerSettings{Enabled: true}},
			update: provisioner.SettingsUpdate{Parameters: params("max_connections", "30")},
			fields: map[string]string{"pgbouncer.pool_size": "Use 1 to 7"}},
		{name: "lowering max_connections with PgBouncer off", plan: "pro",
			update:     provisioner.SettingsUpdate{Parameters: params("max_connections", "30")},
			wantParams: map[string]string{"max_connections": "30"}},
		{name: "max_client_conn under the pool", plan: "pro",
			update: provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{PoolSize: ptr(30), MaxClientConn: ptr(10)}},
			fields: map[string]string{"pgbouncer.max_client_conn": "Use at least the pool size (30)"}},
		{name: "max_client_conn too large", plan: "pro",
			update: provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{MaxClientConn: ptr(1 << 40)}},
			fields: map[string]string{"pgbouncer.max_client_conn": "Use 1 to 10000."}},

		{name: "PgBouncer on, starter", plan: "starter",
			update: provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{Enabled: ptr(true)}},
			gate:   "pgbouncer"},
		{name: "PgBouncer's pool changed, starter", plan: "starter",
			update: provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{PoolSize: ptr(30)}},
			gate:   "pgbouncer"},
		{name: "PgBouncer as it is, starter", plan: "starter",
			update:     provisioner.SettingsUpdate{PgBouncer: &provisioner.PoolerUpdate{Enabled: ptr(false), PoolSize: ptr(20), PoolMode: ptr("transaction")}},
			wantParams: map[string]string{}},
		{name: "a gate comes before the fields", plan: "starter",
			update: provisioner.SettingsUpdate{Parameters: params("work_mem", "8 MiB"), PgBouncer: &provisioner.PoolerUpdate{Enabled: ptr(true)}},
			gate:   "pgbouncer"},
		{name: "read replica on, starter", plan: "starter",
			update: provisioner.SettingsUpdate{ReadReplica: ptr(true)},
			gate:   "read_replica"},
		{name: "read replica off, starter", plan: "starter",
			update:     provisioner.SettingsUpdate{ReadReplica: ptr(false)},
			wantParams: map[string]string{}},
		{name: "read replica on, enterprise", plan: "enterprise",
			update:     provisioner.SettingsUpdate{ReadReplica: ptr(true)},
			wantParams: map[string]string{}, wantRR: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			env := deployedEnv(tc.plan)
			saved := tc.saved
			saved.Parameters = maps.Clone(saved.Parameters)
			before := maps.Clone(saved.Parameters)
			got, err := provisioner.ApplySettingsUpdate(env, saved, tc.update, tc.server)
			if !maps.Equal(saved.Parameters, before) {
				t.Errorf("the saved settings were changed in place: %v, were %v", saved.Parameters, before)
			}
			var gate *provisioner.PlanGateError
			var invalid *provisioner.SettingsInvalidError
			switch {
			case tc.gate != "":
				if !errors.As(err, &gate) || gate.Field != tc.gate {
					t.Fatalf("err = %v, want the %s plan gate", err, tc.gate)
				}
				if !strings.Contains(gate.Reason, "requires the Pro plan or above") {
					t.Errorf("gate reason = %q", gate.Reason)
				}
			case tc.fields != nil:
				if !errors.As(err, &invalid) {
					t.Fatalf("err = %v, want invalid fields %v", err, tc.fields)
				}
				for k, want := range tc.fields {
					if !strings.Contains(invalid.Fields[k], want) {
						t.Errorf("fields[%s] = %q, want it to contain %q", k, invalid.Fields[k], want)
					}
				}
				if len(invalid.Fields) != len(tc.fields) {
					t.Errorf("fields = %v, want only %v", invalid.Fields, tc.fields)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !maps.Equal(got.Parameters, tc.wantParams) {
					t.Errorf("parameters = %v, want %v", got.Parameters, tc.wantParams)
				}
				if got.PgBouncer != tc.wantPool {
					t.Errorf("pgbouncer = %+v, want %+v", got.PgBouncer, tc.wantPool)
				}
				if got.ReadReplica != tc.wantRR {
					t.Errorf("read_replica = %v, want %v", got.ReadReplica, tc.wantRR)
				}
			}
		})
	}
}
