package provisioner

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"slices"
	"strconv"

	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/store"
)

// OdooUser is the OS account Odoo runs as (PGDECK_ODOO_USER). The zero value
// means none is configured: odoo.conf is 0600 for pgdeck's own user and the
// operator makes it readable by Odoo.
type OdooUser struct {
	Name     string
	UID, GID int
}

// Set reports whether an Odoo user is configured.
func (u OdooUser) Set() bool { return u.Name != "" }

// LookupOdooUser checks the user named by PGDECK_ODOO_USER: it must exist,
// must not be root (Odoo refuses to run as root, and a root-owned file gives
// it nothing), and pgdeck must be able to hand it the files: as root, or as
// that user, or as a member of its group.
func LookupOdooUser(name string) (OdooUser, error) {
	if name == "" {
		return OdooUser{}, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return OdooUser{}, fmt.Errorf("PGDECK_ODOO_USER: no OS user %q on this machine; create it (e.g. useradd --system --user-group %s) or leave the setting empty", name, name)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return OdooUser{}, fmt.Errorf("PGDECK_ODOO_USER: user %q has a non-numeric uid or gid (%s:%s)", name, u.Uid, u.Gid)
	}
	if uid == 0 {
		return OdooUser{}, fmt.Errorf("PGDECK_ODOO_USER: %q is root; Odoo refuses to run as root: name the unprivileged user Odoo runs as", name)
	}
	if euid := os.Geteuid(); euid != 0 && euid != uid {
		groups, _ := os.Getgroups()
		if os.Getegid() != gid && !slices.Contains(groups, gid) {
			return OdooUser{}, fmt.Errorf("PGDECK_ODOO_USER: pgdeck runs as uid %d, which can neither give files to %q nor share its group %d: run pgdeck as root or add its user to that group", euid, name, gid)
		}
	}
	return OdooUser{Name: u.Username, UID: uid, GID: gid}, nil
}

// confMode is odoo.conf's mode: 0640, owned by pgdeck's user and the Odoo
// user's group, so that Odoo reads it but cannot rewrite it (its password
// and admin_passwd stay what pgdeck sealed); 0600 when Odoo runs as pgdeck's
// own user or none is configured.
func (u OdooUser) confMode() fs.FileMode {
	if !u.Set() || u.UID == os.Geteuid() {
		return 0o600
	}
	return 0o640
}

// odooOwner is the owner of what Odoo writes (the filestore): the Odoo user,
// or pgdeck's own when none is configured.
func (p *Provisioner) odooOwner() runtime.Owner {
	if ou := p.cfg.OdooUser; ou.Set() {
		return runtime.Owner{UID: ou.UID, GID: ou.GID, Name: ou.Name, Set: true}
	}
	return runtime.Owner{}
}

// writeOdooFiles makes the filestore folder (Odoo's data_dir, owned by the
// Odoo user with everything in it) and writes odoo.conf, both through the
// runtime's environment scope.
func (p *Provisioner) writeOdooFiles(ctx context.Context, env store.Environment, settings DeploySettings, dbPassword, adminPassword string) error {
	ou := p.cfg.OdooUser
	odoo := p.odooOwner()
	var conf runtime.Owner
	if ou.Set() {
		if ou.UID != os.Geteuid() {
			conf = runtime.Owner{UID: os.Geteuid(), GID: ou.GID, Name: ou.Name, Set: true}
		}
	}
	if err := p.rt.MakeEnvDir(ctx, env.Name, "filestore", odoo); err != nil {
		return fmt.Errorf("filestore: %w", err)
	}
	// Odoo reaches its database through PgBouncer when it is on, else
	// straight at the primary; db_maxconn fits what that side takes.
	host, port := p.DatabaseAddress(env.Name)
	maxConn := render.OdooMaxConn(MaxConnectionsOf(settings.PostgreSQLConf), render.SuperuserReservedConnections, render.PgdeckConnections)
	if pool := settings.PgBouncer; pool != nil && pool.Enabled {
		host, port = p.rt.Address(pooler(env.Name))
		maxConn = render.OdooMaxConnForPool(pool.PoolMode, pool.PoolSize, pool.MaxClientConn, render.PostgresPoolSize, render.PgdeckConnections)
	}
	oc := render.OdooConf{
		DBHost: host, DBPort: port, DBUser: env.DBUser, DBPassword: dbPassword, DBName: env.DBName,
		DataDir: p.rt.EnvPath(env.Name, "filestore"), AdminPassword: adminPassword,
		MaxConn: maxConn,
	}
	// A replica recorded (streaming once its deploy job ended) takes
	// Odoo's read-only queries.
	if env.ReplicaPort != nil && settings.ReadReplica {
		oc.ReplicaHost, oc.ReplicaPort = p.rt.Address(replicaID(env.Name))
		// Through the replica's own PgBouncer when pooling is on.
		if pool := settings.PgBouncer; pool != nil && pool.Enabled {
			if h, port := p.rt.Address(replicaPooler(env.Name).id); port != 0 {
				oc.ReplicaHost, oc.ReplicaPort = h, port
			}
		}
	}
	text, err := render.OdooConfFile(oc)
	if err != nil {
		return err
	}
	return p.rt.WriteEnvFile(ctx, env.Name, "odoo.conf", text, ou.confMode(), conf)
}

// DatabaseAddress is the address of the environment's primary, as the
// runtime gives it (Odoo's, unless PgBouncer is on).
func (p *Provisioner) DatabaseAddress(env string) (host string, port int) {
	return p.rt.Address(primary(env))
}

// PoolerAddress is the address of the environment's PgBouncer, as the
// runtime gives it (port 0 when it has none).
func (p *Provisioner) PoolerAddress(env string) (host string, port int) {
	return p.rt.Address(pooler(env))
}

// ReplicaAddress is the address of the environment's replica, as the
// runtime gives it (port 0 when it has none).
func (p *Provisioner) ReplicaAddress(env string) (host string, port int) {
	return p.rt.Address(replicaID(env))
}

// OdooConfPath is where the environment's odoo.conf is written.
func (p *Provisioner) OdooConfPath(env string) string {
	return p.rt.EnvPath(env, "odoo.conf")
}
