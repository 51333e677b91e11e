package backup

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// testPG is a scratch PostgreSQL cluster, run as Debian's postgres user
// when the tests run as root, that any local role may log in to over its
// socket (trust).
type testPG struct {
	c *pgexec.Cluster
}

var (
	sharedPGOnce sync.Once
	sharedPG     *testPG
	sharedPGErr  error
	sharedPGStop func()
)

// TestMain stops the shared cluster after the package's tests.
func TestMain(m *testing.M) {
	code := m.Run()
	if sharedPGStop != nil {
		sharedPGStop()
	}
	os.Exit(code)
}

// startPG returns the package's scratch cluster, started on first use;
// a missing binary fails the test with the command that installs it.
func startPG(t *testing.T) *testPG {
	t.Helper()
	sharedPGOnce.Do(func() {
		bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
		if err != nil {
			sharedPGErr = err
			return
		}
		user, err := pgexec.DefaultRunAs()
		if err != nil {
			sharedPGErr = err
			return
		}
		root, err := os.MkdirTemp("", "pgdeck-backup-test-")
		if err != nil {
			sharedPGErr = err
			return
		}
		os.Chmod(root, 0o755)
		port := testkit.FreePort(t)
		c := &pgexec.Cluster{
			BinDir:    bin,
			DataDir:   filepath.Join(root, "pgdata"),
			SocketDir: filepath.Join(root, "run"),
			Port:      port,
			User:      user,
		}
		sharedPGStop = func() {
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()
			c.Stop(ctx)
			testkit.StopPostgres(root, 30*time.Second)
			os.RemoveAll(root)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 120*time.Second)
		defer cancel()
		if err := c.Init(ctx, pgexec.InitOptions{
			HBA: []string{"local all all trust"},
			// A scratch cluster: durability buys nothing, CREATE DATABASE
			// per test is faster without it.
			Conf: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"},
		}); err != nil {
			sharedPGErr = err
			return
		}
		if err := c.Start(ctx); err != nil {
			sharedPGErr = err
			return
		}
		sharedPG = &testPG{c: c}
	})
	if sharedPGErr != nil {
		t.Fatalf("a scratch PostgreSQL is needed (install it with: apt-get install -y postgresql): %v", sharedPGErr)
	}
	return sharedPG
}

// bin returns the path of a PostgreSQL program.
func (p *testPG) bin(name string) string { return filepath.Join(p.c.BinDir, name) }

// stream runs a PostgreSQL program as the run-as user against the cluster.
func (p *testPG) stream(ctx context.Context, in io.Reader, out io.Writer, name string, args ...string) error {
	return p.c.Stream(ctx, in, out, 8<<10, name, args...)
}

// sql runs SQL as the superuser in db and returns psql's unaligned output.
func (p *testPG) sql(t *testing.T, db, sql string) string {
	t.Helper()
	var out bytes.Buffer
	if err := p.stream(t.Context(), strings.NewReader(sql), &out, "psql", "-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", db); err != nil {
		t.Fatalf("psql in %s: %v\n%s", db, err, sql)
	}
	return strings.TrimSpace(out.String())
}

// psqlAs restores a script into db as role user with ON_ERROR_STOP.
func (p *testPG) psqlAs(ctx context.Context, db, user string, script io.Reader) error {
	return p.stream(ctx, script, io.Discard, "psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-U", user, "-d", db)
}

var dbSeq struct {
	sync.Mutex
	n int
}

// newName returns a fresh database or role name.
func newName(prefix string) string {
	dbSeq.Lock()
	defer dbSeq.Unlock()
	dbSeq.n++
	return prefix + "_" + strings.ReplaceAll(time.Now().Format("150405.000000"), ".", "") + "_" + string(rune('a'+dbSeq.n%26))
}

