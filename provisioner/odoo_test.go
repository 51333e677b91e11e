package provisioner_test

import (
	"context"
	"log/slog"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner"
)

// odooTestUser is the unprivileged OS user the tests hand Odoo's files to.
const odooTestUser = "pgdeck-odoo"

// ensureOdooUser returns the Odoo user for a test: pgdeck-odoo (created when
// missing) when the tests run as root, else the current user.
func ensureOdooUser(t *testing.T) provisioner.OdooUser {
	t.Helper()
	name := odooTestUser
	if os.Geteuid() != 0 {
		u, err := user.Current()
		if err != nil {
			t.Fatal(err)
		}
		name = u.Username
	} else if _, err := user.Lookup(name); err != nil {
		out, err := exec.Command("useradd", "--system", "--user-group", "--no-create-home",
			"--home-dir", "/nonexistent", "--shell", "/usr/sbin/nologin", name).CombinedOutput()
		if err != nil && !strings.Contains(string(out), "already exists") {
			t.Fatalf("create the OS user %s (useradd --system --user-group %s): %v\n%s", name, name, err, out)
		}
	}
	ou, err := provisioner.LookupOdooUser(name)
	if err != nil {
		t.Fatal(err)
	}
	return ou
}

func TestLookupOdooUser(t *testing.T) {
	if ou, err := provisioner.LookupOdooUser(""); err != nil || ou.Set() {
		t.Errorf("empty name: %+v, %v; want no user and no error", ou, err)
	}
	for _, tc := range []struct{ name, want string }{
		{"root", "Odoo refuses to run as root"},
		{"pgdeck-no-such-user", `no OS user "pgdeck-no-such-user" on this machine; create it (e.g. useradd --system --user-group pgdeck-no-such-user)`},
	} {
		_, err := provisioner.LookupOdooUser(tc.name)
		if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.HasPrefix(err.Error(), "PGDECK_ODOO_USER: ") {
			t.Errorf("LookupOdooUser(%q) = %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
	ou := ensureOdooUser(t)
	if !ou.Set() || ou.UID == 0 {
		t.Errorf("LookupOdooUser = %+v", ou)
	}
}

func owner(t *testing.T, path string) (uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Lstat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid), fi.Mode().Perm()
}

// TestOdooUserOwnsItsFiles: with PGDECK_ODOO_USER set, odoo.conf is readable
// by that user and nobody else but pgdeck, and the filestore is the user's,
// after the deploy, a redeploy and a restart.
func TestOdooUserOwnsItsFiles(t *testing.T) {
	ou := ensureOdooUser(t)
	h := newHarness(t)
	h.p = provisioner.New(provisioner.Config{
		PortLow: h.lo, PortHigh: h.hi, Workers: 2, PollInterval: 50 * time.Millisecond, OdooUser: ou,
		BackupDir: h.backups, PgRestore: h.pgRestore,
	}, h.st, h.rt, h.box, slog.New(slog.NewTextHandler(t.Output(), nil)))
	h.deploy("files")
	conf, filestore := h.p.OdooConfPath("files"), filepath.Join(h.envDir("files"), "filestore")

	check := func(when string) {
		t.Helper()
		uid, gid, mode := owner(t, conf)
		wantMode := os.FileMode(0o640)
		if ou.UID == os.Geteuid() {
			wantMode = 0o600
		}
		if uid != os.Geteuid() || gid != ou.GID || mode != wantMode {
			t.Errorf("%s: odoo.conf is %d:%d %04o, want %d:%d %04o (pgdeck's, readable by %s's group only)",
				when, uid, gid, mode, os.Geteuid(), ou.GID, wantMode, ou.Name)
		}
		err := filepath.Walk(filestore, func(p string, _ os.FileInfo, err error) error {
			if err != nil {
				return err
			}
			if uid, gid, _ := owner(t, p); uid != ou.UID || gid != ou.GID {
				t.Errorf("%s: %s is %d:%d, want %s's (%d:%d)", when, p, uid, gid, ou.Name, ou.UID, ou.GID)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if _, _, mode := owner(t, filestore); mode&0o700 != 0o700 {
			t.Errorf("%s: filestore mode %04o: its owner cannot write it", when, mode)
		}
		// The Odoo user really reads odoo.conf and writes the filestore.
		if os.Geteuid() == 0 {
			for _, argv := range [][]string{{"cat", conf}, {"touch", filepath.Join(filestore, "written-by-odoo")}} {
				cmd := exec.Command(argv[0], argv[1:]...)
				cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(ou.UID), Gid: uint32(ou.GID)}}
				if out, err := cmd.CombinedOutput(); err != nil {
					t.Errorf("%s: %s as %s: %v %s", when, strings.Join(argv, " "), ou.Name, err, out)
				}
			}
		}
	}
	check("after the deploy")

	// Something pgdeck's own user put in the filestore (a restore, an
	// operator's copy) is handed over on the next redeploy.
	stray := filepath.Join(filestore, "filestore", "files", "ab")
	if err := os.MkdirAll(stray, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stray, "abcdef"), []byte("attachment"), 0o644); err != nil {
		t.Fatal(err)
	}
	h.succeed("files", provisioner.KindRedeploy)
	check("after a redeploy")
	h.succeed("files", provisioner.KindRestart)
	check("after a restart")
}

// TestRedeployOpensPostgresToAnOlderEnvironment: an environment deployed
// before the role could reach `postgres` (its pg_hba.conf as then written)
// gets the new rule on its next redeploy, and odoo.conf gains db_maxconn.
func TestRedeployOpensPostgresToAnOlderEnvironment(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("older")
	hbaPath := filepath.Join(h.dataDir("older"), "pg_hba.conf")
	hba, err := os.ReadFile(hbaPath)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(hba), "host older,postgres odoo_older 127.0.0.1/32 scram-sha-256") {
		t.Fatalf("pg_hba.conf lacks the role's line:\n%s", hba)
	}
	// The files as pgdeck wrote them before this change.
	old := strings.Replace(string(hba), "host older,postgres odoo_older", "host older odoo_older", 1)
	if err := h.rt.WriteFile(ctx, primary("older"), "pgdata/pg_hba.conf", []byte(old), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := h.rt.Exec(ctx, primary("older"), nil, "psql", "-X", "-qAt", "-d", "postgres", "-c", "SELECT pg_reload_conf()"); err != nil {
		t.Fatalf("reload: %v %s", err, out)
	}
	confPath := h.p.OdooConfPath("older")
	conf, err := os.ReadFile(confPath)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, line := range strings.Split(string(conf), "\n") {
		if !strings.Contains(line, "db_maxconn") {
			kept = append(kept, line)
		}
	}
	if err := os.WriteFile(confPath, []byte(strings.Join(kept, "\n")), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err = connect(ctx, *e.Port, "postgres", e.DBUser, h.password(e))
	wantRejected(t, "before the redeploy, the role to postgres", err)

	h.succeed("older", provisioner.KindRedeploy)
	conn, err := connect(ctx, *e.Port, "postgres", e.DBUser, h.password(e))
	if err != nil {
		t.Fatalf("after the redeploy, the role still cannot reach postgres: %v", err)
	}
	conn.Close(ctx)
	if got := readOdooConf(t, confPath)["db_maxconn"]; got == "" {
		t.Error("after the redeploy odoo.conf still has no db_maxconn")
	}
}

// TestRedeployKeepsCommittedRows: a client writing while a redeploy restarts
// PostgreSQL loses its connection, never a row whose commit was
// acknowledged, and writes again on a new connection.
func TestRedeployKeepsCommittedRows(t *testing.T) {
	h := newHarness(t)
	ctx := t.Context()
	e := h.deploy("durable")
	if _, err := h.connectAs(e).Exec(ctx, "CREATE TABLE note (id int PRIMARY KEY)"); err != nil {
		t.Fatal(err)
	}
	pw := h.password(e)
	stop := make(chan struct{})
	acked := make(chan []int)
	go func() {
		var ids []int
		defer func() { acked <- ids }()
		var c *pgx.Conn
		for i := 1; ; i++ {
			select {
			case <-stop:
				if c != nil {
					c.Close(context.Background())
				}
				return
			default:
			}
			if c == nil {
				var err error
				if c, err = connect(context.Background(), *e.Port, e.DBName, e.DBUser, pw); err != nil {
					c = nil
					time.Sleep(20 * time.Millisecond)
					continue
				}
			}
			if _, err := c.Exec(context.Background(), "INSERT INTO note VALUES ($1)", i); err == nil {
				ids = append(ids, i)
			} else {
				c.Close(context.Background())
				c = nil
			}
		}
	}()
	time.Sleep(300 * time.Millisecond)
	h.succeed("durable", provisioner.KindRedeploy)
	time.Sleep(300 * time.Millisecond)
	close(stop)
	ids := <-acked

	rows, err := h.connectAs(h.env("durable")).Query(ctx, "SELECT id FROM note")
	if err != nil {
		t.Fatal(err)
	}
	stored, err := pgx.CollectRows(rows, pgx.RowTo[int32])
	if err != nil {
		t.Fatal(err)
	}
	have := map[int]bool{}
	for _, id := range stored {
		have[int(id)] = true
	}
	var lost []int
	for _, id := range ids {
		if !have[id] {
			lost = append(lost, id)
		}
	}
	if len(lost) > 0 {
		t.Errorf("%d acknowledged rows lost across the redeploy, e.g. %v", len(lost), lost[:min(5, len(lost))])
	}
	// Writes went on after the restart, on a new connection.
	if len(ids) < 2 || !slices.ContainsFunc(ids, func(id int) bool { return id > ids[0]+1 }) {
		t.Errorf("acknowledged writes %d: want writes before and after the redeploy", len(ids))
	}
}
