//go:build odoo

package main

// The real-Odoo tests of backups and restores (issue #12): pgdeck's backup
// and restore of an environment Odoo writes to, and the round trip with
// Odoo's own database manager in both directions.

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"mime/multipart"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// odooBackup is a backup as the API shows it.
type odooBackup struct {
	ID          int64  `json:"id"`
	Environment string `json:"environment"`
	Kind        string `json:"kind"`
	State       string `json:"state"`
	Format      string `json:"format"`
	SizeBytes   int64  `json:"size_bytes"`
	SHA256      string `json:"sha256"`
	File        string `json:"file"`
	Error       string `json:"error"`
	Source      string `json:"source"`
}

// listBackups lists an environment's backups through the API.
func (b *odooBox) listBackups(name string) []odooBackup {
	b.t.Helper()
	var out struct {
		Backups []odooBackup `json:"backups"`
	}
	if code := b.api(http.MethodGet, "/api/v1/environments/"+name+"/backups", b.token, "", &out); code != http.StatusOK {
		b.t.Fatalf("GET the backups of %s: %d", name, code)
	}
	return out.Backups
}

// backupNow takes a backup of the environment through the API, waits for
// its job and returns the backup it made.
func (b *odooBox) backupNow(name string) odooBackup {
	b.t.Helper()
	before := map[int64]bool{}
	for _, k := range b.listBackups(name) {
		before[k.ID] = true
	}
	var j crashJob
	if code := b.api(http.MethodPost, "/api/v1/environments/"+name+"/backups", b.token, "", &j); code != http.StatusAccepted || j.ID == 0 {
		b.t.Fatalf("POST the backups of %s: %d %+v", name, code, j)
	}
	if done := b.waitJob(j.ID); done.Kind != "backup" {
		b.t.Errorf("POST …/backups ran a %q job, want backup", done.Kind)
	}
	var made []odooBackup
	for _, k := range b.listBackups(name) {
		if !before[k.ID] {
			made = append(made, k)
		}
	}
	if len(made) != 1 || made[0].State != "succeeded" || made[0].Kind != "manual" || made[0].SHA256 == "" {
		b.t.Fatalf("the backup job made %+v, want one succeeded manual backup", made)
	}
	return made[0]
}

// restoreBackup restores backup id of env into env through the API and
// waits for the job.
func (b *odooBox) restoreBackup(env string, id int64) crashJob {
	b.t.Helper()
	var j crashJob
	path := fmt.Sprintf("/api/v1/environments/%s/backups/%d/restore", env, id)
	if code := b.api(http.MethodPost, path, b.token, "", &j); code != http.StatusAccepted || j.ID == 0 {
		b.t.Fatalf("POST %s: %d %+v", path, code, j)
	}
	done := b.waitJob(j.ID)
	if done.Kind != "restore" {
		b.t.Errorf("POST …/restore ran a %q job, want restore", done.Kind)
	}
	b.t.Logf("restore job %d of backup %d into %s:\n%s", j.ID, id, env, strings.Join(done.Log, "\n"))
	return done
}

// download reads a backup's archive through the API and checks it against
// the SHA-256 the API lists.
func (b *odooBox) download(env string, bk odooBackup) []byte {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/api/v1/environments/%s/backups/%d/download", b.addr, env, bk.ID), nil)
	req.Header.Set("Authorization", "Bearer "+b.token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		b.t.Fatalf("download backup %d: %d %v %s", bk.ID, resp.StatusCode, err, tail(string(body), 300))
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/zip" {
		b.t.Errorf("the download's Content-Type is %q, want application/zip", ct)
	}
	if sum := sha256.Sum256(body); hex.EncodeToString(sum[:]) != bk.SHA256 || int64(len(body)) != bk.SizeBytes {
		b.t.Fatalf("the download (%d bytes, sha256 %x) is not the backup the API lists (%d bytes, %s)", len(body), sum, bk.SizeBytes, bk.SHA256)
	}
	return body
}

