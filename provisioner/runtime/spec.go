package runtime

import (
	"errors"
	"fmt"
)

// CheckInit refuses a PostgreSQL spec whose role, init and program do not
// go together: a primary is made by initdb, a replica by a base backup from
// another PostgreSQL instance of its own environment, and both run
// postgres. Every runtime checks specs with it.
func CheckInit(spec Spec) error {
	id, in := spec.ID, spec.Init
	if spec.Program != ProgramPostgres {
		return fmt.Errorf("a %s runs postgres, not program %q", id.Role, spec.Program)
	}
	switch id.Role {
	case RolePrimary:
		if in.Kind != InitDB {
			return fmt.Errorf("a primary is made by initdb (init %q), not init %q", InitDB, in.Kind)
		}
		if in.From != (InstanceID{}) || in.Slot != "" || in.User != "" || in.Password != "" || in.Progress != nil {
			return errors.New("init From, Slot, User, Password and Progress apply only to a base backup (a replica)")
		}
		return nil
	case RoleReplica:
		if in.Kind != InitBaseBackup {
			return fmt.Errorf("a replica is made by a base backup (init %q), not init %q", InitBaseBackup, in.Kind)
		}
	default:
		return fmt.Errorf("role %q is not supported", id.Role)
	}
	switch {
	case in.From == (InstanceID{}):
		return errors.New("a replica needs init From: the instance it copies and streams from")
	case in.From.Validate() != nil:
		return fmt.Errorf("init From: %w", in.From.Validate())
	case in.From == id:
		return errors.New("a replica cannot stream from itself")
	case in.From.Env != id.Env:
		return fmt.Errorf("a replica streams from an instance of its own environment (its network), not %s", in.From)
	case in.From.Role == RolePooler || in.From.Role == RoleReplicaPooler:
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
