package monitor

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/render"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/store"
	"pgdeck/store/secret"
	"pgdeck/store/storetest"
)

func TestMain(m *testing.M) { storetest.Main(m) }

// Every test cluster has the same database, role and password; what differs
// is the port (and the store row that points at it).
const (
	testDB       = "odoo"
	testUser     = "odoo"
	testPassword = "s3cret-Pa55"
	// testMonitorUser is the monitoring role's name; only clusters made
	// with addMonitorRole have it.
	testMonitorUser     = "pgdeck_monitor"
	testMonitorPassword = "m0nitor-Pa55"
	// testMaxConnections is set in every cluster, so that the figure the
	// monitor reads can be told from PostgreSQL's default.
	testMaxConnections = 25
)

// testConf keeps 50 clusters small enough to run side by side.
var testConf = map[string]string{
	"max_connections": fmt.Sprint(testMaxConnections),
	"shared_buffers":  "16MB",
	"fsync":           "off",
	"max_wal_size":    "64MB",
	"min_wal_size":    "32MB",
}

// fixture is a control-plane store, a local runtime under a short root
// folder, and the box that seals the environments' passwords.
type fixture struct {
	tb  testing.TB
	st  *store.Store
	rt  *local.Runtime
	box *secret.Box
	log *slog.Logger
	// template, when set, is a stopped data folder (with the test role and
	// database) copied for each new cluster instead of running initdb.
	template string
	// published holds the addresses of environments that have no local
	// instance but a server of the test's own (a hanging one), as a
	// runtime whose instances live elsewhere would report them.
	published *sync.Map
	// poolers holds the ports of the PgBouncers the tests start themselves
	// (see addPooler), by environment name: the local runtime cannot run
	// poolers yet, so the fixture reports their addresses for it.
	poolers *sync.Map
}

// addressedRuntime is the local runtime that also reports the addresses the
// fixture published for environments without a local instance.
type addressedRuntime struct {
	*local.Runtime
	f *fixture
}

// Address implements runtime.Runtime.
func (r addressedRuntime) Address(id runtime.InstanceID) (string, int) {
	if id.Role == runtime.RolePooler {
		if port, ok := r.f.poolers.Load(id.Env); ok {
			return "127.0.0.1", port.(int)
		}
		return r.Runtime.Address(id)
	}
	if port, ok := r.f.published.Load(id.Env); ok {
		return "127.0.0.1", port.(int)
	}
	return r.Runtime.Address(id)
}

// runtime is what the monitor under test asks.
func (f *fixture) runtime() runtime.Runtime { return addressedRuntime{Runtime: f.rt, f: f} }

func newFixture(tb testing.TB) *fixture {
	tb.Helper()
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		tb.Fatalf("the monitor tests need PostgreSQL's server binaries: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	// Short root: unix socket paths are limited to 107 bytes.
	rt, err := local.New(local.Config{Root: filepath.Join(testkit.TempDir(tb), "envs"), BinDir: bin, Logger: log})
	if err != nil {
		tb.Fatal(err)
	}
	key := make([]byte, 32)
	rand.Read(key)
	box, err := secret.New(key)
	if err != nil {
		tb.Fatal(err)
	}
	return &fixture{tb: tb, st: storetest.New(tb), rt: rt, box: box, log: log, published: &sync.Map{}, poolers: &sync.Map{}}
}

func (f *fixture) monitor(cfg Config) *Monitor {
	return New(cfg, f.st, f.runtime(), f.box, f.log)
}

func primary(name string) runtime.InstanceID {
	return runtime.InstanceID{Env: name, Role: runtime.RolePrimary}
}

// addCluster creates and starts the primary of environment name on a free
// port, with the test role and database, and returns the port. The cluster
// is removed when the test ends.
func (f *fixture) addCluster(name string) int {
	f.tb.Helper()
	port := testkit.FreePort(f.tb)
	if err := f.startCluster(name, port); err != nil {
		f.tb.Fatal(err)
	}
	return port
}

// startCluster is addCluster on a given port, for setup goroutines: it
// returns its error.
func (f *fixture) startCluster(name string, port int) error {
	ctx := context.Background()
	id := primary(name)
	if f.template != "" {
		dir := f.rt.InstanceDir(id)
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return err
		}
		// cp -a keeps the owner (the postgres user when running as root).
		if out, err := exec.Command("cp", "-a", f.template, filepath.Join(dir, "pgdata")).CombinedOutput(); err != nil {
			return fmt.Errorf("copy template cluster: %v: %s", err, out)
		}
	}
	spec := runtime.Spec{
		ID:   id,
		Port: port,
		Conf: testConf,
		HBA: []string{
			fmt.Sprintf("host %s %s 127.0.0.1/32 scram-sha-256", testDB, testUser),
			fmt.Sprintf("host postgres %s 127.0.0.1/32 scram-sha-256", testMonitorUser),
		},
	}
	// Create rewrites the settings (port, socket folder) of a copied cluster.
	if err := f.rt.Create(ctx, spec); err != nil {
		return err
	}
	f.tb.Cleanup(func() {
		if err := f.rt.Remove(context.Background(), id); err != nil {
			f.tb.Errorf("remove cluster %s: %v", id, err)
		}
	})
	if err := f.rt.Start(ctx, id); err != nil {
		return err
	}
	if f.template == "" {
		if err := f.createRoleAndDB(id); err != nil {
			return err
		}
	}
	return nil
}

