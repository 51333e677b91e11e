package web_test

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/fleet"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/store"
	"pgdeck/store/secret"
	"pgdeck/store/storetest"
	"pgdeck/web"
)

// jobsApp is the web layer with a real provisioner on the local runtime.
// No workers run: jobs stay queued until the test runs one with RunOne, so
// that "a job is already running" is deterministic.
type jobsApp struct {
	*app
	prov *provisioner.Provisioner
	box  *secret.Box
}

func newJobsApp(t *testing.T, opts ...provisioner.Option) *jobsApp {
	t.Helper()
	return newJobsAppWith(t, false, opts...)
}

// newServersApp is newJobsApp whose provisioner has servers, as serve
// builds it: the local runtime is the built-in server, Docker hosts may be
// registered (they run dockertest's image), and a fleet sends each call
// to the runtime of the environment's server.
func newServersApp(t *testing.T) *jobsApp {
	t.Helper()
	return newJobsAppWith(t, true)
}

func newJobsAppWith(t *testing.T, withServers bool, opts ...provisioner.Option) *jobsApp {
	t.Helper()
	st := storetest.New(t)
	root := testkit.TempDir(t)
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelWarn}))
	rt, err := local.New(local.Config{Root: root + "/envs", Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		t.Fatal(err)
	}
	box, err := secret.New(key)
	if err != nil {
		t.Fatal(err)
	}
	lo := testkit.FreePortWindow(t, 21)
	var prt runtime.Runtime = rt
	if withServers {
		servers := provisioner.NewServers(provisioner.ServersConfig{Builtin: rt, Image: dockertest.ImageTag, Root: root + "/envs"}, st, box, log)
		t.Cleanup(servers.Close)
		prt = fleet.New(servers, log)
		opts = append(opts, provisioner.WithServers(servers))
	}
	prov := provisioner.New(provisioner.Config{PortLow: lo, PortHigh: lo + 20, BackupDir: filepath.Join(t.TempDir(), "backups"),
		PgRestore: filepath.Join(rt.BinDir(), "pg_restore")}, st, prt, box, log, opts...)
	d := testDeps(st, log)
	d.Jobs, d.Box = prov, box
	d.BackupUploadLimit = 4 << 20
	h := web.New(d).Handler()
	t.Cleanup(func() {
		// Remove whatever the test deployed: no cluster outlives the test.
		envs, _ := st.ListEnvironments(context.Background())
		for _, e := range envs {
			_ = rt.Remove(context.Background(), runtime.InstanceID{Env: e.Name, Role: runtime.RolePrimary})
		}
		os.RemoveAll(root)
	})
	return &jobsApp{app: &app{t: t, st: st, h: h}, prov: prov, box: box}
}

func (a *jobsApp) runJob() {
	a.t.Helper()
	if !a.prov.RunOne(context.Background()) {
		a.t.Fatal("no job was queued")
	}
}

