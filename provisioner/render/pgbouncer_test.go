package render

import (
	"strings"
	"testing"
	"time"
)

const testVerifier = "SCRAM-SHA-256$4096:JYsv/Bh07J1Hx4IqX0fLdA==$kYl9yXzI8n1GJfDcaWmq2R3kP0y8CwGxQ0m5b2V6u0o=:aW3xq8d1p0s9Q2VYk5m7n3b1c0z6x4w2e8r5t7y9u1i="

func goodBouncer() PgBouncerConf {
	return PgBouncerConf{
		ListenAddr: "127.0.0.1", ListenPort: 26432, ServerHost: "127.0.0.1", ServerPort: 25432, DBName: "shop_prod",
		Pool:           PoolerSettings{Enabled: true, PoolSize: 30, PoolMode: PoolModeTransaction, MaxClientConn: 200},
		MaxConnections: 200, AdminUser: "pgdeck_console",
		AuthFile: "/data/envs/shop-prod/pgbouncer/userlist.txt", LogFile: "/data/envs/shop-prod/pgbouncer/pgbouncer.log",
		PidFile: "/data/envs/shop-prod/pgbouncer/pgbouncer.pid", UnixSocketDir: "/data/envs/shop-prod/pgbouncer",
	}
}

func TestPgBouncerIni(t *testing.T) {
	out, err := PgBouncerIni(goodBouncer())
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"[databases]\n",
		"\nshop_prod = host=127.0.0.1 port=25432 dbname=shop_prod pool_mode=transaction pool_size=30 max_db_connections=35\n",
		"\npostgres = host=127.0.0.1 port=25432 dbname=postgres pool_mode=session pool_size=10 max_db_connections=10\n",
		"\n[pgbouncer]\n",
		"\nlisten_addr = 127.0.0.1\n", "\nlisten_port = 26432\n",
		"\nunix_socket_dir = /data/envs/shop-prod/pgbouncer\n",
		"\nauth_type = scram-sha-256\n", "\nauth_file = /data/envs/shop-prod/pgbouncer/userlist.txt\n",
		"\nadmin_users = pgdeck_console\n", "\nstats_users = pgdeck_console\n",
		"\npool_mode = session\n", "\ndefault_pool_size = 30\n", "\nmax_client_conn = 200\n",
		"\nreserve_pool_size = 5\n", "\nreserve_pool_timeout = 5\n",
		"\nignore_startup_parameters = extra_float_digits\n",
		"\nlogfile = /data/envs/shop-prod/pgbouncer/pgbouncer.log\n", "\npidfile = /data/envs/shop-prod/pgbouncer/pgbouncer.pid\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("pgbouncer.ini lacks %q:\n%s", want, text)
		}
	}
	// No wildcard entry, no forced user, no password in the file.
	for _, bad := range []string{"\n* =", "user=", "password"} {
		if strings.Contains(text, bad) {
			t.Errorf("pgbouncer.ini holds %q:\n%s", bad, text)
		}
	}
}

func TestPgBouncerIniPostgresAlwaysSession(t *testing.T) {
	for _, mode := range []string{PoolModeTransaction, PoolModeSession} {
		c := goodBouncer()
		c.Pool.PoolMode = mode
		out, err := PgBouncerIni(c)
		if err != nil {
			t.Fatal(err)
		}
		text := string(out)
		if !strings.Contains(text, "\nshop_prod = host=127.0.0.1 port=25432 dbname=shop_prod pool_mode="+mode+" ") {
			t.Errorf("%s: the environment's database is not in %s mode:\n%s", mode, mode, text)
		}
		if !strings.Contains(text, "\npostgres = host=127.0.0.1 port=25432 dbname=postgres pool_mode=session ") {
			t.Errorf("%s: postgres is not in session mode:\n%s", mode, text)
		}
	}
}

func TestPgBouncerIniOptional(t *testing.T) {
	c := goodBouncer()
	c.UnixSocketDir = ""
	c.ListenAddr = "*"
	c.ServerHost = "/run/postgresql"
	out, err := PgBouncerIni(c)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"\nunix_socket_dir = \n", "\nlisten_addr = *\n", "shop_prod = host=/run/postgresql port=25432 "} {
		if !strings.Contains(string(out), want) {
			t.Errorf("pgbouncer.ini lacks %q:\n%s", want, out)
		}
	}
}

func TestPgBouncerIniRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		mut  func(*PgBouncerConf)
		want string
	}{
		{"statement mode", func(c *PgBouncerConf) { c.Pool.PoolMode = "statement" }, "pool_mode"},
		{"no pool mode", func(c *PgBouncerConf) { c.Pool.PoolMode = "" }, "pool_mode"},
		{"pool size 0", func(c *PgBouncerConf) { c.Pool.PoolSize = 0 }, "pool_size"},
		{"pool size over max_connections", func(c *PgBouncerConf) { c.Pool.PoolSize = 178 }, "pool_size"},
		{"max_client_conn 0", func(c *PgBouncerConf) { c.Pool.MaxClientConn = 0 }, "max_client_conn"},
		{"newline in database", func(c *PgBouncerConf) { c.DBName = "shop\n* = host=evil" }, "database"},
		{"quote in database", func(c *PgBouncerConf) { c.DBName = `shop"` }, "database"},
		{"space in database", func(c *PgBouncerConf) { c.DBName = "shop prod" }, "database"},
		{"empty database", func(c *PgBouncerConf) { c.DBName = "" }, "database"},
		{"database postgres", func(c *PgBouncerConf) { c.DBName = "postgres" }, "taken"},
		{"database pgbouncer", func(c *PgBouncerConf) { c.DBName = "pgbouncer" }, "taken"},
		{"long database", func(c *PgBouncerConf) { c.DBName = strings.Repeat("a", 64) }, "database"},
		{"admin with comma", func(c *PgBouncerConf) { c.AdminUser = "pgdeck,odoo_shop" }, "admin user"},
		{"no admin", func(c *PgBouncerConf) { c.AdminUser = "" }, "admin user"},
		{"listen host name", func(c *PgBouncerConf) { c.ListenAddr = "localhost\nauth_type = trust" }, "listen_addr"},
		{"listen port 0", func(c *PgBouncerConf) { c.ListenPort = 0 }, "listen_port"},
		{"server port too big", func(c *PgBouncerConf) { c.ServerPort = 70000 }, "server port"},
		{"server host with space", func(c *PgBouncerConf) { c.ServerHost = "127.0.0.1 dbname=other" }, "server host"},
		{"relative auth_file", func(c *PgBouncerConf) { c.AuthFile = "userlist.txt" }, "auth_file"},
		{"auth_file with newline", func(c *PgBouncerConf) { c.AuthFile = "/x\nauth_type = trust" }, "auth_file"},
		{"logfile with dotdot", func(c *PgBouncerConf) { c.LogFile = "/data/../etc/passwd" }, "logfile"},
		{"no pidfile", func(c *PgBouncerConf) { c.PidFile = "" }, "pidfile"},
		{"socket dir with semicolon", func(c *PgBouncerConf) { c.UnixSocketDir = "/tmp;x" }, "unix_socket_dir"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := goodBouncer()
			tc.mut(&c)
			_, err := PgBouncerIni(c)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want one about %s", err, tc.want)
			}
		})
	}
}

func TestValidatePoolerSettings(t *testing.T) {
	for _, tc := range []struct {
		name     string
		s        PoolerSettings
		maxConns int
		want     map[string]string
	}{
		{"defaults", DefaultPoolerSettings(), 100, nil},
		{"largest pool", PoolerSettings{PoolSize: 77, PoolMode: "session", MaxClientConn: 77}, 100, nil},
		{"pool one over", PoolerSettings{PoolSize: 78, PoolMode: "transaction", MaxClientConn: 100}, 100,
			map[string]string{"pool_size": "use 1 to 77 (max_connections 100 leaves 77 after 3 for the superuser, 5 for pgdeck, 10 for the postgres entry and 5 in reserve)"}},
		{"pool zero", PoolerSettings{PoolSize: 0, PoolMode: "transaction", MaxClientConn: 100}, 100, map[string]string{"pool_size": "use 1 to 77"}},
		{"negative pool", PoolerSettings{PoolSize: -5, PoolMode: "transaction", MaxClientConn: 100}, 100, map[string]string{"pool_size": "use 1 to 77"}},
		{"tiny server", PoolerSettings{PoolSize: 1, PoolMode: "transaction", MaxClientConn: 100}, 20, map[string]string{"pool_size": "use 1 to 0"}},
		{"statement mode", PoolerSettings{PoolSize: 20, PoolMode: "statement", MaxClientConn: 100}, 100, map[string]string{"pool_mode": "use session or transaction"}},
		{"mode case", PoolerSettings{PoolSize: 20, PoolMode: "Transaction", MaxClientConn: 100}, 100, map[string]string{"pool_mode": "use session or transaction"}},
		{"clients under pool", PoolerSettings{PoolSize: 30, PoolMode: "transaction", MaxClientConn: 20}, 100,
			map[string]string{"max_client_conn": "use at least the pool size (30)"}},
		{"clients over limit", PoolerSettings{PoolSize: 30, PoolMode: "transaction", MaxClientConn: 10001}, 100, map[string]string{"max_client_conn": "use 1 to 10000"}},
		{"everything wrong", PoolerSettings{PoolSize: 0, PoolMode: "x", MaxClientConn: 0}, 100,
			map[string]string{"pool_size": "use 1 to", "pool_mode": "session or transaction", "max_client_conn": "use 1 to 10000"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := map[string]string{}
			for _, e := range ValidatePoolerSettings(tc.s, tc.maxConns) {
				got[e.Field] = e.Message
			}
			if len(got) != len(tc.want) {
				t.Fatalf("errors %v, want %v", got, tc.want)
			}
			for f, w := range tc.want {
				if !strings.Contains(got[f], w) {
					t.Errorf("%s: %q lacks %q", f, got[f], w)
				}
			}
		})
	}
	if d := DefaultPoolerSettings(); d.Enabled || d.PoolSize != 20 || d.PoolMode != "transaction" || d.MaxClientConn != 100 {
		t.Errorf("defaults %+v", d)
	}
	if MaxPoolSize(5) != 0 {
		t.Error("MaxPoolSize goes negative")
	}
}