// importArchive uploads an archive into env's backups through the API (the
// zip as the body) and returns the imported backup.
func (b *odooBox) importArchive(env string, archive []byte) odooBackup {
	b.t.Helper()
	req, _ := http.NewRequest(http.MethodPost, "http://"+b.addr+"/api/v1/environments/"+env+"/backups/import", bytes.NewReader(archive))
	req.Header.Set("Authorization", "Bearer "+b.token)
	req.Header.Set("Content-Type", "application/zip")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		b.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		b.t.Fatalf("import an archive into %s: %d %s", env, resp.StatusCode, tail(string(raw), 1000))
	}
	var bk odooBackup
	if err := json.Unmarshal(raw, &bk); err != nil {
		b.t.Fatalf("import: %v: %s", err, raw)
	}
	if bk.Kind != "imported" || bk.State != "succeeded" || bk.Environment != env {
		b.t.Fatalf("the import recorded %+v, want a succeeded imported backup of %s", bk, env)
	}
	return bk
}

// odooFixture is what a test writes through Odoo and reads back: a partner
// and an attachment of it, which Odoo keeps in the filestore.
type odooFixture struct {
	Partner    string
	PartnerID  int
	AttID      int
	Content    []byte
	StoreFname string
}

// writeFixture creates a partner named name and an attachment of it.
func writeFixture(t *testing.T, c *odooClient, name string) odooFixture {
	t.Helper()
	f := odooFixture{Partner: name, Content: []byte("bytes of " + name + " at " + time.Now().Format(time.RFC3339Nano))}
	if err := c.CallKW("res.partner", "create", []any{map[string]any{"name": name}}, nil, &f.PartnerID); err != nil {
		t.Fatalf("create the partner %q: %v", name, err)
	}
	err := c.CallKW("ir.attachment", "create", []any{map[string]any{
		"name": "note.txt", "datas": base64.StdEncoding.EncodeToString(f.Content),
		"res_model": "res.partner", "res_id": f.PartnerID,
	}}, nil, &f.AttID)
	if err != nil {
		t.Fatalf("create an attachment: %v", err)
	}
	var rows []struct {
		StoreFname any `json:"store_fname"`
	}
	if err := c.CallKW("ir.attachment", "read", []any{[]int{f.AttID}, []string{"store_fname"}}, nil, &rows); err != nil || len(rows) != 1 {
		t.Fatalf("read the attachment: %v %v", rows, err)
	}
	f.StoreFname, _ = rows[0].StoreFname.(string)
	if f.StoreFname == "" {
		t.Fatalf("the attachment is not in the filestore (store_fname %v): it is kept in the database", rows[0].StoreFname)
	}
	return f
}

// check fails the test unless Odoo serves the fixture: the partner by its
// name with the same id, the attachment's bytes through the ORM (datas) and
// through /web/content.
func (f odooFixture) check(t *testing.T, c *odooClient, when string) {
	t.Helper()
	var partners []struct {
		ID int `json:"id"`
	}
	if err := c.CallKW("res.partner", "search_read", []any{[]any{[]any{"name", "=", f.Partner}}, []string{"id"}}, nil, &partners); err != nil {
		t.Fatalf("%s: search the partner %q: %v", when, f.Partner, err)
	}
	if len(partners) != 1 || partners[0].ID != f.PartnerID {
		t.Fatalf("%s: partners named %q: %+v, want id %d", when, f.Partner, partners, f.PartnerID)
	}
	var atts []struct {
		Datas any `json:"datas"`
	}
	if err := c.CallKW("ir.attachment", "read", []any{[]int{f.AttID}, []string{"datas"}}, nil, &atts); err != nil || len(atts) != 1 {
		t.Fatalf("%s: read the attachment %d: %v %v", when, f.AttID, atts, err)
	}
	s, _ := atts[0].Datas.(string)
	if got, err := base64.StdEncoding.DecodeString(s); err != nil || !bytes.Equal(got, f.Content) {
		t.Fatalf("%s: the attachment's datas are %q (%v), want %q", when, got, err, f.Content)
	}
	resp, err := c.http.Get(fmt.Sprintf("%s/web/content/%d?download=true", c.base, f.AttID))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || !bytes.Equal(got, f.Content) {
		t.Fatalf("%s: GET /web/content/%d: %d %q, want %q", when, f.AttID, resp.StatusCode, tail(string(got), 200), f.Content)
	}
}

// signIn returns a new client signed in as admin on db.
func signIn(t *testing.T, o *odooServer, db string) *odooClient {
	t.Helper()
	c := o.Client()
	if _, err := c.Authenticate(db, "admin", "admin"); err != nil {
		t.Fatalf("sign in as admin on %s: %v\nOdoo's log:\n%s", db, err, tail(o.Log(), 3000))
	}
	return c
}

