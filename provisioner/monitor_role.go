package provisioner

import (
	"context"

	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// monitorCredentials records the cluster's monitoring role and its sealed
// password (kept from an earlier deploy when there is one) and returns the
// environment as now recorded with the password in clear.
func (r *JobRun) monitorCredentials(ctx context.Context, env store.Environment) (store.Environment, string, error) {
	env, err := r.p.store.SetMonitorCredentials(ctx, env.ID, render.MonitorRole, r.p.box.Seal(randomSecret()))
	if err != nil {
		return env, "", err
	}
	password, err := r.p.box.Open(env.MonitorPassword)
	if err != nil {
		return env, "", err
	}
	return env, password, nil
}

// monitorRoleSQL creates or updates the monitoring role that health probes
// log in as: a login role (never a superuser, password stored as SCRAM)
// that is a member of pg_monitor, so it reads pg_stat_activity, database
// sizes and the replication views, and no table of Odoo's. pg_hba lets it
// reach only `postgres`; the environment's database is closed to PUBLIC.
// Run in psql on `postgres`; every statement can run twice without harm.
func monitorRoleSQL(user, password string) string {
	u := quoteIdent(user)
	return "SET password_encryption = 'scram-sha-256';\n" +
		"SELECT " + quoteLiteral("CREATE ROLE "+u) + " WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = " + quoteLiteral(user) + ")\\gexec\n" +
		"ALTER ROLE " + u + " WITH LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS PASSWORD " + quoteLiteral(password) + ";\n" +
		"GRANT pg_monitor TO " + u + ";\n"
}
