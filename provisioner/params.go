package provisioner

import "pgdeck/provisioner/render"

// DeployParams are a deploy's or redeploy's parameters: a snapshot, taken
// when the job is queued, of the settings it applies, so that a save made
// while it waits or runs is applied whole by the next redeploy, never half
// by this one.
type DeployParams struct {
	// Settings is nil for a job queued before jobs carried parameters: the
	// job then snapshots the settings when it runs.
	Settings *DeploySettings `json:"settings,omitempty"`
}

// DeploySettings is what a deploy reads of an environment's settings.
type DeploySettings struct {
	// PostgreSQLConf is the primary's postgresql.conf values.
	PostgreSQLConf map[string]string `json:"postgresql_conf"`
	// PgBouncer is the pooler's settings; nil (a job queued before pooling
	// existed) or not Enabled: no pooler.
	PgBouncer *render.PoolerSettings `json:"pgbouncer,omitempty"`
	// ReadReplica prepares the primary for a streaming replica (its
	// replication role, pg_hba line and max_slot_wal_keep_size); the
	// replica itself is made by a deploy_replica job.
	ReadReplica bool `json:"read_replica,omitempty"`
}

// BackupParams are a backup job's parameters.
type BackupParams struct {
	// Kind is why it is taken: manual (the default), scheduled,
	// pre-restore, pre-delete.
	Kind string `json:"kind"`
	// Format is "zip" (Odoo's, the default) or "dump" (pg_dump's custom
	// format).
	Format string `json:"format,omitempty"`
}

// RestoreParams are a restore job's parameters: which backup goes into the
// job's environment (Target names it again, for the log).
type RestoreParams struct {
	BackupID int64  `json:"backup_id"`
	Target   string `json:"target"`
	// Neutralize disables outgoing mail servers and crons in the copy.
	Neutralize bool `json:"neutralize,omitempty"`
}