// phases logs how long each part of a test took.
func phases(t *testing.T) func(what string) {
	start, last := time.Now(), time.Now()
	return func(what string) {
		t.Logf("%-45s %6.1fs (at %5.1fs)", what, time.Since(last).Seconds(), time.Since(start).Seconds())
		last = time.Now()
	}
}

// noOdooErrors fails the test on the ERROR lines of an Odoo log.
func noOdooErrors(t *testing.T, o *odooServer, what string) {
	t.Helper()
	if errs := odooErrors(o.Log()); len(errs) > 0 {
		t.Errorf("%s logged errors (%s):\n%s", what, o.LogPath, strings.Join(errs, "\n"))
	}
}

// TestOdooBackupRestore: Odoo writes a partner and an attachment on an
// environment; pgdeck backs it up; both are deleted through Odoo (and the
// file from the filestore); pgdeck restores the backup; the same Odoo,
// still running, serves the partner and the attachment's bytes again.
func TestOdooBackupRestore(t *testing.T) {
	phase := phases(t)
	b := startOdooBox(t)
	e := b.createEnv("shop")
	conf := odooConfValues(t, e.OdooConf)
	phase("pgdeck and the environment")
	b.installBase(e)
	phase("odoo-bin -i base")
	odoo := startOdoo(t, b.src, b.acct, e.OdooConf)
	rpc := signIn(t, odoo, e.Database)
	phase("Odoo serves")

	fix := writeFixture(t, rpc, "Kept by pgdeck's backup")
	stored := filepath.Join(conf["data_dir"], "filestore", e.Database, fix.StoreFname)
	if got, err := os.ReadFile(stored); err != nil || !bytes.Equal(got, fix.Content) {
		t.Fatalf("the attachment is not in the environment's filestore at %s: %v", stored, err)
	}
	fix.check(t, rpc, "before the backup")

	bk := b.backupNow("shop")
	phase(fmt.Sprintf("backup (%d bytes)", bk.SizeBytes))

	// Deleted through Odoo. Odoo's unlink only marks the file for its
	// garbage collector (the autovacuum cron, which no RPC may call): the
	// file goes as the collector would remove it, so that only the restore
	// can bring it back.
	if err := rpc.CallKW("ir.attachment", "unlink", []any{[]int{fix.AttID}}, nil, nil); err != nil {
		t.Fatalf("unlink the attachment: %v", err)
	}
	if err := rpc.CallKW("res.partner", "unlink", []any{[]int{fix.PartnerID}}, nil, nil); err != nil {
		t.Fatalf("unlink the partner: %v", err)
	}
	if err := os.Remove(stored); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := rpc.CallKW("res.partner", "search_count", []any{[]any{[]any{"name", "=", fix.Partner}}}, nil, &n); err != nil || n != 0 {
		t.Fatalf("after the unlink: %d partners, %v; want 0", n, err)
	}
	// Written after the backup: the restore takes it away.
	var laterID int
	if err := rpc.CallKW("res.partner", "create", []any{map[string]any{"name": "Written after the backup"}}, nil, &laterID); err != nil {
		t.Fatal(err)
	}

	b.restoreBackup("shop", bk.ID)
	phase("restore")

	// The Odoo that served before the restore serves the restored data
	// without a restart: the restore ended its connections to the database
	// (Odoo's pool drops a connection it cannot reset and opens a new one),
	// the session stays valid (a restore of the environment's own backup
	// keeps database.secret), and the registry and its caches are checked
	// on each request against the database's signaling sequences, which
	// Odoo reloads or clears when they differ from what it holds (its log
	// says so in TestOdooManagerRoundTrip, after another database's
	// archive); here they are what they were at the backup.
	fix.check(t, rpc, "after the restore, on the session from before")
	if err := rpc.CallKW("res.partner", "search_count", []any{[]any{[]any{"id", "=", laterID}}}, nil, &n); err != nil || n != 0 {
		t.Errorf("after the restore the partner written after the backup is still there: %d, %v", n, err)
	}
	fix.check(t, signIn(t, odoo, e.Database), "after the restore, on a new session")
	if got, err := os.ReadFile(stored); err != nil || !bytes.Equal(got, fix.Content) {
		t.Errorf("the restore did not bring the attachment's file back at %s: %v", stored, err)
	}
	// The restored filestore is Odoo's to write in: every folder and file
	// belongs to its user, and a new attachment lands beside the others.
	filestore := filepath.Join(conf["data_dir"], "filestore", e.Database)
	filepath.WalkDir(filestore, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Errorf("walk the restored filestore: %v", err)
			return err
		}
		if fi, err := d.Info(); err == nil {
			if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != b.acct.UID || int(st.Gid) != b.acct.GID {
				t.Errorf("%s belongs to %d:%d after the restore, want Odoo's user %d:%d", p, st.Uid, st.Gid, b.acct.UID, b.acct.GID)
			}
		}
		return nil
	})
	writeFixture(t, rpc, "Written after the restore").check(t, rpc, "after the restore, a new attachment")

	// The restore kept what the environment held before it.
	var pre []odooBackup
	for _, k := range b.listBackups("shop") {
		if k.Kind == "pre-restore" {
			pre = append(pre, k)
		}
	}
	if len(pre) != 1 || pre[0].State != "succeeded" {
		t.Errorf("backups taken before the restore: %+v, want one succeeded", pre)
	}
	noOdooErrors(t, odoo, "Odoo on the environment")
	odoo.Stop()
	phase("checks after the restore")
}

