package render

import (
	"errors"
	"strings"
	"testing"
)

// Rows as PostgreSQL 15 reports them in pg_settings.
var (
	workMemRow       = Setting{Name: "work_mem", VarType: "integer", Unit: "kB", MinVal: "64", MaxVal: "2147483647", Context: "user"}
	sharedBuffersRow = Setting{Name: "shared_buffers", VarType: "integer", Unit: "8kB", MinVal: "16", MaxVal: "1073741823", Context: "postmaster"}
	maxWalSizeRow    = Setting{Name: "max_wal_size", VarType: "integer", Unit: "MB", MinVal: "2", MaxVal: "2147483647", Context: "sighup"}
	walBuffersRow    = Setting{Name: "wal_buffers", VarType: "integer", Unit: "8kB", MinVal: "-1", MaxVal: "262143", Context: "postmaster"}
	statementTimeout = Setting{Name: "statement_timeout", VarType: "integer", Unit: "ms", MinVal: "0", MaxVal: "2147483647", Context: "user"}
	checkpointTmo    = Setting{Name: "checkpoint_timeout", VarType: "integer", Unit: "s", MinVal: "30", MaxVal: "86400", Context: "sighup"}
	logRotationAge   = Setting{Name: "log_rotation_age", VarType: "integer", Unit: "min", MinVal: "0", MaxVal: "35791394", Context: "sighup"}
	maxConnRow       = Setting{Name: "max_connections", VarType: "integer", MinVal: "1", MaxVal: "262143", Context: "postmaster"}
	randomPageCost   = Setting{Name: "random_page_cost", VarType: "real", MinVal: "0", MaxVal: "1.79769e+308", Context: "user"}
	ckptTarget       = Setting{Name: "checkpoint_completion_target", VarType: "real", MinVal: "0", MaxVal: "1", Context: "sighup"}
	hugePages        = Setting{Name: "huge_pages", VarType: "enum", EnumVals: []string{"off", "on", "try"}, Context: "postmaster"}
	jitRow           = Setting{Name: "jit", VarType: "bool", Context: "user"}
	appName          = Setting{Name: "application_name", VarType: "string", Context: "user"}
)

func TestParseValueAccepts(t *testing.T) {
	for _, tc := range []struct {
		row       Setting
		in, canon string
		base      float64
	}{
		{workMemRow, "8MB", "8MB", 8192},
		{workMemRow, " 8 MB ", "8MB", 8192},
		{workMemRow, "64kB", "64kB", 64},
		{workMemRow, "1GB", "1GB", 1048576},
		{workMemRow, "1.5MB", "1.5MB", 1536},
		{workMemRow, "65536B", "65536B", 64},
		{workMemRow, "1TB", "1TB", 1 << 30},
		{sharedBuffersRow, "128MB", "128MB", 16384},
		{sharedBuffersRow, "4GB", "4GB", 524288},
		{sharedBuffersRow, "132kB", "132kB", 16}, // 16.5 pages: PostgreSQL rounds half to even
		{maxWalSizeRow, "1GB", "1GB", 1024},
		{maxWalSizeRow, "1280MB", "1280MB", 1280},
		{walBuffersRow, "-1", "-1", -1}, // automatic, no unit needed
		{walBuffersRow, "16MB", "16MB", 2048},
		{statementTimeout, "0", "0", 0}, // off, no unit needed
		{statementTimeout, "30s", "30s", 30000},
		{statementTimeout, "250ms", "250ms", 250},
		{statementTimeout, "1500us", "1500us", 2}, // 1.5 ms rounds to even
		{statementTimeout, "2min", "2min", 120000},
		{statementTimeout, "1h", "1h", 3600000},
		{checkpointTmo, "5min", "5min", 300},
		{checkpointTmo, "1d", "1d", 86400},
		{logRotationAge, "1d", "1d", 1440},
		{maxConnRow, "200", "200", 200},
		{maxConnRow, "+5", "+5", 5},
		{randomPageCost, "1.1", "1.1", 1.1},
		{randomPageCost, "4", "4", 4},
		{randomPageCost, ".5", ".5", 0.5},
		{randomPageCost, "1e1", "1e1", 10},
		{ckptTarget, "0.9", "0.9", 0.9},
		{ckptTarget, "1", "1", 1},
		{hugePages, "try", "try", 0},
		{hugePages, "TRY", "try", 0},
		{jitRow, "off", "off", 0},
		{jitRow, "ON", "on", 1},
		{jitRow, "true", "on", 1},
		{jitRow, "t", "on", 1},
		{jitRow, "yes", "on", 1},
		{jitRow, "0", "off", 0},
		{jitRow, "of", "off", 0},
		{jitRow, "n", "off", 0},
		{appName, "odoo", "odoo", 0},
	} {
		t.Run(tc.row.Name+"="+tc.in, func(t *testing.T) {
			canon, base, err := ParseValue(tc.row, tc.in)
			if err != nil {
				t.Fatalf("ParseValue: %v", err)
			}
			if canon != tc.canon || base != tc.base {
				t.Errorf("ParseValue = %q, %v; want %q, %v", canon, base, tc.canon, tc.base)
			}
		})
	}
}

