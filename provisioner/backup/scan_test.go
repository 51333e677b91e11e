package backup

import (
	"errors"
	"io"
	"strings"
	"testing"
)

// scanCases are dumps ScanPlain must accept (ok) or refuse; they also seed
// FuzzScanPlain.
var scanCases = []struct {
	name string
	sql  string
	ok   bool
}{
	{"shell escape", "SELECT 1;\n\\! touch /tmp/pwned\n", false},
	{"shell escape first", "\\! touch /tmp/pwned\n", false},
	{"include", "\\i /etc/passwd\n", false},
	{"output", "\\o /tmp/out\nSELECT 1;\n", false},
	{"client copy from program", "\\copy t from program 'id'\n", false},
	{"mid-statement", "SELECT 1 \\! id\n;\n", false},
	{"after unrestrict", "\\restrict abc\nSELECT 1;\n\\unrestrict abc\n\\! id\n", false},
	{"statement after unrestrict", "\\restrict abc\nSELECT 1;\n\\unrestrict abc\nSELECT 2;\n", false},
	{"unrestrict wrong key", "\\restrict abc\nSELECT 1;\n\\unrestrict abd\n", false},
	{"restrict after a statement", "SELECT 1;\n\\restrict abc\n", false},
	{"second restrict", "\\restrict abc\n\\restrict abd\n", false},
	{"meta after copy data", "COPY t (a) FROM stdin;\nx\\ty\n\\.\n\\! id\n", false},
	{"text after copy on its line", "COPY t (a) FROM stdin; \\! id\nx\n\\.\n", false},
	{"string after copy on its line", "COPY t (a) FROM stdin; SELECT '\nx\n\\.\n' \\! id;\n", false},
	{"ambiguous quote", "SET standard_conforming_strings = off;\nSELECT 'a\\' \\! id ';\n", false},
	{"variable", "SELECT :'x';\n", false},
	{"variable plain", "SELECT :foo;\n", false},
	{"number junk dollar", "SELECT 1$$ ' $$ \\! id '\n", false},
	{"copy hidden in begin", "CREATE FUNCTION begin() RETURNS int LANGUAGE sql RETURN 1; COPY t FROM stdin; end;\n", false},
	{"unterminated string", "SELECT 'abc\n", false},
	{"unterminated dollar", "SELECT $$abc\n", false},
	{"unterminated comment", "/* abc\n", false},

	{"empty", "", true},
	{"backslash in string", "SELECT 'a\\b', 'C:\\dir\\file';\n", true},
	{"backslash in E string", "SELECT E'it\\'s \\\\ \\! ok';\n", true},
	{"backslash in quoted identifier", "SELECT 1 AS \"a\\! b\";\n", true},
	{"backslash in copy data", "COPY public.t1 (id, b, s) FROM stdin;\n1\t\\\\x00\tback\\\\slash\\ttab\\nnewline\n2\t\\N\t\\! not a command\n\\.\nSELECT 1;\n", true},
	{"backslash in dollar body", "CREATE FUNCTION f() RETURNS text LANGUAGE plpgsql AS $$ begin return '\\! echo hi; select 1;'; end $$;\n", true},
	{"backslash in tagged dollar body", "DO $body$ BEGIN RAISE NOTICE '$$ \\! x'; END $body$;\n", true},
	{"backslash in comment", "-- \\! echo in a comment\n/* \\! id /* nested */ \\o */ SELECT 1;\n", true},
	{"restrict pair", "--\n-- PostgreSQL database dump\n--\n\n\\restrict Rvdl49HfCx\n\nSELECT 1;\n\n\\unrestrict Rvdl49HfCx\n\n", true},
	{"typecast and slice", "SELECT 'x'::text, (ARRAY[1,2,3])[1:2], f(a := 1);\n", true},
	{"begin atomic", "CREATE FUNCTION public.g(a integer) RETURNS integer\n    LANGUAGE sql\n    BEGIN ATOMIC\n SELECT (a + 1);\n SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END;\nEND;\nSELECT 1;\n", true},
	{"identifier with dollar", "SELECT a$b$c FROM t;\n", true},
	{"copy without data end", "COPY t (a) FROM stdin;\n1\n", false},
}

func TestScanPlain(t *testing.T) {
	for _, c := range scanCases {
		t.Run(c.name, func(t *testing.T) {
			err := ScanPlain(strings.NewReader(c.sql))
			if c.ok && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if !c.ok {
				var e *Error
				if !errors.As(err, &e) {
					t.Fatalf("error = %v, want *Error", err)
				}
				if !strings.Contains(e.Reason, "line ") {
					t.Errorf("error %q names no line", e.Reason)
				}
			}
		})
	}
}

func TestScanPlainLineNumber(t *testing.T) {
	err := ScanPlain(strings.NewReader("SELECT 1;\n-- x\nCOPY t (a) FROM stdin;\na\n\\.\n\n\\! id\n"))
	if err == nil || !strings.Contains(err.Error(), "line 7") {
		t.Fatalf("error = %v, want line 7", err)
	}
}