// TestOdooManagerRoundTrip: (a) a pgdeck archive restores through Odoo's own
// database manager (/web/database/restore, on a scratch cluster where Odoo
// creates its databases) and that Odoo serves it; (b) an archive made by
// Odoo's manager (/web/database/backup) imports into pgdeck, restores over
// the environment, and the Odoo running on its odoo.conf serves it.
func TestOdooManagerRoundTrip(t *testing.T) {
	phase := phases(t)
	// The scratch cluster is made while pgdeck deploys and Odoo installs.
	scratch, scratchReady := startScratchPG(t)
	b := startOdooBox(t)
	e := b.createEnv("shop")
	phase("pgdeck and the environment")
	b.installBase(e)
	phase("odoo-bin -i base")
	odoo := startOdoo(t, b.src, b.acct, e.OdooConf)
	rpc := signIn(t, odoo, e.Database)
	first := writeFixture(t, rpc, "Made on pgdeck")
	bk := b.backupNow("shop")
	archive := b.download("shop", bk)
	keepArchive(t, "pgdeck-archive.zip", archive)
	phase("Odoo writes, pgdeck backs up")

	scratchReady()
	mgr := startOdooManager(t, b, scratch)
	phase("Odoo's manager on the scratch cluster")

	// (a) pgdeck's archive through Odoo's restore.
	const restored = "from_pgdeck"
	mgr.restore(t, restored, archive)
	// Odoo's restore runs psql without ON_ERROR_STOP and its errors go
	// nowhere: every table must hold the rows pgdeck's manifest lists.
	want := archiveTables(t, archive)
	tables := make([]string, 0, len(want))
	for tb := range want {
		tables = append(tables, tb)
	}
	got := mgr.rowCounts(t, restored, tables)
	for tb, n := range want {
		if got[tb] != n {
			t.Errorf("after Odoo's restore %s holds %d rows, pgdeck's archive %d", tb, got[tb], n)
		}
	}
	c := signIn(t, mgr.odoo, restored)
	first.check(t, c, "on Odoo's manager, restored from pgdeck's archive")
	if _, err := os.Stat(filepath.Join(mgr.dataDir, "filestore", restored, first.StoreFname)); err != nil {
		t.Errorf("Odoo's restore put no file in its filestore: %v", err)
	}
	phase("(a) Odoo's manager restores pgdeck's archive")

	// (b) Odoo's archive into pgdeck, with a partner and an attachment that
	// only Odoo's manager ever saw.
	second := writeFixture(t, c, "Made on Odoo's manager")
	odooZip := mgr.backup(t, restored)
	keepArchive(t, "odoo-manager-backup.zip", odooZip)
	noOdooErrors(t, mgr.odoo, "Odoo's database manager")
	mgr.odoo.Stop()
	phase(fmt.Sprintf("(b) Odoo's manager backs up (%d bytes)", len(odooZip)))

	imp := b.importArchive("shop", odooZip)
	b.restoreBackup("shop", imp.ID)
	phase("(b) pgdeck imports and restores it")
	// The Odoo that runs on the environment's odoo.conf serves it. The
	// archive is of another database, so the restore gave it a new
	// database.secret: the session from before means nothing any more.
	err := rpc.CallKW("res.partner", "search_count", []any{[]any{}}, nil, nil)
	if rerr, ok := err.(*odooRPCError); !ok || !strings.Contains(rerr.Data.Name, "SessionExpired") {
		t.Errorf("the session signed in before the restore of another database's archive: %v, want it expired", err)
	}
	c2 := signIn(t, odoo, e.Database)
	second.check(t, c2, "on the environment restored from Odoo's archive")
	first.check(t, c2, "on the environment restored from Odoo's archive")
	conf := odooConfValues(t, e.OdooConf)
	if _, err := os.Stat(filepath.Join(conf["data_dir"], "filestore", e.Database, second.StoreFname)); err != nil {
		t.Errorf("the restore put no file in the environment's filestore: %v", err)
	}
	noOdooErrors(t, odoo, "Odoo on the environment")
	odoo.Stop()
	phase("(b) Odoo serves it on pgdeck")
}