func TestParseValueRefuses(t *testing.T) {
	for _, tc := range []struct {
		row  Setting
		in   string
		want string // the whole operator message, name included
	}{
		{workMemRow, "8mb", `work_mem: units are case-sensitive: use kB, MB or GB (e.g. 8MB), not "mb"`},
		{workMemRow, "8KB", `work_mem: units are case-sensitive: use kB, MB or GB (e.g. 8MB), not "KB"`},
		{workMemRow, "8Gb", `work_mem: units are case-sensitive: use kB, MB or GB (e.g. 8MB), not "Gb"`},
		{workMemRow, "8M", `work_mem: "M" is not a unit PostgreSQL knows: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "8MiB", `work_mem: "MiB" is not a unit PostgreSQL knows: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "8s", `work_mem: is a size, not a duration: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "8192", `work_mem: add a unit: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "MB", `work_mem: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "eight MB", `work_mem: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "0x10MB", `work_mem: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "8 MB extra", `work_mem: use kB, MB or GB (e.g. 8MB)`},
		{workMemRow, "", `work_mem: enter a value (or reset it to the recommendation)`},
		{workMemRow, "   ", `work_mem: enter a value (or reset it to the recommendation)`},
		{workMemRow, "32kB", `work_mem: 32kB is below PostgreSQL's minimum of 64kB`},
		{workMemRow, "-1MB", `work_mem: -1MB is below PostgreSQL's minimum of 64kB`},
		{workMemRow, "4TB", `work_mem: 4TB is above PostgreSQL's maximum of 2147483647kB`},
		{workMemRow, "8MB'; DROP", `work_mem: quotes, backslashes and control characters are not allowed`},
		{workMemRow, "8MB\nfsync = off", `work_mem: quotes, backslashes and control characters are not allowed`},
		{sharedBuffersRow, "64kB", `shared_buffers: 64kB is below PostgreSQL's minimum of 128kB`},
		{sharedBuffersRow, "16384", `shared_buffers: add a unit: use kB, MB or GB (e.g. 8MB)`},
		{sharedBuffersRow, "9TB", `shared_buffers: 9TB is above PostgreSQL's maximum of 8589934584kB`},
		{maxWalSizeRow, "1gb", `max_wal_size: units are case-sensitive: use MB or GB (e.g. 1GB), not "gb"`},
		{maxWalSizeRow, "1kB", `max_wal_size: 1kB is below PostgreSQL's minimum of 2MB`},
		{walBuffersRow, "-2", `wal_buffers: add a unit: use kB, MB or GB (e.g. 8MB)`},
		{walBuffersRow, "4GB", `wal_buffers: 4GB is above PostgreSQL's maximum of 2097144kB`},
		{statementTimeout, "30", `statement_timeout: add a unit: use ms, s or min (e.g. 200ms)`},
		{statementTimeout, "30S", `statement_timeout: units are case-sensitive: use ms, s or min (e.g. 200ms), not "S"`},
		{statementTimeout, "30sec", `statement_timeout: "sec" is not a unit PostgreSQL knows: use ms, s or min (e.g. 200ms)`},
		{statementTimeout, "30MB", `statement_timeout: is a duration, not a size: use ms, s or min (e.g. 200ms)`},
		{statementTimeout, "-5s", `statement_timeout: -5s is below PostgreSQL's minimum of 0`},
		{checkpointTmo, "10s", `checkpoint_timeout: 10s is below PostgreSQL's minimum of 30s`},
		{checkpointTmo, "2d", `checkpoint_timeout: 2d is above PostgreSQL's maximum of 1d`},
		{checkpointTmo, "5", `checkpoint_timeout: add a unit: use s, min or h (e.g. 30s)`},
		{logRotationAge, "5", `log_rotation_age: add a unit: use s, min, h or d (e.g. 5min)`},
		{maxConnRow, "200MB", `max_connections: takes a plain number without a unit (e.g. 100)`},
		{maxConnRow, "2.5", `max_connections: takes a whole number (e.g. 100)`},
		{maxConnRow, "1e3", `max_connections: takes a whole number (e.g. 100)`},
		{maxConnRow, "0x64", `max_connections: takes a whole number (e.g. 100)`},
		{maxConnRow, "many", `max_connections: takes a whole number (e.g. 100)`},
		{maxConnRow, "0", `max_connections: 0 is below PostgreSQL's minimum of 1`},
		{maxConnRow, "300000", `max_connections: 300000 is above PostgreSQL's maximum of 262143`},
		{randomPageCost, "1,1", `random_page_cost: takes a number (e.g. 1.1)`},
		{randomPageCost, "NaN", `random_page_cost: takes a number (e.g. 1.1)`},
		{randomPageCost, "Inf", `random_page_cost: takes a number (e.g. 1.1)`},
		{randomPageCost, "1e400", `random_page_cost: is out of range`},
		{randomPageCost, "-1", `random_page_cost: -1 is below PostgreSQL's minimum of 0`},
		{ckptTarget, "1.5", `checkpoint_completion_target: 1.5 is above PostgreSQL's maximum of 1`},
		{hugePages, "maybe", `huge_pages: use one of off, on, try`},
		{jitRow, "o", `jit: use on or off`},
		{jitRow, "enable", `jit: use on or off`},
		{appName, "a\tb", `application_name: quotes, backslashes and control characters are not allowed`},
	} {
		t.Run(tc.row.Name+"="+tc.in, func(t *testing.T) {
			_, _, err := ParseValue(tc.row, tc.in)
			var ve *ValueError
			if !errors.As(err, &ve) {
				t.Fatalf("ParseValue(%q) = %v, want a *ValueError", tc.in, err)
			}
			if err.Error() != tc.want {
				t.Errorf("message\n got %q\nwant %q", err.Error(), tc.want)
			}
			if ve.Name != tc.row.Name || !strings.HasSuffix(tc.want, ve.Message) {
				t.Errorf("ValueError{%q, %q} does not split the message", ve.Name, ve.Message)
			}
		})
	}
}

func TestParseValueBadRow(t *testing.T) {
	for _, row := range []Setting{
		{Name: "x", VarType: "integer", Unit: "furlongs"},
		{Name: "x", VarType: "integer", Unit: "0kB"},
		{Name: "x", VarType: "complex"},
	} {
		_, _, err := ParseValue(row, "1")
		var ve *ValueError
		if err == nil || errors.As(err, &ve) {
			t.Errorf("row %+v: err = %v, want a non-operator error", row, err)
		}
	}
}

func TestValidateOverride(t *testing.T) {
	if got, err := ValidateOverride(workMemRow, " 16 MB"); err != nil || got != "16MB" {
		t.Errorf("ValidateOverride = %q, %v", got, err)
	}
	if _, err := ValidateOverride(workMemRow, "16mb"); err == nil {
		t.Error("want an error")
	}
}

func TestFormatBytes(t *testing.T) {
	for in, want := range map[int64]string{
		0: "0B", 1: "1B", 1023: "1023B", KiB: "1kB", 13617 * KiB: "13617kB", MiB: "1MB", 1536 * MiB: "1536MB",
		GiB: "1GB", 16 * GiB: "16GB", 1 << 40: "1TB", 3 << 40: "3TB", -GiB: "-1GB",
	} {
		if got := FormatBytes(in); got != want {
			t.Errorf("FormatBytes(%d) = %q, want %q", in, got, want)
		}
	}
}
