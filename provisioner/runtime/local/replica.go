package local

import (
	"fmt"
	"path/filepath"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// A replica instance is a PostgreSQL instance like a primary, in
// Root/<env>/replica, whose data folder pg_basebackup copied from its
// primary and whose pgdeck.conf makes it a hot standby streaming from the
// primary through a replication slot. The replication password is kept in
// replicaPassFile only, which primary_conninfo names.

// replicaPassFile is the replica's libpq password file, in its instance
// folder (outside the data folder, so that a base backup of the replica
// never carries it).
const replicaPassFile = "primary.pgpass"

// standbyOptions returns what pgexec needs to copy and run a replica: its
// primary's peer address (which must exist and differ from the replica's
// port), the replication role, the slot, the application name <env>_replica
// under which the primary lists it in pg_stat_replication, and its passfile.
func (r *Runtime) standbyOptions(spec runtime.Spec) (*pgexec.StandbyOptions, error) {
	in := spec.Init
	host, port := r.PeerAddress(in.From)
	if port == 0 {
		return nil, fmt.Errorf("the replica's primary %s does not exist (or has no readable port)", in.From)
	}
	if port == spec.Port {
		return nil, fmt.Errorf("port %d is the primary %s's port", port, in.From)
	}
	return &pgexec.StandbyOptions{
		Host:            host,
		Port:            port,
		User:            in.User,
		Password:        in.Password,
		Slot:            in.Slot,
		ApplicationName: runtime.ReplicaApplicationName(spec.ID.Env),
		PassFile:        filepath.Join(r.InstanceDir(spec.ID), replicaPassFile),
		Progress:        in.Progress,
	}, nil
}
