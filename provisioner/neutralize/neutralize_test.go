package neutralize

import (
	"errors"
	"strings"
	"testing"
)

func TestScript(t *testing.T) {
	sql, err := Script("18.0", []string{"base", "no_such_module", "mail", "web"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"-- base/data/neutralize.sql", "UPDATE ir_mail_server", "database.is_neutralized", "-- mail/data/neutralize.sql"} {
		if !strings.Contains(sql, want) {
			t.Errorf("script lacks %q", want)
		}
	}
	if strings.Contains(sql, "no_such_module") {
		t.Error("a module without a script is named in the script")
	}
	if strings.Index(sql, "-- base/") > strings.Index(sql, "-- mail/") {
		t.Error("the modules' scripts are not in the order given")
	}
	if _, err := Script("17.0", []string{"base"}); !errors.Is(err, ErrUnsupported) {
		t.Errorf("Odoo 17.0: error %v, want ErrUnsupported", err)
	}
}
