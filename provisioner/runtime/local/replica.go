package local

import (
	"errors"
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

// checkInit refuses a PostgreSQL spec whose role, init and program do not
// go together: a primary is made by initdb, a replica by a base backup
// from another PostgreSQL instance, and both run postgres.
func checkInit(spec runtime.Spec) error {
	id, in := spec.ID, spec.Init
	if spec.Program != runtime.ProgramPostgres {
		return fmt.Errorf("a %s runs postgres, not program %q", id.Role, spec.Program)
	}
	switch id.Role {
	case runtime.RolePrimary:
		if in.Kind != runtime.InitDB {
			return fmt.Errorf("a primary is made by initdb (init %q), not init %q", runtime.InitDB, in.Kind)
		}
		if in.From != (runtime.InstanceID{}) || in.Slot != "" || in.User != "" || in.Password != "" || in.Progress != nil {
			return errors.New("init From, Slot, User, Password and Progress apply only to a base backup (a replica)")
		}
		return nil
	case runtime.RoleReplica:
		if in.Kind != runtime.InitBaseBackup {
			return fmt.Errorf("a replica is made by a base backup (init %q), not init %q", runtime.InitBaseBackup, in.Kind)
		}
	default:
		return fmt.Errorf("role %q is not supported", id.Role)
	}
	switch {
	case in.From == (runtime.InstanceID{}):
		return errors.New("a replica needs init From: the instance it copies and streams from")
	case in.From.Validate() != nil:
		return fmt.Errorf("init From: %w", in.From.Validate())
	case in.From == id:
		return errors.New("a replica cannot stream from itself")
	case in.From.Role == runtime.RolePooler || in.From.Role == runtime.RoleReplicaPooler:
		return fmt.Errorf("a replica streams from a PostgreSQL instance, not the pooler %s", in.From)
	case in.Slot == "":
		return errors.New("a replica needs init Slot: the primary's physical replication slot")
	case in.User == "":
		return errors.New("a replica needs init User: the primary's replication role")
	case in.Password == "":
		return errors.New("a replica needs init Password: the replication role's password")
	}
	return nil
}

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
