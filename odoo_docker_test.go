//go:build odoo

package main

import (
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/api/types/filters"
	"github.com/docker/docker/client"
	"github.com/docker/go-connections/nat"
	"github.com/jackc/pgx/v5"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/docker"
)

// envContainers returns the containers (running or not) of the private
// engine that carry the label pgdeck.env=env, by their pgdeck.role label.
func envContainers(t *testing.T, cli *client.Client, env string) map[string]container.Summary {
	t.Helper()
	cs, err := cli.ContainerList(t.Context(), container.ListOptions{All: true,
		Filters: filters.NewArgs(filters.Arg("label", "pgdeck.env="+env))})
	if err != nil {
		t.Fatalf("list the containers of %s on the private engine: %v", env, err)
	}
	out := map[string]container.Summary{}
	for _, c := range cs {
		out[c.Labels["pgdeck.role"]] = c
	}
	return out
}

// TestOdooOnDockerThroughPgBouncer runs a real Odoo 18 on an environment of
// the docker runtime: pgdeck (the real binary) drives a private dockerd
// with the test image, the environment (plan pro) gets PgBouncer in
// transaction mode through a redeploy, and Odoo, on the host with pgdeck's
// odoo.conf as written, installs base, serves, signs in, writes and reads a
// partner. PostgreSQL sees Odoo's sessions (a write on its database, the
// LISTEN on postgres) come from the PgBouncer container's address.
func TestOdooOnDockerThroughPgBouncer(t *testing.T) {
	engine := dockertest.Engine(t)
	image := dockertest.Image(t, engine)
	cli, err := engine.Client()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cli.Close() })

	b := startOdooBox(t, "PGDECK_RUNTIME=docker", "PGDECK_DOCKER_HOST="+engine.Host, "PGDECK_DOCKER_IMAGE="+image)
	const name = "dock"
	created := b.createEnv(name)
	e := b.enablePgBouncer(name, "transaction", 10)
	if e.OdooConf == "" || e.Port == nil {
		t.Fatalf("the API names no odoo.conf or primary port: %+v", e.odooEnv)
	}
	if created.Port != nil && *e.Port != *created.Port {
		t.Errorf("the primary moved from port %d to %d on the redeploy", *created.Port, *e.Port)
	}

	// The instances are the private engine's containers, not processes of
	// the local runtime.
	ctrs := envContainers(t, cli, name)
	for _, role := range []runtime.Role{runtime.RolePrimary, runtime.RolePooler} {
		c, ok := ctrs[string(role)]
		if !ok {
			t.Fatalf("the private engine has no container labelled pgdeck.env=%s pgdeck.role=%s (roles there: %v)", name, role, slices.Sorted(maps.Keys(ctrs)))
		}
		if c.State != container.StateRunning || c.Image != image {
			t.Errorf("the %s container %v: state %s, image %s; want running from %s", role, c.Names, c.State, c.Image, image)
		}
	}
	if pids := testkit.PostgresUnder(filepath.Join(b.data, "envs")); len(pids) > 0 {
		t.Fatalf("PostgreSQL processes run on the host under the environments' folder (the local runtime?): %v", pids)
	}

	// odoo.conf names the address the PgBouncer container is published on.
	pooler, err := cli.ContainerInspect(t.Context(), docker.ContainerName(runtime.InstanceID{Env: name, Role: runtime.RolePooler}))
	if err != nil {
		t.Fatalf("inspect the PgBouncer container: %v", err)
	}
	bindings := pooler.NetworkSettings.Ports[nat.Port(strconv.Itoa(*e.Pooler.Port)+"/tcp")]
	if len(bindings) != 1 {
		t.Fatalf("the PgBouncer container publishes %v, want port %d/tcp once", pooler.NetworkSettings.Ports, *e.Pooler.Port)
	}
	conf := odooConfValues(t, e.OdooConf)
	if conf["db_host"] != bindings[0].HostIP || conf["db_port"] != bindings[0].HostPort || conf["db_port"] == strconv.Itoa(*e.Port) {
		t.Fatalf("odoo.conf points at %s:%s, want PgBouncer's published %s:%s (the primary is on %d)",
			conf["db_host"], conf["db_port"], bindings[0].HostIP, bindings[0].HostPort, *e.Port)
	}
	poolerNet := pooler.NetworkSettings.Networks[docker.NetworkName(name)]
	if poolerNet == nil || poolerNet.IPAddress == "" {
		t.Fatalf("the PgBouncer container has no address on %s: %v", docker.NetworkName(name), pooler.NetworkSettings.Networks)
	}
	poolerIP := poolerNet.IPAddress

	b.installBase(e.odooEnv)
	odoo := startOdoo(t, b.src, b.acct, e.OdooConf)
	rpc := odoo.Client()
	if _, err := rpc.Authenticate(e.Database, "admin", "admin"); err != nil {
		t.Fatalf("sign in as admin through PgBouncer on docker: %v", err)
	}
	var partnerID int
	if err := rpc.CallKW("res.partner", "create", []any{map[string]any{"name": "Pooled in a container"}}, nil, &partnerID); err != nil {
		t.Fatalf("create a res.partner: %v", err)
	}
	readPartner := func() (string, error) {
		var rows []struct {
			Name string `json:"name"`
		}
		if err := rpc.CallKW("res.partner", "read", []any{[]int{partnerID}, []string{"name"}}, nil, &rows); err != nil {
			return "", err
		}
		if len(rows) != 1 {
			return "", fmt.Errorf("read partner %d: %d rows", partnerID, len(rows))
		}
		return rows[0].Name, nil
	}
	if got, err := readPartner(); err != nil || got != "Pooled in a container" {
		t.Fatalf("read the partner back: %q, %v", got, err)
	}

	t.Run("Odoo's sessions reach PostgreSQL from the PgBouncer container", func(t *testing.T) {
		// PostgreSQL sees a client by the address its connection comes
		// from: PgBouncer's container on the environment's network, or,
		// for a client on the host, the network's gateway (through the
		// published port), as this direct connection to the primary does.
		direct := maps.Clone(conf)
		direct["db_port"] = strconv.Itoa(*e.Port)
		lock := connectWithConf(t, direct, e.Database)
		var directFrom string
		if err := lock.QueryRow(t.Context(), "SELECT host(inet_client_addr())").Scan(&directFrom); err != nil {
			t.Fatal(err)
		}
		if directFrom == poolerIP {
			t.Fatalf("a direct connection to the primary comes from %s, PgBouncer's address: the checks below could not tell them apart", directFrom)
		}
		watch := connectWithConf(t, conf, "postgres")

		// Odoo's database is pooled per transaction: PgBouncer hands the
		// server connection to the next client when a transaction ends,
		// so Odoo is caught in one. The direct connection locks the
		// partner; Odoo's write then waits on a server connection that
		// PostgreSQL shows, with its client address, until the lock goes.
		tx, err := lock.Begin(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		defer tx.Rollback(t.Context())
		if _, err := tx.Exec(t.Context(), "SELECT 1 FROM res_partner WHERE id = $1 FOR UPDATE", partnerID); err != nil {
			t.Fatal(err)
		}
		written := make(chan error, 1)
		go func() {
			written <- rpc.CallKW("res.partner", "write", []any{[]int{partnerID}, map[string]any{"name": "Written while locked"}}, nil, nil)
		}()
		testkit.Eventually(t, "Odoo's write waits on the partner's lock", 30*time.Second, func() (bool, string) {
			rows, _ := watch.Query(t.Context(), `SELECT coalesce(host(client_addr), 'the socket') || ': ' || query
				FROM pg_stat_activity WHERE datname = $1 AND usename = current_user AND wait_event_type = 'Lock'`, e.Database)
			waiting, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range waiting {
				if from, _, _ := strings.Cut(w, ": "); from != poolerIP {
					t.Fatalf("Odoo's write reaches PostgreSQL from %s, not from PgBouncer's container (%s): %q", from, poolerIP, w)
				}
			}
			return len(waiting) > 0, fmt.Sprintf("sessions waiting on a lock: %q", waiting)
		})
		if err := tx.Rollback(t.Context()); err != nil {
			t.Fatal(err)
		}
		select {
		case err := <-written:
			if err != nil {
				t.Fatalf("Odoo's write after the lock went: %v", err)
			}
		case <-time.After(time.Minute):
			t.Fatal("Odoo's write did not end within a minute of the lock's release")
		}
		if got, err := readPartner(); err != nil || got != "Written while locked" {
			t.Fatalf("read the partner after the write: %q, %v", got, err)
		}

		// Its cron threads LISTEN on postgres, pooled per session: those
		// server connections stay Odoo's and keep its application_name.
		testkit.Eventually(t, "Odoo's sessions on postgres", 30*time.Second, func() (bool, string) {
			rows, _ := watch.Query(t.Context(), `SELECT coalesce(host(client_addr), 'the socket') FROM pg_stat_activity
				WHERE datname = 'postgres' AND usename = current_user AND application_name LIKE 'odoo-%'`)
			froms, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			for _, from := range froms {
				if from != poolerIP {
					t.Fatalf("an Odoo session on postgres comes from %s, not from PgBouncer's container (%s)", from, poolerIP)
				}
			}
			return len(froms) > 0, fmt.Sprintf("Odoo's sessions on postgres from %q", froms)
		})
		t.Logf("Odoo's sessions come from PgBouncer's container %s; a direct client from %s", poolerIP, directFrom)
	})

	if errs := odooErrors(odoo.Log()); len(errs) > 0 {
		t.Errorf("Odoo logged errors while serving on docker:\n%s", strings.Join(errs, "\n"))
	}
	odoo.Stop()
	b.deleteEnv(name)
	if left := envContainers(t, cli, name); len(left) > 0 {
		t.Errorf("containers of %s outlived its delete: %v", name, left)
	}
}
