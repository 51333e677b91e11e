package render

import (
	"strings"
	"testing"
)

func TestOdooConfFile(t *testing.T) {
	good := OdooConf{DBHost: "127.0.0.1", DBPort: 25432, DBUser: "odoo_shop", DBPassword: "pw", DBName: "shop_prod",
		DataDir: "/data/envs/shop-prod/filestore", AdminPassword: "adm", MaxConn: OdooMaxConn(100, 3, 5)}
	out, err := OdooConfFile(good)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"[options]\n", "db_host = 127.0.0.1\n", "db_port = 25432\n", "db_user = odoo_shop\n", "db_password = pw\n",
		"db_name = shop_prod\n", "dbfilter = ^shop_prod$\n", "list_db = False\n",
		"data_dir = /data/envs/shop-prod/filestore\n", "admin_passwd = adm\n",
		"\n; db_maxconn: max_connections 100 - 3 reserved for the superuser - 5 for pgdeck = 92 connections for Odoo; capped at Odoo's default of 64 per process",
		"\ndb_maxconn = 64\n",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("odoo.conf lacks %q:\n%s", want, text)
		}
	}

	bad := []struct {
		name string
		mut  func(*OdooConf)
	}{
		{"empty password", func(c *OdooConf) { c.DBPassword = "" }},
		{"newline in name", func(c *OdooConf) { c.DBName = "a\nb" }},
		{"port zero", func(c *OdooConf) { c.DBPort = 0 }},
		{"port too big", func(c *OdooConf) { c.DBPort = 70000 }},
		{"no admin password", func(c *OdooConf) { c.AdminPassword = "" }},
		{"no db_maxconn", func(c *OdooConf) { c.MaxConn = MaxConn{} }},
		{"newline in db_maxconn reason", func(c *OdooConf) { c.MaxConn.Why = "a\nhttp_port = 1" }},
	}
	for _, tc := range bad {
		t.Run(tc.name, func(t *testing.T) {
			c := good
			tc.mut(&c)
			if _, err := OdooConfFile(c); err == nil {
				t.Fatal("want an error")
			}
		})
	}
}

func TestRegexpQuote(t *testing.T) {
	for in, want := range map[string]string{"shop": "shop", "a.b": `a\.b`, "x+y": `x\+y`} {
		if got := regexpQuote(in); got != want {
			t.Errorf("regexpQuote(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestOdooConfOwnsOnlyDatabaseKeys(t *testing.T) {
	out, err := OdooConfFile(OdooConf{DBHost: "127.0.0.1", DBPort: 25432, DBUser: "u", DBPassword: "pw", DBName: "d",
		DataDir: "/x", AdminPassword: "adm", MaxConn: OdooMaxConn(100, 3, 5)})
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"db_host": true, "db_port": true, "db_user": true, "db_password": true, "db_name": true,
		"dbfilter": true, "list_db": true, "data_dir": true, "admin_passwd": true, "db_maxconn": true}
	for _, line := range strings.Split(string(out), "\n") {
		if line == "" || strings.HasPrefix(line, ";") || line == "[options]" {
			continue
		}
		key, _, _ := strings.Cut(line, " = ")
		if !allowed[key] {
			t.Errorf("odoo.conf sets %q, a key pgdeck does not own", key)
		}
	}
}

func TestOdooMaxConn(t *testing.T) {
	for _, tc := range []struct {
		max, reserved, pgdeck, want int
		why                         string
	}{
		{100, 3, 5, 64, "= 92 connections for Odoo; capped at Odoo's default of 64"},
		{50, 3, 5, 42, "max_connections 50 - 3 reserved for the superuser - 5 for pgdeck = 42 connections for Odoo ("},
		{20, 3, 5, 12, "= 12 connections"},
		{8, 3, 5, 1, "= 0 connections"},
	} {
		got := OdooMaxConn(tc.max, tc.reserved, tc.pgdeck)
		if got.Value != tc.want || !strings.Contains(got.Why, tc.why) {
			t.Errorf("OdooMaxConn(%d, %d, %d) = %d %q, want %d and %q", tc.max, tc.reserved, tc.pgdeck, got.Value, got.Why, tc.want, tc.why)
		}
	}
}

func TestHBA(t *testing.T) {
	lines := HBA("shop", "odoo_shop", "127.0.0.1/32")
	if lines[0] != "host shop,postgres odoo_shop 127.0.0.1/32 scram-sha-256" {
		t.Fatalf("first line = %q", lines[0])
	}
	if lines[1] != "host postgres pgdeck_monitor 127.0.0.1/32 scram-sha-256" {
		t.Errorf("second line = %q, want the monitoring role on postgres only", lines[1])
	}
	last := strings.Join(lines[2:], "\n")
	if !strings.Contains(last, "reject") {
		t.Fatalf("other TCP connections are not rejected: %q", last)
	}
}
