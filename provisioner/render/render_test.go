package render

import (
	"strings"
	"testing"
)

func TestOdooConfFile(t *testing.T) {
	good := OdooConf{DBHost: "127.0.0.1", DBPort: 25432, DBUser: "odoo_shop", DBPassword: "pw", DBName: "shop_prod",
		DataDir: "/data/envs/shop-prod/filestore", AdminPassword: "adm"}
	out, err := OdooConfFile(good)
	if err != nil {
		t.Fatal(err)
	}
	text := string(out)
	for _, want := range []string{
		"[options]\n", "db_host = 127.0.0.1\n", "db_port = 25432\n", "db_user = odoo_shop\n", "db_password = pw\n",
		"db_name = shop_prod\n", "dbfilter = ^shop_prod$\n", "list_db = False\n",
		"data_dir = /data/envs/shop-prod/filestore\n", "admin_passwd = adm\n",
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

func TestHBA(t *testing.T) {
	lines := HBA("shop", "odoo_shop")
	if lines[0] != "host shop odoo_shop 127.0.0.1/32 scram-sha-256" {
		t.Fatalf("first line = %q", lines[0])
	}
	last := strings.Join(lines[1:], "\n")
	if !strings.Contains(last, "reject") {
		t.Fatalf("other TCP connections are not rejected: %q", last)
	}
}