func (a *jobsApp) countJobs() int {
	a.t.Helper()
	var n int
	if err := a.st.Pool.QueryRow(context.Background(), "SELECT count(*) FROM jobs").Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

func TestAPIActions(t *testing.T) {
	a := newJobsApp(t)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	viewer := a.token(a.user("viewer@example.com", store.RoleViewer))

	created := a.api(http.MethodPost, "/api/v1/environments", owner,
		`{"name":"erp","odoo_version":"18.0","stage":"production","plan":"pro"}`).want(t, http.StatusCreated)
	if created.str("last_job.kind") != "deploy" || created.str("last_job.state") != "queued" {
		t.Fatalf("create did not queue a deploy: %s", created.Raw)
	}
	if created.str("health.status") != "deploying" {
		t.Fatalf("health while the deploy waits = %q, want deploying", created.str("health.status"))
	}

	// One job at a time per environment: 409 while the deploy is queued.
	for _, action := range []string{"deploy", "redeploy", "stop"} {
		busy := a.api(http.MethodPost, "/api/v1/environments/erp/actions/"+action, owner, "").want(t, http.StatusConflict)
		if busy.str("error") != "Another job is already queued or running for erp; wait for it to finish." {
			t.Fatalf("%s while busy: error %q", action, busy.str("error"))
		}
	}
	a.api(http.MethodDelete, "/api/v1/environments/erp", owner, "").want(t, http.StatusConflict)
	a.api(http.MethodPost, "/api/v1/environments/erp/actions/explode", owner, "").want(t, http.StatusNotFound)
	a.api(http.MethodPost, "/api/v1/environments/nope/actions/stop", owner, "").want(t, http.StatusNotFound)
	a.api(http.MethodPost, "/api/v1/environments/erp/actions/stop", viewer, "").want(t, http.StatusForbidden)

	a.runJob()
	jobID := strconv.FormatFloat(created.JSON["last_job"].(map[string]any)["id"].(float64), 'f', 0, 64)
	job := a.api(http.MethodGet, "/api/v1/jobs/"+jobID, viewer, "").want(t, http.StatusOK)
	if job.str("state") != "succeeded" {
		t.Fatalf("deploy job: %s", job.Raw)
	}
	if logs, _ := job.JSON["log"].([]any); len(logs) == 0 {
		t.Fatal("the job's log is empty")
	}
	a.api(http.MethodGet, "/api/v1/jobs/999999", viewer, "").want(t, http.StatusNotFound)
	a.api(http.MethodGet, "/api/v1/jobs/abc", viewer, "").want(t, http.StatusNotFound)

	// An action that makes no sense now: 422 with the reason, nothing queued.
	before := a.countJobs()
	bad := a.api(http.MethodPost, "/api/v1/environments/erp/actions/start", owner, "").want(t, http.StatusUnprocessableEntity)
	if bad.str("error") != "erp is already running; use Restart if its health shows Error." {
		t.Fatalf("error = %q", bad.str("error"))
	}
	a.api(http.MethodPost, "/api/v1/environments/erp/actions/deploy", owner, "").want(t, http.StatusUnprocessableEntity)
	if a.countJobs() != before {
		t.Fatal("a refused action queued a job")
	}

	stop := a.api(http.MethodPost, "/api/v1/environments/erp/actions/stop", owner, "").want(t, http.StatusAccepted)
	if stop.str("kind") != "stop" || stop.str("state") != "queued" {
		t.Fatalf("stop answer: %s", stop.Raw)
	}
	a.runJob()
	env := a.api(http.MethodGet, "/api/v1/environments/erp", viewer, "").want(t, http.StatusOK)
	if env.str("desired_state") != "stopped" {
		t.Fatalf("desired_state after stop = %q", env.str("desired_state"))
	}

	del := a.api(http.MethodDelete, "/api/v1/environments/erp", owner, "").want(t, http.StatusAccepted)
	if del.str("kind") != "delete" {
		t.Fatalf("delete answer: %s", del.Raw)
	}
	a.runJob()
	a.api(http.MethodGet, "/api/v1/environments/erp", owner, "").want(t, http.StatusNotFound)
}

func TestDeleteNeedsTheTypedName(t *testing.T) {
	a := newJobsApp(t)
	a.user("owner@example.com", store.RoleOwner)
	a.environment("shop")
	c := a.client()
	c.login(t, "owner@example.com")
	c.get("/environments/shop").want(t, http.StatusOK)

	before := a.countJobs()
	for _, typed := range []string{"", "shop2", "SHOP"} {
		p := c.post("/environments/shop/delete", url.Values{"confirm_name": {typed}}).want(t, http.StatusUnprocessableEntity)
		if p.Text("[data-testid=error-confirm_name]") == "" {
			t.Fatalf("typed %q: no message beside the field", typed)
		}
		if got, _ := p.Find("#f-confirm_name").Attr("value"); got != typed {
			t.Fatalf("typed %q: field keeps %q", typed, got)
		}
	}
	if a.countJobs() != before {
		t.Fatal("a wrong confirmation queued a job")
	}
	p := c.post("/environments/shop/delete", url.Values{"confirm_name": {"shop"}}).want(t, http.StatusSeeOther)
	if p.Location() != "/jobs" {
		t.Fatalf("redirect to %q, want /jobs", p.Location())
	}
	j, err := a.st.ActiveJob(context.Background(), "shop")
	if err != nil || j.Kind != "delete" {
		t.Fatalf("active job = %+v, %v; want a queued delete", j, err)
	}
	list := c.get("/jobs").want(t, http.StatusOK)
	if list.Find("[data-testid=job-row][data-kind=delete][data-env=shop]").Length() != 1 {
		t.Fatal("the jobs page does not list the delete")
	}
	if _, ok := list.Find("#jobs-list").Attr("hx-trigger"); !ok {
		t.Fatal("the jobs list does not refresh itself while a job is queued")
	}
}

func TestRevealPassword(t *testing.T) {
	a := newJobsApp(t)
	a.user("owner@example.com", store.RoleOwner)
	a.user("viewer@example.com", store.RoleViewer)
	e := a.environment("shop")
	if _, err := a.st.SetCredentials(context.Background(), e.ID, "shop", "odoo_shop", a.box.Seal("s3cret-pw"), a.box.Seal("adm")); err != nil {
		t.Fatal(err)
	}

	viewer := a.client()
	viewer.login(t, "viewer@example.com")
	viewer.get("/environments/shop").want(t, http.StatusOK)
	if viewer.post("/environments/shop/reveal", nil).Code != http.StatusForbidden {
		t.Fatal("a viewer could reveal the password")
	}

	owner := a.clientFrom("192.0.2.11")
	owner.login(t, "owner@example.com")
	owner.get("/environments/shop").want(t, http.StatusOK)
	audits := a.countAudit()
	p := owner.post("/environments/shop/reveal", nil).want(t, http.StatusOK)
	if got := p.Text("#revealed-password"); got != "s3cret-pw" {
		t.Fatalf("revealed %q, want the database password", got)
	}
	if a.countAudit() != audits+1 {
		t.Fatal("the reveal was not audited")
	}
	es, err := a.st.ListAudit(context.Background(), 1)
	if err != nil || es[0].Action != "environment.reveal_password" || es[0].Actor != "owner@example.com" {
		t.Fatalf("last audit entry = %+v, %v", es, err)
	}
}