// odooManager is an Odoo with its database manager enabled (list_db, a
// master password) on a scratch PostgreSQL cluster where its role may
// create databases.
type odooManager struct {
	odoo    *odooServer
	master  string
	dataDir string
	pg      *pgexec.Cluster
}

// scratchRole is the role, with CREATEDB, that Odoo's manager logs in as.
const (
	scratchRole     = "odoo_manager"
	scratchPassword = "the odoo manager password"
)

// startScratchPG makes and starts a scratch cluster in the background (run
// as the postgres user, reachable over TCP by scratchRole only); ready
// waits for it and fails the test if it could not start. It is stopped at
// the end of the test.
func startScratchPG(t *testing.T) (*pgexec.Cluster, func()) {
	t.Helper()
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatal(err)
	}
	user, err := pgexec.DefaultRunAs()
	if err != nil {
		t.Fatal(err)
	}
	root := testkit.TempDir(t)
	if err := os.Chmod(root, 0o755); err != nil {
		t.Fatal(err)
	}
	c := &pgexec.Cluster{
		BinDir: bin, DataDir: filepath.Join(root, "pgdata"), SocketDir: filepath.Join(root, "run"),
		ListenAddress: "127.0.0.1", Port: testkit.FreePort(t), User: user,
	}
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
		defer cancel()
		err := c.Init(ctx, pgexec.InitOptions{
			// A scratch cluster: nothing in it needs to survive a crash.
			Conf: map[string]string{"fsync": "off", "synchronous_commit": "off", "full_page_writes": "off"},
			HBA:  []string{"host all " + scratchRole + " 127.0.0.1/32 scram-sha-256"},
		})
		if err == nil {
			err = c.Start(ctx)
		}
		if err == nil {
			_, err = c.Exec(ctx, []byte("CREATE ROLE "+scratchRole+" LOGIN CREATEDB PASSWORD '"+scratchPassword+"';\n"),
				"psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", "postgres")
		}
		done <- err
	}()
	var startErr error
	waited := false
	wait := func() {
		if !waited {
			startErr, waited = <-done, true
		}
	}
	t.Cleanup(func() {
		wait()
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		if err := c.Stop(ctx); err != nil {
			t.Errorf("stop the scratch cluster: %v", err)
		}
		testkit.StopPostgres(root, 30*time.Second)
	})
	return c, func() {
		t.Helper()
		wait()
		if startErr != nil {
			t.Fatalf("the scratch cluster: %v", startErr)
		}
	}
}