func (f *fixture) createRoleAndDB(id runtime.InstanceID) error {
	sql := fmt.Sprintf("SET password_encryption = 'scram-sha-256';\nCREATE ROLE %s LOGIN PASSWORD '%s';\nCREATE DATABASE %s OWNER %s;\n",
		testUser, testPassword, testDB, testUser)
	out, err := f.rt.Exec(context.Background(), id, []byte(sql), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres")
	if err != nil {
		return fmt.Errorf("create role and database in %s: %v: %s", id, err, out)
	}
	return nil
}

// makeTemplate creates a cluster with the test role and database and the
// monitoring role, as a deploy leaves them, stops it cleanly and keeps its
// data folder as the template of later clusters.
func (f *fixture) makeTemplate() {
	f.tb.Helper()
	f.addCluster("template")
	id := primary("template")
	f.createMonitorRole("template")
	if err := f.rt.Stop(context.Background(), id); err != nil {
		f.tb.Fatal(err)
	}
	f.template = filepath.Join(f.rt.InstanceDir(id), "pgdata")
}

// addEnv records a deployed environment whose primary listens on port.
func (f *fixture) addEnv(name string, port int) store.Environment {
	f.tb.Helper()
	ctx := context.Background()
	e, err := f.st.CreateEnvironment(ctx, store.Environment{Name: name, OdooVersion: "18.0", Stage: "development", Plan: "starter"})
	if err != nil {
		f.tb.Fatal(err)
	}
	if _, err := f.st.SetPort(ctx, e.ID, port); err != nil {
		f.tb.Fatal(err)
	}
	if _, err := f.rt.Cluster(primary(name)); err != nil {
		// No local instance: the test's own server answers at port.
		f.published.Store(name, port)
	}
	if _, err := f.st.SetCredentials(ctx, e.ID, testDB, testUser, f.box.Seal(testPassword), f.box.Seal("admin")); err != nil {
		f.tb.Fatal(err)
	}
	if err := f.st.MarkDeployed(ctx, e.ID); err != nil {
		f.tb.Fatal(err)
	}
	e, err = f.st.EnvironmentByID(ctx, e.ID)
	if err != nil {
		f.tb.Fatal(err)
	}
	return e
}

// addRunningEnv creates the environment's cluster and its deployed row.
func (f *fixture) addRunningEnv(name string) store.Environment {
	f.tb.Helper()
	return f.addEnv(name, f.addCluster(name))
}

func (f *fixture) health(e store.Environment) store.Health {
	f.tb.Helper()
	h, err := f.st.HealthOf(context.Background(), e.ID)
	if err != nil {
		f.tb.Fatalf("health of %s: %v", e.Name, err)
	}
	return h
}

func (f *fixture) history(e store.Environment) []store.HealthHistoryEntry {
	f.tb.Helper()
	hist, err := f.st.HealthHistory(context.Background(), e.ID, time.Time{})
	if err != nil {
		f.tb.Fatal(err)
	}
	return hist
}

// tick runs one round and waits for every check it started, so that the
// store holds their results.
func tick(tb testing.TB, m *Monitor) {
	tb.Helper()
	if err := m.Tick(context.Background()); err != nil {
		tb.Fatal(err)
	}
	m.checks.Wait()
}

// killPostmaster sends SIGKILL to the environment's postmaster and waits
// until it is gone.
func (f *fixture) killPostmaster(name string) int {
	f.tb.Helper()
	c, err := f.rt.Cluster(primary(name))
	if err != nil {
		f.tb.Fatal(err)
	}
	pid, ok := c.Running()
	if !ok {
		f.tb.Fatalf("%s: postmaster is not running", name)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		f.tb.Fatal(err)
	}
	testkit.Eventually(f.tb, fmt.Sprintf("%s: postmaster %d stops running after SIGKILL", name, pid), 5*time.Second, func() (bool, string) {
		_, running := c.Running()
		return !running, fmt.Sprintf("running: %v", running)
	})
	return pid
}

// hangServer is a TCP server on 127.0.0.1 that accepts connections and
// never answers; it counts the connections it accepted.
type hangServer struct {
	port     int
	accepted atomic.Int64
}

func newHangServer(tb testing.TB) *hangServer {
	tb.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	s := &hangServer{port: l.Addr().(*net.TCPAddr).Port}
	var (
		mu    sync.Mutex
		conns []net.Conn
		wg    sync.WaitGroup
	)
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			s.accepted.Add(1)
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	tb.Cleanup(func() {
		l.Close()
		wg.Wait()
		mu.Lock()
		defer mu.Unlock()
		for _, c := range conns {
			c.Close()
		}
	})
	return s
}

// addMonitorRole creates the monitoring role (pg_monitor) in the
// environment's cluster, as a deploy does, and records it in the store with
// password.
func (f *fixture) addMonitorRole(e store.Environment, password string) store.Environment {
	f.tb.Helper()
	f.createMonitorRole(e.Name)
	return f.recordMonitorRole(e, password)
}

// createMonitorRole creates the monitoring role (pg_monitor) in the
// environment's cluster.
func (f *fixture) createMonitorRole(name string) {
	f.tb.Helper()
	sql := fmt.Sprintf("SET password_encryption = 'scram-sha-256';\nCREATE ROLE %s LOGIN PASSWORD '%s';\nGRANT pg_monitor TO %s;\n",
		testMonitorUser, testMonitorPassword, testMonitorUser)
	out, err := f.rt.Exec(context.Background(), primary(name), []byte(sql), "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres")
	if err != nil {
		f.tb.Fatalf("create the monitoring role in %s: %v: %s", name, err, out)
	}
}

// recordMonitorRole records the monitoring role of e in the store, with
// password, and returns e read again.
func (f *fixture) recordMonitorRole(e store.Environment, password string) store.Environment {
	f.tb.Helper()
	e, err := f.st.SetMonitorCredentials(context.Background(), e.ID, testMonitorUser, f.box.Seal(password))
	if err != nil {
		f.tb.Fatal(err)
	}
	return e
}

// pgbouncerBin is Debian's PgBouncer (1.18 in bookworm).
const pgbouncerBin = "/usr/sbin/pgbouncer"

// testPoolSize and testMaxClientConn are the test pooler's settings, so
// that the figures the monitor reads can be told from PgBouncer's defaults.
const (
	testPoolSize      = 5
	testMaxClientConn = 50
)

// testPooler is a PgBouncer in front of an environment's test cluster,
// started by the test itself (as the provisioner will deploy one): its
// pgbouncer.ini from render.PgBouncerIni with the monitoring role as the
// console user, its auth_file with the roles' SCRAM verifiers from the
// cluster's pg_authid, in a folder of the PostgreSQL user.
type testPooler struct {
	port int
	dir  string
	as   pgexec.RunAs
}

// addPooler starts a PgBouncer for e (which must have its cluster and the
// monitoring role), records it as the environment's pooler instance and
// returns e read again (with its PoolerPort). PgBouncer is killed when the
// test ends.
func (f *fixture) addPooler(e store.Environment) (store.Environment, *testPooler) {
	f.tb.Helper()
	ctx := context.Background()
	if _, err := os.Stat(pgbouncerBin); err != nil {
		f.tb.Fatalf("the pooler tests need PgBouncer (install it with: apt-get install pgbouncer): %v", err)
	}
	as, err := pgexec.DefaultRunAs()
	if err != nil {
		f.tb.Fatal(err)
	}
	out, err := f.rt.Exec(ctx, primary(e.Name), nil, "psql", "-X", "-At", "-F", " ", "-d", "postgres", "-c",
		fmt.Sprintf("SELECT rolname, rolpassword FROM pg_authid WHERE rolname IN ('%s', '%s') ORDER BY 1", testUser, testMonitorUser))
	if err != nil {
		f.tb.Fatalf("read the SCRAM verifiers of %s: %v: %s", e.Name, err, out)
	}
	var users []render.AuthUser
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, secret, _ := strings.Cut(line, " ")
		users = append(users, render.AuthUser{Name: name, Secret: secret})
	}
	userlist, err := render.PgBouncerUserlist(users)
	if err != nil {
		f.tb.Fatal(err)
	}
	host, pgPort := f.rt.Address(primary(e.Name))
	p := &testPooler{port: testkit.FreePort(f.tb), dir: testkit.TempDir(f.tb), as: as}
	ini, err := render.PgBouncerIni(render.PgBouncerConf{
		ListenAddr: "127.0.0.1", ListenPort: p.port, ServerHost: host, ServerPort: pgPort, DBName: testDB,
		Pool: render.PoolerSettings{Enabled: true, PoolSize: testPoolSize, PoolMode: render.PoolModeTransaction, MaxClientConn: testMaxClientConn},
		// Only bounds the pool size here: the test clusters' small
		// max_connections would leave no room for a pool beside the reserve.
		MaxConnections: 100,
		AdminUser:      testMonitorUser,
		AuthFile:       filepath.Join(p.dir, "userlist.txt"),
		LogFile:        filepath.Join(p.dir, "pgbouncer.log"),
		PidFile:        p.pidFile(),
	})
	if err != nil {
		f.tb.Fatal(err)
	}
	for name, data := range map[string][]byte{"pgbouncer.ini": ini, "userlist.txt": userlist} {
		if err := os.WriteFile(filepath.Join(p.dir, name), data, 0o600); err != nil {
			f.tb.Fatal(err)
		}
	}
	if err := as.Chown(p.dir); err != nil {
		f.tb.Fatal(err)
	}
	// Registered after TempDir's: PgBouncer is gone before its folder.
	f.tb.Cleanup(func() {
		if pid := p.pid(); pid > 0 && testkit.Alive(pid) {
			syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	p.start(f.tb)
	f.poolers.Store(e.Name, p.port)
	if _, err := f.st.SetInstancePort(ctx, e.ID, store.InstancePooler, p.port); err != nil {
		f.tb.Fatal(err)
	}
	e, err = f.st.EnvironmentByID(ctx, e.ID)
	if err != nil {
		f.tb.Fatal(err)
	}
	return e, p
}

func (p *testPooler) pidFile() string { return filepath.Join(p.dir, "pgbouncer.pid") }

// pid is PgBouncer's pid from its pid file, 0 when there is none.
func (p *testPooler) pid() int {
	b, err := os.ReadFile(p.pidFile())
	if err != nil {
		return 0
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(b)))
	return pid
}

// start runs pgbouncer -d as the PostgreSQL user and waits until it
// accepts connections.
func (p *testPooler) start(tb testing.TB) {
	tb.Helper()
	// A killed PgBouncer leaves its pid file, and 1.18 refuses to start
	// while that pid exists, which it does as a zombie not yet reaped.
	if pid := p.pid(); pid > 0 && !testkit.Alive(pid) {
		os.Remove(p.pidFile())
	}
	cmd := exec.Command(pgbouncerBin, "-d", filepath.Join(p.dir, "pgbouncer.ini"))
	cmd.Dir = p.dir
	if p.as.Set && p.as.UID != os.Geteuid() {
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(p.as.UID), Gid: uint32(p.as.GID)}}
	}
	// A file, not a pipe: the daemon could keep a pipe open, and the wait
	// for its output would last as long as it does.
	out, err := os.CreateTemp(p.dir, "start-*.out")
	if err != nil {
		tb.Fatal(err)
	}
	defer out.Close()
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Run(); err != nil {
		said, _ := os.ReadFile(out.Name())
		log, _ := os.ReadFile(filepath.Join(p.dir, "pgbouncer.log"))
		tb.Fatalf("start PgBouncer: %v: %s\nlog:\n%s", err, said, log)
	}
	testkit.Eventually(tb, fmt.Sprintf("PgBouncer accepts connections on port %d", p.port), 10*time.Second, func() (bool, string) {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", p.port), time.Second)
		if err != nil {
			return false, err.Error()
		}
		c.Close()
		return p.pid() > 0, "no pid file yet"
	})
}