// sourceSQL makes a database that has what an Odoo database has and what
// is awkward to dump: extensions made by the superuser, bytea, text with
// backslashes, tabs and newlines, a function whose $$ body holds `\!` and
// semicolons, a SQL-standard function body, sequences, comments, grants to
// a role the target cluster may lack, a default privilege.
const sourceSQL = `
CREATE EXTENSION pg_trgm;
CREATE EXTENSION unaccent;
CREATE TABLE res_partner (id serial PRIMARY KEY, name text NOT NULL, note text, image bytea, active boolean DEFAULT true);
INSERT INTO res_partner (name, note, image) VALUES
  ('Ana', E'back\\slash\ttab\nnewline\r\nCRLF', '\x00ff5c0a0d2e'::bytea),
  ('Bob', '\! touch /tmp/not-a-command; \.', NULL),
  ('Zoë ünaccent', 'semi;colon ''quote'' "dq" $$dollar$$', decode(repeat('00', 3000), 'hex'));
INSERT INTO res_partner (name) SELECT 'p' || g FROM generate_series(1, 2000) g;
CREATE TABLE ir_attachment (id serial PRIMARY KEY, store_fname varchar, checksum varchar(40), res_id int REFERENCES res_partner(id));
INSERT INTO ir_attachment (store_fname, checksum, res_id) VALUES ('ab/ab01', 'ab01', 1), ('cd/cd02', 'cd02', 2);
CREATE SEQUENCE ir_sequence_001 START 42;
SELECT nextval('ir_sequence_001'), nextval('ir_sequence_001');
CREATE FUNCTION shout(t text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  -- \! echo not a command; \o /tmp/x
  RETURN upper(t) || '\! ; select 1;';
END $$;
CREATE FUNCTION plus_one(a integer) RETURNS integer LANGUAGE sql
  BEGIN ATOMIC
    SELECT a + 1;
  END;
CREATE INDEX res_partner_name_trgm ON res_partner USING gin (name gin_trgm_ops);
CREATE VIEW partner_names AS SELECT id, unaccent(name) AS name FROM res_partner;
COMMENT ON TABLE res_partner IS 'Partners \ with a backslash';
COMMENT ON COLUMN res_partner.note IS 'a note';
DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'pgdeck_test_reader') THEN CREATE ROLE pgdeck_test_reader; END IF; END $$;
GRANT SELECT ON res_partner TO pgdeck_test_reader;
GRANT CREATE ON SCHEMA public TO PUBLIC;
ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT SELECT ON TABLES TO pgdeck_test_reader;
`

// checksumSQL sums up what a restore must bring back.
const checksumSQL = `
SELECT md5(string_agg(p::text, '|' ORDER BY id)) FROM res_partner p;
SELECT md5(string_agg(a::text, '|' ORDER BY id)) FROM ir_attachment a;
SELECT last_value, is_called FROM ir_sequence_001;
SELECT last_value FROM res_partner_id_seq;
SELECT shout('x'), plus_one(41);
SELECT count(*) FROM partner_names WHERE name = 'Zoe unaccent';
SELECT obj_description('res_partner'::regclass);
SELECT count(*) FROM res_partner WHERE name % 'Ana';
`

// makeSource creates a source database and returns its name.
func makeSource(t *testing.T, pg *testPG) string {
	t.Helper()
	db := newName("src")
	pg.sql(t, "postgres", "CREATE DATABASE "+db+" STRATEGY FILE_COPY")
	pg.sql(t, db, sourceSQL)
	return db
}

// makeTarget creates an empty database owned by a fresh non-superuser role,
// with pg_trgm made by the superuser (as Odoo's restore does), and returns
// the database and the role.
func makeTarget(t *testing.T, pg *testPG) (db, owner string) {
	t.Helper()
	db, owner = newName("dst"), newName("owner")
	pg.sql(t, "postgres", "CREATE ROLE "+owner+" LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE;\n"+
		"CREATE DATABASE "+db+" OWNER "+owner+" ENCODING 'unicode' TEMPLATE template0 STRATEGY FILE_COPY;")
	pg.sql(t, db, "CREATE EXTENSION IF NOT EXISTS pg_trgm")
	return db, owner
}

func pgDumpFunc(pg *testPG, db string, args ...string) func(context.Context, io.Writer) error {
	return func(ctx context.Context, w io.Writer) error {
		return pg.stream(ctx, nil, w, "pg_dump", append(append([]string{"--no-owner"}, args...), db)...)
	}
}