// startOdooManager starts an Odoo with the database manager on the scratch
// cluster c.
func startOdooManager(t *testing.T, b *odooBox, c *pgexec.Cluster) *odooManager {
	t.Helper()
	m := &odooManager{master: "the master password " + strconv.FormatInt(time.Now().UnixNano(), 36),
		dataDir: filepath.Join(b.acct.Home, "manager-data"), pg: c}
	if err := os.Mkdir(m.dataDir, 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(m.dataDir, b.acct.UID, b.acct.GID); err != nil {
		t.Fatal(err)
	}
	conf := filepath.Join(b.acct.Home, "manager.conf")
	text := fmt.Sprintf("[options]\ndb_host = 127.0.0.1\ndb_port = %d\ndb_user = %s\ndb_password = %s\n"+
		"admin_passwd = %s\nlist_db = True\ndata_dir = %s\n", c.Port, scratchRole, scratchPassword, m.master, m.dataDir)
	if err := os.WriteFile(conf, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chown(conf, b.acct.UID, b.acct.GID); err != nil {
		t.Fatal(err)
	}
	m.odoo = startOdoo(t, b.src, b.acct, conf)
	return m
}

// managerClient does not follow redirects: Odoo's manager answers success
// with a redirect and errors with a 200 page.
var managerClient = &http.Client{
	Timeout:       5 * time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
}

// managerError is the error message of a database manager page.
var managerError = regexp.MustCompile(`Database (?:restore|backup) error: [^<]*`)

// restore restores an archive as database name through /web/database/restore
// (neutralize_database is left out: any value of it neutralizes).
func (m *odooManager) restore(t *testing.T, name string, archive []byte) {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	mw.WriteField("master_pwd", m.master)
	mw.WriteField("name", name)
	mw.WriteField("copy", "false")
	fw, _ := mw.CreateFormFile("backup_file", "pgdeck.zip")
	fw.Write(archive)
	mw.Close()
	resp, err := managerClient.Post(m.odoo.URL+"/web/database/restore", mw.FormDataContentType(), &body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	page, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusSeeOther || !strings.HasSuffix(resp.Header.Get("Location"), "/web/database/manager") {
		t.Fatalf("Odoo's /web/database/restore answered %d %q: %s\nOdoo's log:\n%s", resp.StatusCode, resp.Header.Get("Location"),
			html.UnescapeString(managerError.FindString(string(page))), tail(m.odoo.Log(), 3000))
	}
}

// backup returns Odoo's zip of database name from /web/database/backup.
func (m *odooManager) backup(t *testing.T, name string) []byte {
	t.Helper()
	resp, err := managerClient.PostForm(m.odoo.URL+"/web/database/backup",
		url.Values{"master_pwd": {m.master}, "name": {name}, "backup_format": {"zip"}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if cd := resp.Header.Get("Content-Disposition"); resp.StatusCode != http.StatusOK || !strings.Contains(cd, "attachment") || !strings.Contains(cd, ".zip") {
		t.Fatalf("Odoo's /web/database/backup answered %d (Content-Disposition %q): %s\nOdoo's log:\n%s", resp.StatusCode, cd,
			html.UnescapeString(managerError.FindString(string(data))), tail(m.odoo.Log(), 3000))
	}
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		t.Fatalf("Odoo's backup is no zip: %v", err)
	}
	have := map[string]bool{}
	for _, f := range zr.File {
		have[strings.SplitN(f.Name, "/", 2)[0]] = true
	}
	if !have["dump.sql"] || !have["manifest.json"] || !have["filestore"] {
		t.Fatalf("Odoo's backup holds %v, want dump.sql, manifest.json and filestore/", have)
	}
	return data
}

// rowCounts counts the rows of tables (schema.name) in database db of the
// scratch cluster, as its superuser.
func (m *odooManager) rowCounts(t *testing.T, db string, tables []string) map[string]int64 {
	t.Helper()
	var q strings.Builder
	for i, tb := range tables {
		schema, name, _ := strings.Cut(tb, ".")
		if i > 0 {
			q.WriteString(" UNION ALL ")
		}
		fmt.Fprintf(&q, "SELECT '%s', count(*) FROM \"%s\".\"%s\"", tb, schema, name)
	}
	out, err := m.pg.Exec(t.Context(), []byte(q.String()+";\n"), "psql", "-X", "-q", "-A", "-t", "-F", "|", "-v", "ON_ERROR_STOP=1", "-d", db)
	if err != nil {
		t.Fatal(err)
	}
	counts := map[string]int64{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		tb, n, _ := strings.Cut(line, "|")
		counts[tb], _ = strconv.ParseInt(n, 10, 64)
	}
	return counts
}

// archiveTables reads the table row counts pgdeck's manifest lists.
func archiveTables(t *testing.T, archive []byte) map[string]int64 {
	t.Helper()
	zr, err := zip.NewReader(bytes.NewReader(archive), int64(len(archive)))
	if err != nil {
		t.Fatal(err)
	}
	f, err := zr.Open("manifest.json")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var man struct {
		Pgdeck struct {
			Tables map[string]int64 `json:"tables"`
		} `json:"pgdeck"`
	}
	if err := json.NewDecoder(f).Decode(&man); err != nil || len(man.Pgdeck.Tables) == 0 {
		t.Fatalf("pgdeck's manifest lists no tables: %v", err)
	}
	return man.Pgdeck.Tables
}

// keepArchive keeps an archive beside the test's Odoo logs.
func keepArchive(t *testing.T, name string, data []byte) {
	t.Helper()
	if err := os.WriteFile(filepath.Join(odooLogDir(t), name), data, 0o644); err != nil {
		t.Fatal(err)
	}
}