// kill sends SIGKILL to PgBouncer and waits until it is gone.
func (p *testPooler) kill(tb testing.TB) {
	tb.Helper()
	pid := p.pid()
	if pid <= 0 || !testkit.Alive(pid) {
		tb.Fatalf("PgBouncer is not running (pid file says %d)", pid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		tb.Fatal(err)
	}
	testkit.Eventually(tb, fmt.Sprintf("PgBouncer %d is gone after SIGKILL", pid), 5*time.Second, func() (bool, string) {
		return !testkit.Alive(pid), "still alive"
	})
}

// The replication role a hand-made replica streams as (addReplica).
const (
	testReplUser     = "pgdeck_repl"
	testReplPassword = "r3plica-Pa55"
)

func replica(name string) runtime.InstanceID {
	return runtime.InstanceID{Env: name, Role: runtime.RoleReplica}
}

// psql runs sql (statements one by one) as the superuser in the instance's
// postgres database and returns the unaligned output.
func (f *fixture) psql(id runtime.InstanceID, sql string) string {
	f.tb.Helper()
	out, err := f.rt.Exec(context.Background(), id, []byte(sql), "psql", "-X", "-q", "-At", "-v", "ON_ERROR_STOP=1", "-d", "postgres")
	if err != nil {
		f.tb.Fatalf("psql in %s: %v: %s", id, err, out)
	}
	return strings.TrimSpace(string(out))
}

// addReplica makes a streaming hot standby of e's primary by hand, as the
// provisioner's replica jobs will (e needs its cluster and the monitoring
// role, which the base backup copies): a replication role with its
// pg_hba line, the slot runtime.ReplicaSlot and a finite max_slot_wal_keep_size
// (so that the slot reports safe_wal_size) on the primary; pg_basebackup
// through the slot into the folder where the local runtime looks for the
// replica instance (<root>/<env>/replica/pgdata), its own pgdeck.conf
// (port, socket folder), standby.signal and primary_conninfo over TCP with
// application_name <env>_replica. The runtime then starts, stops,
// addresses and reports it like any instance; it is removed when the test
// ends. It returns e read again, with its ReplicaPort, once the primary
// shows the replica streaming.
func (f *fixture) addReplica(e store.Environment) store.Environment {
	f.tb.Helper()
	ctx := context.Background()
	as, err := pgexec.DefaultRunAs()
	if err != nil {
		f.tb.Fatal(err)
	}
	pid := primary(e.Name)
	pdata := filepath.Join(f.rt.InstanceDir(pid), "pgdata")
	hba, err := os.OpenFile(filepath.Join(pdata, "pg_hba.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		f.tb.Fatal(err)
	}
	fmt.Fprintf(hba, "host replication %s 127.0.0.1/32 scram-sha-256\n", testReplUser)
	hba.Close()
	f.psql(pid, fmt.Sprintf(`SET password_encryption = 'scram-sha-256';
CREATE ROLE %s LOGIN REPLICATION PASSWORD '%s';
ALTER SYSTEM SET max_slot_wal_keep_size = '1GB';
SELECT pg_reload_conf();
SELECT pg_create_physical_replication_slot('%s');
`, testReplUser, testReplPassword, runtime.ReplicaSlot))

	rid := replica(e.Name)
	dir := f.rt.InstanceDir(rid)
	run := filepath.Join(dir, "run")
	for _, d := range []string{dir, run} {
		if err := os.Mkdir(d, 0o700); err != nil {
			f.tb.Fatal(err)
		}
		if err := as.Chown(d); err != nil {
			f.tb.Fatal(err)
		}
	}
	// Registered after the primary's: the replica goes first.
	f.tb.Cleanup(func() {
		if err := f.rt.Remove(context.Background(), rid); err != nil {
			f.tb.Errorf("remove replica %s: %v", rid, err)
		}
	})
	rdata := filepath.Join(dir, "pgdata")
	// Over the primary's socket as the superuser (its local replication
	// trust line); the standby itself streams over TCP as the role.
	if out, err := f.rt.Exec(ctx, pid, nil, "pg_basebackup", "--checkpoint=fast", "--wal-method=stream",
		"--slot="+runtime.ReplicaSlot, "--no-sync", "-D", rdata); err != nil {
		f.tb.Fatalf("pg_basebackup: %v: %s", err, out)
	}

	port := testkit.FreePort(f.tb)
	conf := "# The hand-made replica's settings (monitor tests).\n"
	for _, k := range []string{"fsync", "max_connections", "max_wal_size", "min_wal_size", "shared_buffers"} {
		conf += fmt.Sprintf("%s = '%s'\n", k, testConf[k])
	}
	// Replies to the primary every second, not ten: pg_stat_replication's
	// replay_lag (the time lag) follows a stuck replay that fast.
	conf += "wal_receiver_status_interval = '1s'\n"
	conf += fmt.Sprintf("listen_addresses = '127.0.0.1'\nport = %d\nunix_socket_directories = '%s'\nunix_socket_permissions = 0700\n", port, run)
	auto, err := os.ReadFile(filepath.Join(rdata, "postgresql.auto.conf"))
	if err != nil {
		f.tb.Fatal(err)
	}
	_, pport := f.rt.Address(pid)
	auto = append(auto, fmt.Sprintf("primary_conninfo = 'host=127.0.0.1 port=%d user=%s password=%s application_name=%s'\nprimary_slot_name = '%s'\n",
		pport, testReplUser, testReplPassword, runtime.ReplicaApplicationName(e.Name), runtime.ReplicaSlot)...)
	for name, data := range map[string][]byte{"pgdeck.conf": []byte(conf), "postgresql.auto.conf": auto, "standby.signal": nil} {
		if err := pgexec.WriteFileAs(as, filepath.Join(rdata, name), data, 0o600); err != nil {
			f.tb.Fatal(err)
		}
	}
	if c, err := f.rt.Cluster(rid); err != nil || c.SocketDir != run {
		f.tb.Fatalf("the runtime does not see the replica where it was made: %+v, %v", c, err)
	}
	if err := f.rt.Start(ctx, rid); err != nil {
		f.tb.Fatal(err)
	}
	f.waitStreaming(e)
	if _, err := f.st.SetInstancePort(ctx, e.ID, store.InstanceReplica, port); err != nil {
		f.tb.Fatal(err)
	}
	e, err = f.st.EnvironmentByID(ctx, e.ID)
	if err != nil {
		f.tb.Fatal(err)
	}
	return e
}

// waitStreaming waits until e's primary shows its replica streaming.
func (f *fixture) waitStreaming(e store.Environment) {
	f.tb.Helper()
	q := fmt.Sprintf("SELECT coalesce((SELECT state FROM pg_stat_replication WHERE application_name = '%s'), 'none')",
		runtime.ReplicaApplicationName(e.Name))
	testkit.Eventually(f.tb, e.Name+": the replica streams", 30*time.Second, func() (bool, string) {
		st := f.psql(primary(e.Name), q)
		return st == "streaming", "pg_stat_replication state: " + st
	})
}

// killInstance sends SIGKILL to the instance's postmaster and waits until
// it is gone.
func (f *fixture) killInstance(id runtime.InstanceID) {
	f.tb.Helper()
	c, err := f.rt.Cluster(id)
	if err != nil {
		f.tb.Fatal(err)
	}
	pid, ok := c.Running()
	if !ok {
		f.tb.Fatalf("%s: postmaster is not running", id)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		f.tb.Fatal(err)
	}
	testkit.Eventually(f.tb, fmt.Sprintf("%s: postmaster %d stops running after SIGKILL", id, pid), 5*time.Second, func() (bool, string) {
		_, running := c.Running()
		return !running, fmt.Sprintf("running: %v", running)
	})
}