func TestPgBouncerUserlist(t *testing.T) {
	out, err := PgBouncerUserlist([]AuthUser{{"odoo_shop", testVerifier}, {"pgdeck_console", testVerifier}})
	if err != nil {
		t.Fatal(err)
	}
	want := `"odoo_shop" "` + testVerifier + "\"\n" + `"pgdeck_console" "` + testVerifier + "\"\n"
	if string(out) != want {
		t.Errorf("userlist\n got %q\nwant %q", out, want)
	}
	for _, tc := range []struct {
		name  string
		users []AuthUser
	}{
		{"none", nil},
		{"plain password", []AuthUser{{"odoo_shop", "secret"}}},
		{"md5", []AuthUser{{"odoo_shop", "md5" + strings.Repeat("a", 32)}}},
		{"empty secret", []AuthUser{{"odoo_shop", ""}}},
		{"scram with a quote", []AuthUser{{"odoo_shop", testVerifier + `" "x`}}},
		{"scram with a newline", []AuthUser{{"odoo_shop", testVerifier + "\n\"admin\" \"pw\""}}},
		{"scram, no iterations", []AuthUser{{"odoo_shop", strings.Replace(testVerifier, "4096:", ":", 1)}}},
		{"quote in name", []AuthUser{{`odoo"shop`, testVerifier}}},
		{"newline in name", []AuthUser{{"odoo\nshop", testVerifier}}},
		{"empty name", []AuthUser{{"", testVerifier}}},
		{"twice", []AuthUser{{"odoo_shop", testVerifier}, {"odoo_shop", testVerifier}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := PgBouncerUserlist(tc.users); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestOdooMaxConnForPool(t *testing.T) {
	for _, tc := range []struct {
		mode                                     string
		pool, maxClient, postgresPool, pgdeck, v int
		why                                      []string
	}{
		{PoolModeTransaction, 20, 100, 10, 5, 64, []string{"max_client_conn 100 - 10 for the postgres entry - 5 for pgdeck = 85 client connections for Odoo",
			"transaction pooling shares the pool's 20 server connections", "capped at Odoo's default of 64", "--workers N"}},
		{PoolModeTransaction, 20, 50, 10, 5, 35, []string{"= 35 client connections", "shares the pool's 20"}},
		{PoolModeSession, 20, 100, 10, 5, 20, []string{"session pooling gives each its own server connection, so at most the pool size 20"}},
		{PoolModeSession, 70, 1000, 10, 5, 64, []string{"at most the pool size 70", "capped at Odoo's default of 64"}},
		{PoolModeSession, 40, 30, 10, 5, 15, []string{"= 15 client connections"}},
		{PoolModeTransaction, 20, 10, 10, 5, 1, []string{"= -5 client connections"}},
	} {
		got := OdooMaxConnForPool(tc.mode, tc.pool, tc.maxClient, tc.postgresPool, tc.pgdeck)
		if got.Value != tc.v {
			t.Errorf("%s pool %d max_client_conn %d: db_maxconn %d, want %d (%s)", tc.mode, tc.pool, tc.maxClient, got.Value, tc.v, got.Why)
		}
		for _, w := range tc.why {
			if !strings.Contains(got.Why, w) {
				t.Errorf("why %q lacks %q", got.Why, w)
			}
		}
		if strings.ContainsAny(got.Why, "\r\n") {
			t.Errorf("why spans lines: %q", got.Why)
		}
	}
	// It renders into odoo.conf like OdooMaxConn's.
	_, err := OdooConfFile(OdooConf{DBHost: "127.0.0.1", DBPort: 26432, DBUser: "u", DBPassword: "pw", DBName: "d",
		DataDir: "/x", AdminPassword: "adm", MaxConn: OdooMaxConnForPool(PoolModeTransaction, 20, 100, PostgresPoolSize, PgdeckConnections)})
	if err != nil {
		t.Fatal(err)
	}
}

func TestPoolerSizing(t *testing.T) {
	base := PoolerSizingInput{PoolSize: 20, PoolMode: PoolModeTransaction, MaxClientConn: 100, DBMaxConn: 16, OdooProcesses: 4, MaxConnections: 100}
	for _, tc := range []struct {
		name string
		mut  func(*PoolerSizingInput)
		want []string // one per returned sentence, in order
	}{
		{"nobody waits", func(*PoolerSizingInput) {}, []string{"No client waits: pool size 20 is enough for now."}},
		{"clients wait, room to grow", func(in *PoolerSizingInput) { in.ClientsWaiting = 12; in.MaxWait = 1500 * time.Millisecond }, []string{
			"12 clients wait for a server connection (the longest for 1.5s): raise the pool size from 20 to about 32 (at most 77: max_connections 100 leaves 77 after 3 for the superuser, 5 for pgdeck, 10 for the postgres entry and 5 in reserve)."}},
		{"one client waits, growth capped", func(in *PoolerSizingInput) { in.PoolSize = 75; in.ClientsWaiting = 1 }, []string{
			"1 client waits for a server connection: raise the pool size from 75 to about 76"}},
		{"many wait, capped at the top", func(in *PoolerSizingInput) { in.PoolSize = 70; in.ClientsWaiting = 40 }, []string{"40 clients wait for a server connection: raise the pool size from 70 to about 77 (at most 77"}},
		{"pool at the top", func(in *PoolerSizingInput) { in.PoolSize = 77; in.ClientsWaiting = 3 }, []string{
			"3 clients wait for a server connection and the pool already takes all that max_connections 100 leaves: raise max_connections (a restart; check the plan's memory) or look for slow transactions holding server connections."}},
		{"pool over the top", func(in *PoolerSizingInput) { in.PoolSize = 90 }, []string{
			"Pool size 90 is more than PostgreSQL can give: max_connections 100 leaves 77 after 3 for the superuser, 5 for pgdeck, 10 for the postgres entry and 5 in reserve. Lower the pool size to 77 or raise max_connections (a restart)."}},
		{"odoo opens more than max_client_conn", func(in *PoolerSizingInput) { in.DBMaxConn = 64 }, []string{
			"Odoo may open 256 connections (4 processes x db_maxconn 64) but max_client_conn 100 leaves 85 after the postgres entry and pgdeck: PgBouncer refuses the rest. Raise max_client_conn to 271 or lower db_maxconn."}},
		{"unknown process count counts as one", func(in *PoolerSizingInput) { in.OdooProcesses = 0; in.DBMaxConn = 90 }, []string{
			"Odoo may open 90 connections (1 process x db_maxconn 90)"}},
		{"session mode with waiters", func(in *PoolerSizingInput) { in.PoolMode = PoolModeSession; in.ClientsWaiting = 5 }, []string{
			"5 clients wait for a server connection: raise the pool size from 20 to about 25",
			"In session mode a client keeps its server connection until it disconnects, idle or not: transaction mode lets Odoo's idle pooled connections share the pool."}},
		{"session mode, nobody waits", func(in *PoolerSizingInput) { in.PoolMode = PoolModeSession }, []string{"No client waits"}},
		{"everything at once", func(in *PoolerSizingInput) { in.PoolSize = 90; in.DBMaxConn = 64; in.ClientsWaiting = 2 }, []string{
			"Pool size 90 is more", "Odoo may open 256", "2 clients wait for a server connection and the pool already takes all"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.mut(&in)
			got := PoolerSizing(in)
			if len(got) != len(tc.want) {
				t.Fatalf("got %d sentences, want %d:\n%s", len(got), len(tc.want), strings.Join(got, "\n"))
			}
			for i, w := range tc.want {
				if !strings.HasPrefix(got[i], w) {
					t.Errorf("sentence %d\n got %q\nwant %q…", i, got[i], w)
				}
			}
		})
	}
}