func restoreScript(t *testing.T, sql string) (string, error) {
	t.Helper()
	out, err := io.ReadAll(RestoreScript(strings.NewReader(sql)))
	return string(out), err
}

func TestRestoreScriptRewrites(t *testing.T) {
	in := `--
\restrict KEY1

SET statement_timeout = 0;
SET transaction_timeout = 0;
CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;
COMMENT ON EXTENSION pg_trgm IS 'text similarity';
CREATE EXTENSION unaccent;
CREATE TABLE public.t (a text);
COPY public.t (a) FROM stdin;
GRANT ALL ON x TO y;
\.
GRANT SELECT ON TABLE public.t TO reader;
REVOKE ALL ON SCHEMA public FROM PUBLIC;
ALTER DEFAULT PRIVILEGES FOR ROLE odoo IN SCHEMA public GRANT SELECT ON TABLES TO reader;
SELECT 'GRANT';

\unrestrict KEY1
`
	out, err := restoreScript(t, in)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"SET statement_timeout = 0;",
		"-- pgdeck: skipped: SET transaction_timeout = 0\n",
		"CREATE EXTENSION IF NOT EXISTS pg_trgm WITH SCHEMA public;",
		"-- pgdeck: skipped: COMMENT ON EXTENSION pg_trgm IS 'text similarity'\n",
		"CREATE EXTENSION IF NOT EXISTS unaccent;",
		"COPY public.t (a) FROM stdin;\nGRANT ALL ON x TO y;\n\\.\n",
		"DO $pgdeck$ BEGIN GRANT SELECT ON TABLE public.t TO reader; EXCEPTION WHEN undefined_object OR insufficient_privilege THEN RAISE WARNING",
		"DO $pgdeck$ BEGIN REVOKE ALL ON SCHEMA public FROM PUBLIC; EXCEPTION",
		"DO $pgdeck$ BEGIN ALTER DEFAULT PRIVILEGES FOR ROLE odoo",
		"SELECT 'GRANT';",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "KEY1") {
		t.Errorf("the dump's own restrict key is kept:\n%s", out)
	}
	if !strings.HasPrefix(out, `\restrict `) || !strings.Contains(out, "\n\\unrestrict ") {
		t.Errorf("output is not wrapped in a fresh restrict pair:\n%s", out)
	}
	if err := ScanPlain(strings.NewReader(out)); err != nil {
		t.Errorf("the output does not pass ScanPlain: %v", err)
	}
}

func TestRestoreScriptRefuses(t *testing.T) {
	for _, c := range scanCases {
		if c.ok {
			continue
		}
		t.Run(c.name, func(t *testing.T) {
			_, err := restoreScript(t, c.sql)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("error = %v, want *Error", err)
			}
		})
	}
}

// metaCommands returns the lines of a RestoreScript output that are psql
// meta-commands other than its own \restrict/\unrestrict pair, by
// ScanPlain's reading.
func checkNoMeta(t *testing.T, out string) {
	t.Helper()
	if err := ScanPlain(strings.NewReader(out)); err != nil {
		t.Fatalf("RestoreScript output is refused by ScanPlain: %v\n%s", err, out)
	}
}

// FuzzScanPlain: neither function panics, and whatever ScanPlain accepts,
// RestoreScript turns into a script that has no meta-command of its own
// (ScanPlain accepts it, with its fresh \restrict pair).
func FuzzScanPlain(f *testing.F) {
	for _, c := range scanCases {
		f.Add(c.sql)
	}
	f.Fuzz(func(t *testing.T, sql string) {
		scanErr := ScanPlain(strings.NewReader(sql))
		out, err := io.ReadAll(RestoreScript(strings.NewReader(sql)))
		if scanErr != nil {
			if err == nil {
				t.Fatalf("ScanPlain refused (%v) but RestoreScript did not", scanErr)
			}
			return
		}
		if err != nil {
			t.Fatalf("ScanPlain accepted but RestoreScript failed: %v", err)
		}
		checkNoMeta(t, string(out))
	})
}

// TestLongCopyLine: COPY data lines longer than the scanner's buffer pass
// through whole, and only a line that is exactly \. ends the data.
func TestLongCopyLine(t *testing.T) {
	long := strings.Repeat("x';\\\\!", 40_000)
	sql := "COPY public.t (a) FROM stdin;\n" + long + "\n" + long + "\\.\n\\.\nSELECT 1;\n"
	if err := ScanPlain(strings.NewReader(sql)); err != nil {
		t.Fatal(err)
	}
	out, err := restoreScript(t, sql)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, sql) {
		t.Error("RestoreScript changed the COPY data")
	}
	if err := ScanPlain(strings.NewReader(sql + "COPY public.t (a) FROM stdin;\n" + long)); err == nil {
		t.Error("a dump cut inside a long COPY line passed")
	}
}
