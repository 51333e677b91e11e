package web_test

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"
	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner"
	"pgdeck/store"
)

// envOn creates an environment on plan directly in the store.
func (a *app) envOn(name, plan string) store.Environment {
	a.t.Helper()
	e, err := a.st.CreateEnvironment(context.Background(), store.Environment{Name: name, OdooVersion: "18.0", Stage: "staging", Plan: plan})
	if err != nil {
		a.t.Fatal(err)
	}
	return e
}

// markDeployed records a deploy of the settings as saved without running
// one, with the snapshot a deploy records (the settings pages then show what
// waits for a redeploy).
func (a *app) markDeployed(e store.Environment) store.Environment {
	a.t.Helper()
	ctx := context.Background()
	saved, err := a.st.DatabaseSettings(ctx, e.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	applied, err := provisioner.ResolveSettings(e, saved)
	if err != nil {
		a.t.Fatal(err)
	}
	snap, err := json.Marshal(applied)
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.st.SetAppliedSettings(ctx, e.ID, snap); err != nil {
		a.t.Fatal(err)
	}
	if err := a.st.MarkDeployed(ctx, e.ID); err != nil {
		a.t.Fatal(err)
	}
	e, err = a.st.EnvironmentByID(ctx, e.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return e
}

// settings is what the store holds for e.
func (a *app) settings(e store.Environment) store.DatabaseSettings {
	a.t.Helper()
	d, err := a.st.DatabaseSettings(context.Background(), e.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return d
}

// formOf is what a browser submits for the form at selector: the enabled
// fields (not under a disabled fieldset), checked boxes only, the selected
// option of each select.
func formOf(t *testing.T, p *page, selector string) url.Values {
	t.Helper()
	form := p.Find(selector)
	if form.Length() != 1 {
		t.Fatalf("no form %s on the page", selector)
	}
	v := url.Values{}
	form.Find("input[name], select[name]").Each(func(_ int, s *goquery.Selection) {
		if _, off := s.Attr("disabled"); off || s.Closest("fieldset[disabled]").Length() > 0 {
			return
		}
		name, _ := s.Attr("name")
		if goquery.NodeName(s) == "select" {
			opt := s.Find("option[selected]")
			if opt.Length() == 0 {
				opt = s.Find("option").First()
			}
			val, _ := opt.Attr("value")
			v.Add(name, val)
			return
		}
		if typ, _ := s.Attr("type"); typ == "checkbox" {
			if _, on := s.Attr("checked"); !on {
				return
			}
		}
		val, _ := s.Attr("value")
		v.Add(name, val)
	})
	return v
}

// pendingLines are the notice's lines as a person reads them.
func pendingLines(p *page) []string {
	var out []string
	p.Find("[data-testid=pending-notice] [data-testid=pending-change]").Each(func(_ int, s *goquery.Selection) {
		out = append(out, strings.Join(strings.Fields(s.Text()), " "))
	})
	return out
}

// cell is the text of a parameter row's cell (recommended, saved, applied).
func cell(p *page, name, testid string) string {
	return strings.Join(strings.Fields(p.Find(`[data-testid=parameter-row][data-name="`+name+`"] [data-testid=`+testid+`]`).Text()), " ")
}

// TestSaveDatabaseSettingsLeavesTheServerAlone saves an override on a
// deployed environment: the row changes, no job is queued, the running
// server keeps its value and its uptime, and the notice lists the change
// on Overview and Settings until a redeploy.
func TestSaveDatabaseSettingsLeavesTheServerAlone(t *testing.T) {
	a := newJobsApp(t)
	a.user("owner@example.com", store.RoleOwner)
	c := a.client()
	c.login(t, "owner@example.com")
	c.post("/environments", goodEnvironment("erp")).want(t, http.StatusSeeOther)
	a.runJob()
	e, err := a.st.EnvironmentByName(context.Background(), "erp")
	if err != nil || !e.Deployed() {
		t.Fatalf("erp after its deploy: %+v, %v", e, err)
	}
	server := func() (workMem string, started time.Time) {
		t.Helper()
		pw, err := a.box.Open(e.DBPassword)
		if err != nil {
			t.Fatal(err)
		}
		conn, err := pgconnect(t, e, pw)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(context.Background())
		if err := conn.QueryRow(context.Background(), "SELECT current_setting('work_mem'), pg_postmaster_start_time()").Scan(&workMem, &started); err != nil {
			t.Fatal(err)
		}
		return workMem, started
	}
	memBefore, startedBefore := server()

	p := c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	if n := p.Find("[data-testid=parameter-row]").Length(); n != 15 {
		t.Fatalf("%d parameter rows, want 15", n)
	}
	if got := cell(p, "work_mem", "recommended"); got != "5041kB" {
		t.Errorf("recommended work_mem = %q, want 5041kB (pro)", got)
	}
	if rule, _ := p.Find(`[data-name="work_mem"] [data-testid=recommended]`).Attr("title"); !strings.Contains(rule, "max_connections") {
		t.Errorf("recommended work_mem's rule = %q", rule)
	}
	if p.Find("[data-testid=pending-notice]").Length() != 0 {
		t.Fatal("a notice right after the deploy")
	}
	if p.Find("#pgbouncer-settings[disabled]").Length() != 0 || p.Find("[data-testid=pgbouncer-gate]").Length() != 0 {
		t.Error("PgBouncer is disabled on a pro plan")
	}

	jobs, audits := a.countJobs(), a.countAudit()
	form := formOf(t, p, "#settings-form")
	form.Set("parameters.work_mem", "8MB")
	saved := c.post("/environments/erp/settings/database", form).want(t, http.StatusSeeOther)
	if saved.Location() != "/environments/erp/settings/database" {
		t.Errorf("save redirects to %q", saved.Location())
	}
	if got := a.settings(e).Parameters; !maps.Equal(got, map[string]string{"work_mem": "8MB"}) {
		t.Fatalf("saved parameters = %v, want work_mem 8MB only", got)
	}
	if pool := a.settings(e).PgBouncer; pool.Enabled || pool.PoolSize != 20 || pool.PoolMode != "transaction" {
		t.Errorf("saved PgBouncer = %+v, want off with the defaults the form showed", pool)
	}
	if a.countJobs() != jobs {
		t.Error("saving queued a job")
	}
	if a.countAudit() != audits+1 {
		t.Errorf("%d audit entries after the save, want %d", a.countAudit(), audits+1)
	}
	if es, err := a.st.ListAudit(context.Background(), 1); err != nil || es[0].Action != "environment.settings" || !strings.Contains(es[0].Detail, "work_mem=8MB") {
		t.Errorf("last audit entry = %+v, %v", es, err)
	}
	if mem, started := server(); mem != memBefore || !started.Equal(startedBefore) {
		t.Fatalf("the running server changed on save: work_mem %s → %s, started %v → %v", memBefore, mem, startedBefore, started)
	}

	// Following the redirect as a browser does.
	if got := c.get(saved.Location()).want(t, http.StatusOK).Text("[data-testid=flash]"); got != "Saved. Redeploy to apply." {
		t.Errorf("flash after the save = %q", got)
	}
	want := []string{"work_mem: 5041kB → 8MB"}
	for _, path := range []string{"/environments/erp", "/environments/erp/settings/database"} {
		p := c.get(path).want(t, http.StatusOK)
		if got := pendingLines(p); strings.Join(got, "|") != strings.Join(want, "|") {
			t.Errorf("%s: notice lists %q, want %q", path, got, want)
		}
		if p.Find("[data-testid=pending-notice] #pending-redeploy").Length() != 1 {
			t.Errorf("%s: the notice has no Redeploy button", path)
		}
	}
	p = c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	if got := cell(p, "work_mem", "saved"); got != "8MB" {
		t.Errorf("saved column of work_mem = %q", got)
	}
	if v, _ := p.Find("#param-work_mem").Attr("value"); v != "8MB" {
		t.Errorf("work_mem's input holds %q, want the override", v)
	}

	// Reset through htmx: the card comes back and the notice, out of
	// band, empty.
	c.header.Set("HX-Request", "true")
	r := c.post("/environments/erp/settings/database", url.Values{"reset": {"work_mem"}}).want(t, http.StatusOK)
	c.header.Del("HX-Request")
	if r.Find("#postgresql-optimization").Length() != 1 || r.Find("header.topbar").Length() != 0 {
		t.Errorf("the htmx answer is not the card alone: %.300s", r.Body)
	}
	if oob, _ := r.Find("#pending-notice").Attr("hx-swap-oob"); oob != "outerHTML" {
		t.Errorf("the answer carries no out-of-band notice (hx-swap-oob %q)", oob)
	}
	if r.Find("[data-testid=pending-change]").Length() != 0 {
		t.Errorf("the notice after the reset lists %q", pendingLines(r))
	}
	if got := a.settings(e).Parameters; len(got) != 0 {
		t.Errorf("parameters after the reset = %v", got)
	}
}

// TestSaveDatabaseSettingsRefused: a bad value answers 422 with the card
// again, the message under the field, what was typed kept, nothing saved.
func TestSaveDatabaseSettingsRefused(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("owner@example.com", store.RoleOwner)
	e := a.markDeployed(a.envOn("erp", "pro"))
	c := a.client()
	c.login(t, "owner@example.com")
	if _, err := a.st.UpdateDatabaseSettings(context.Background(), e.ID, func(d *store.DatabaseSettings) error {
		d.Parameters["max_connections"] = "150"
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	before := a.settings(e)
	page := c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	base := formOf(t, page, "#settings-form")

	cases := []struct {
		name, field, value, message string
		// others counts the messages beside other fields.
		others int
	}{
		{"an IEC unit", "parameters.work_mem", "8 MiB", `"MiB" is not a unit PostgreSQL knows: use kB, MB or GB (e.g. 8MB)`, 0},
		{"lower-case unit", "parameters.work_mem", "8mb", "Units are case-sensitive", 0},
		{"above PostgreSQL's maximum", "parameters.work_mem", "10TB", "10TB is above PostgreSQL's maximum of 2147483647kB.", 0},
		{"below PostgreSQL's minimum", "parameters.maintenance_work_mem", "512kB", "512kB is below PostgreSQL's minimum of 1MB.", 0},
		{"not a number", "parameters.random_page_cost", "fast", "Takes a number", 0},
		{"over the plan's memory", "parameters.shared_buffers", "3GB", "3GB is more than half the plan's 4GB of memory", 0},
		{"control characters", "parameters.work_mem", "8MB\x00", "Remove the control or invisible formatting characters.", 0},
		{"too long", "parameters.work_mem", strings.Repeat("1", 70) + "kB", "Use at most 64 characters.", 0},
		{"pool size not a number", "pgbouncer.pool_size", "twenty", "Enter a whole number, such as 20.", 0},
		{"pool size huge", "pgbouncer.pool_size", "99999999999999999999999", "Enter a whole number, such as 20.", 0},
		// Also more than max_client_conn's 100.
		{"pool size over max_connections", "pgbouncer.pool_size", "500", "Use 1 to 127 (max_connections 150 leaves 127", 1},
		{"pool size zero", "pgbouncer.pool_size", "0", "Use 1 to 127", 0},
		{"pool mode", "pgbouncer.pool_mode", "statement", "Use session or transaction.", 0},
		{"max client connections", "pgbouncer.max_client_conn", "-1", "Use 1 to 10000.", 0},
	}
	for _, htmx := range []bool{false, true} {
		for _, tc := range cases {
			name := tc.name
			if htmx {
				name += " (htmx)"
			}
			t.Run(name, func(t *testing.T) {
				audits := a.countAudit()
				form := maps.Clone(base)
				form.Set(tc.field, tc.value)
				if htmx {
					c.header.Set("HX-Request", "true")
					defer c.header.Del("HX-Request")
				}
				p := c.post("/environments/erp/settings/database", form).want(t, http.StatusUnprocessableEntity)
				if htmx != (p.Find("header.topbar").Length() == 0) {
					t.Errorf("htmx %v: the answer is the wrong size (topbar %d)", htmx, p.Find("header.topbar").Length())
				}
				msg := p.Text(`[data-testid="error-` + tc.field + `"]`)
				if !strings.Contains(msg, tc.message) {
					t.Errorf("message beside %s = %q, want %q", tc.field, msg, tc.message)
				}
				if n := p.Find(".field-error").Length(); n != 1+tc.others {
					t.Errorf("%d messages, want %d", n, 1+tc.others)
				}
				id := "#param-" + strings.TrimPrefix(tc.field, "parameters.")
				if strings.HasPrefix(tc.field, "pgbouncer.") {
					id = "#pgbouncer-" + strings.TrimPrefix(tc.field, "pgbouncer.")
				}
				kept, _ := p.Find(id).Attr("value")
				if goquery.NodeName(p.Find(id)) == "select" {
					kept, _ = p.Find(id + " option[selected]").Attr("value")
				}
				if want := strings.ReplaceAll(tc.value, "\x00", ""); kept != want && tc.field != "pgbouncer.pool_mode" {
					t.Errorf("%s keeps %q, want what was typed %q", id, kept, want)
				}
				if v, _ := p.Find("#param-max_connections").Attr("value"); v != "150" {
					t.Errorf("the other fields lost what they held: max_connections %q", v)
				}
				if p.Text("[data-testid=settings-refused]") == "" {
					t.Error("no sentence says that nothing was saved")
				}
				after := a.settings(e)
				if !maps.Equal(after.Parameters, before.Parameters) || after.PgBouncer != before.PgBouncer || !after.UpdatedAt.Equal(before.UpdatedAt) {
					t.Errorf("a refused save changed the settings: %+v → %+v", before, after)
				}
				if a.countAudit() != audits {
					t.Error("a refused save was audited")
				}
			})
		}
	}

	t.Run("a form the page never sends", func(t *testing.T) {
		for _, form := range []url.Values{
			with(base, "parameters.fsync", "off"),
			with(base, "surprise", "1"),
			{"parameters.work_mem": {"8MB", "16MB"}},
			{"reset": {"fsync"}},
			{"pgbouncer": {"1"}, "pgbouncer.enabled": {"yes"}},
			with(base, "parameters.work_mem", strings.Repeat("9", 2000)),
		} {
			c.post("/environments/erp/settings/database", form).want(t, http.StatusBadRequest)
		}
		if after := a.settings(e); !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Error("a refused form changed the settings")
		}
	})

	t.Run("CSRF and roles", func(t *testing.T) {
		noToken := with(base, "parameters.work_mem", "8MB")
		noToken.Del("_csrf")
		c.postRaw("/environments/erp/settings/database", noToken).want(t, http.StatusForbidden)
		a.user("viewer@example.com", store.RoleViewer)
		v := a.clientFrom("192.0.2.11")
		v.login(t, "viewer@example.com")
		p := v.get("/environments/erp/settings/database").want(t, http.StatusOK)
		if p.Find("#settings-save").Length() != 0 || p.Find("#param-work_mem[disabled]").Length() != 1 {
			t.Error("a viewer gets inputs and Save Settings")
		}
		v.post("/environments/erp/settings/database", with(base, "parameters.work_mem", "8MB")).want(t, http.StatusForbidden)
		if after := a.settings(e); !after.UpdatedAt.Equal(before.UpdatedAt) {
			t.Error("a refused post changed the settings")
		}
	})
}

// TestPgBouncerNeedsPro: on the starter plan the PgBouncer row is disabled
// and says why; a form or API request that turns it on anyway is a 403
// and saves nothing, while the parameters still save.
func TestPgBouncerNeedsPro(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.user("owner@example.com", store.RoleOwner)
	tok := a.token(owner)
	e := a.envOn("shop", "starter")
	c := a.client()
	c.login(t, "owner@example.com")

	p := c.get("/environments/shop/settings/database").want(t, http.StatusOK)
	if p.Find("fieldset#pgbouncer-settings[disabled] #pgbouncer-enabled").Length() != 1 {
		t.Error("the Enable PgBouncer toggle is not disabled on starter")
	}
	if got := p.Text("[data-testid=pgbouncer-gate]"); !strings.Contains(got, "Requires Pro plan") || !strings.Contains(got, "Upgrade to Pro") {
		t.Errorf("the PgBouncer row says %q, want Requires Pro plan and the upgrade", got)
	}
	if got := p.Text("[data-testid=pooling-off]"); !strings.Contains(got, "Pro plan") {
		t.Errorf("the Connection pooling card says %q", got)
	}
	// The replica's checklist comes from the provisioner: replica_test.go.
	form := formOf(t, p, "#settings-form")
	if _, ok := form["pgbouncer"]; ok {
		t.Fatal("the disabled PgBouncer row is submitted")
	}

	before := a.settings(e)
	turnOn := maps.Clone(form)
	turnOn.Set("pgbouncer", "1")
	turnOn.Set("pgbouncer.enabled", "on")
	r := c.post("/environments/shop/settings/database", turnOn).want(t, http.StatusForbidden)
	if !strings.Contains(r.Text("[data-testid=error-page]"), "requires the Pro plan") {
		t.Errorf("403 page says %q", r.Text("[data-testid=error-page]"))
	}
	for _, body := range []string{`{"pgbouncer": {"enabled": true}}`, `{"pgbouncer": {"pool_size": 30}}`, `{"read_replica": {"enabled": true}}`,
		`{"parameters": {"work_mem": "8MB"}, "pgbouncer": {"enabled": true}}`} {
		ans := a.api(http.MethodPut, "/api/v1/environments/shop/database/settings", tok, body).want(t, http.StatusForbidden)
		if !strings.Contains(ans.str("error"), "requires the Pro plan or above; this environment is on Starter") {
			t.Errorf("%s: error %q", body, ans.str("error"))
		}
	}
	if after := a.settings(e); !after.UpdatedAt.Equal(before.UpdatedAt) || after.PgBouncer.Enabled || len(after.Parameters) != 0 {
		t.Fatalf("a gated request saved something: %+v", after)
	}

	// What a starter plan may change saves.
	form.Set("parameters.work_mem", "6MB")
	c.post("/environments/shop/settings/database", form).want(t, http.StatusSeeOther)
	a.api(http.MethodPut, "/api/v1/environments/shop/database/settings", tok, `{"pgbouncer": {"enabled": false, "pool_size": 20}, "read_replica": {"enabled": false}}`).want(t, http.StatusOK)
	if got := a.settings(e); got.Parameters["work_mem"] != "6MB" || got.PgBouncer != (store.PoolerSettings{}) {
		t.Errorf("starter settings after allowed saves: %+v", got)
	}
}

// TestPendingNotice: the notice follows the saved settings against the
// applied snapshot, on every tab, for every role (the button for those
// who may redeploy).
func TestPendingNotice(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.user("owner@example.com", store.RoleOwner)
	tok := a.token(owner)
	a.user("viewer@example.com", store.RoleViewer)
	e := a.envOn("erp", "pro")
	c := a.client()
	c.login(t, "owner@example.com")

	// Not deployed: its first deploy applies everything.
	a.api(http.MethodPut, "/api/v1/environments/erp/database/settings", tok, `{"parameters": {"work_mem": "8MB"}}`).want(t, http.StatusOK)
	if l := pendingLines(c.get("/environments/erp").want(t, http.StatusOK)); len(l) != 0 {
		t.Errorf("a notice before the first deploy: %q", l)
	}
	e = a.markDeployed(e)
	a.api(http.MethodPut, "/api/v1/environments/erp/database/settings", tok,
		`{"parameters": {"shared_buffers": "1536MB"}, "pgbouncer": {"enabled": true, "pool_size": 30}}`).want(t, http.StatusOK)
	// The first deploy applied work_mem 8MB, saved before it.
	want := "shared_buffers: 1GB → 1536MB restart|pgbouncer.enabled: off → on|pgbouncer.pool_size: 20 → 30"
	for _, path := range []string{"/environments/erp", "/environments/erp/settings/database", "/environments/erp/pending"} {
		if got := strings.Join(pendingLines(c.get(path).want(t, http.StatusOK)), "|"); got != want {
			t.Errorf("%s: notice %q, want %q", path, got, want)
		}
	}
	v := a.clientFrom("192.0.2.11")
	v.login(t, "viewer@example.com")
	vp := v.get("/environments/erp").want(t, http.StatusOK)
	if strings.Join(pendingLines(vp), "|") != want || vp.Find("#pending-redeploy").Length() != 0 {
		t.Errorf("a viewer's notice: %q, redeploy button %d", pendingLines(vp), vp.Find("#pending-redeploy").Length())
	}

	// The redeploy records what it applied: nothing is pending then.
	d, err := provisioner.ResolveSettings(e, a.settings(e))
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := json.Marshal(d)
	if err := a.st.SetAppliedSettings(context.Background(), e.ID, snap); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/environments/erp", "/environments/erp/settings/database"} {
		p := c.get(path).want(t, http.StatusOK)
		if l := pendingLines(p); len(l) != 0 {
			t.Errorf("%s: notice after the redeploy: %q", path, l)
		}
		// The empty notice stays, to refresh itself when a job ends.
		if p.Find("#pending-notice[hx-get]").Length() != 1 {
			t.Errorf("%s: no self-refreshing notice", path)
		}
	}
}

// TestAPIDatabaseSettings checks the GET and PUT shapes, the refusals and
// that parallel saves lose nothing.
func TestAPIDatabaseSettings(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	viewer := a.token(a.user("viewer@example.com", store.RoleViewer))
	e := a.markDeployed(a.envOn("erp", "pro"))
	const path = "/api/v1/environments/erp/database/settings"

	get := a.api(http.MethodGet, path, viewer, "").want(t, http.StatusOK)
	params, _ := get.JSON["parameters"].([]any)
	if len(params) != 15 {
		t.Fatalf("%d parameters, want 15: %s", len(params), get.Raw)
	}
	first := params[0].(map[string]any)
	if first["name"] != "shared_buffers" || first["recommended"] != "1GB" || first["saved"] != nil || first["applied"] != nil ||
		first["context"] != "postmaster" || first["restart"] != true || first["rule"] != "RAM/4" {
		t.Errorf("first parameter = %v", first)
	}
	if _, ok := first["saved"]; !ok {
		t.Error("saved is left out instead of null")
	}
	var pool map[string]any
	_ = json.Unmarshal([]byte(mustJSON(get.JSON["pgbouncer"])), &pool)
	if pool["enabled"] != false || pool["pool_size"] != 20.0 || pool["pool_mode"] != "transaction" || pool["max_client_conn"] != 100.0 || pool["allowed"] != true {
		t.Errorf("pgbouncer = %v", pool)
	}
	if rr, _ := get.JSON["read_replica"].(map[string]any); rr["enabled"] != false {
		t.Errorf("read_replica = %v", get.JSON["read_replica"])
	}
	if p, ok := get.JSON["pending"].([]any); !ok || len(p) != 0 {
		t.Errorf("pending = %v, want []", get.JSON["pending"])
	}

	put := a.api(http.MethodPut, path, owner, `{"parameters": {"work_mem": "8MB", "max_connections": 150}, "pgbouncer": {"enabled": true, "pool_size": 30}, "read_replica": {"enabled": true}}`).want(t, http.StatusOK)
	if got := mustJSON(put.JSON["pending"]); got != `["work_mem","max_connections","max_slot_wal_keep_size","pgbouncer.enabled","pgbouncer.pool_size","read_replica.enabled"]` {
		t.Errorf("pending after the PUT = %s", got)
	}
	if got := paramField(put, "work_mem", "saved"); got != "8MB" {
		t.Errorf("work_mem saved = %v", got)
	}
	if got := paramField(put, "max_connections", "saved"); got != "150" {
		t.Errorf("max_connections saved = %v (a JSON number reads as its text)", got)
	}
	if got := mustJSON(put.JSON["pgbouncer"]); !strings.Contains(got, `"enabled":true`) || !strings.Contains(got, `"pool_size":30`) {
		t.Errorf("pgbouncer after the PUT = %s", got)
	}
	if got := mustJSON(put.JSON["read_replica"]); got != `{"enabled":true}` {
		t.Errorf("read_replica after the PUT = %s", got)
	}
	// null resets; what is not named stays.
	put = a.api(http.MethodPut, path, owner, `{"parameters": {"work_mem": null}}`).want(t, http.StatusOK)
	if paramField(put, "work_mem", "saved") != nil || paramField(put, "max_connections", "saved") != "150" {
		t.Errorf("after resetting work_mem: %s", put.Raw)
	}

	// The applied column is the server's read-back.
	details, _ := json.Marshal(store.PrimaryDetails{Settings: map[string]store.ServerSetting{
		"work_mem":        {Value: "4MB", Setting: "4096", Unit: "kB", VarType: "integer", MinVal: "64", MaxVal: "2147483647", Context: "user"},
		"max_connections": {Value: "200", Setting: "200", VarType: "integer", MinVal: "1", MaxVal: "500", Context: "postmaster", PendingRestart: true},
	}})
	if err := a.st.UpsertHealth(context.Background(), store.Health{EnvironmentID: e.ID, Status: store.HealthRunning, CheckedAt: time.Now(), Details: details}); err != nil {
		t.Fatal(err)
	}
	get = a.api(http.MethodGet, path, viewer, "").want(t, http.StatusOK)
	if paramField(get, "work_mem", "applied") != "4MB" || paramField(get, "max_connections", "applied") != "200" || paramField(get, "shared_buffers", "applied") != nil {
		t.Errorf("applied values: %s", get.Raw)
	}
	// …whose range is the truth for validation.
	bad := a.api(http.MethodPut, path, owner, `{"parameters": {"max_connections": "600"}}`).want(t, http.StatusUnprocessableEntity)
	if got := fieldMsg(bad, "parameters.max_connections"); got != "600 is above PostgreSQL's maximum of 500." {
		t.Errorf("max_connections 600 against the server's 500: %q", got)
	}
	c := a.client()
	a.user("ada@example.com", store.RoleAdmin)
	c.login(t, "ada@example.com")
	p := c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	// The server runs 4MB where a redeploy applies the recommendation.
	if got := cell(p, "work_mem", "applied"); got != "4MB pending" {
		t.Errorf("the page's applied work_mem = %q, want it marked", got)
	}
	if got := cell(p, "shared_buffers", "applied"); got != "—" {
		t.Errorf("the page's applied shared_buffers (not read back) = %q", got)
	}
	if got := cell(p, "max_connections", "applied"); got != "200 restart pending" {
		t.Errorf("the page's applied max_connections = %q, want it marked", got)
	}
	c.header.Set("HX-Request", "true")
	frag := c.get("/environments/erp/settings/database/applied").want(t, http.StatusOK)
	if n := frag.Find(`span.applied[hx-swap-oob]`).Length(); n != 15 {
		t.Errorf("the applied refresh swaps %d cells, want 15", n)
	}
	c.header.Del("HX-Request")

	before := a.settings(e)
	refusals := []struct {
		name, body, contentType string
		code                    int
		field, message          string
	}{
		{"bad unit", `{"parameters": {"work_mem": "8 MiB"}}`, "", 422, "parameters.work_mem", `"MiB" is not a unit PostgreSQL knows`},
		{"out of range", `{"parameters": {"work_mem": "10TB"}}`, "", 422, "parameters.work_mem", "above PostgreSQL's maximum"},
		{"plan memory", `{"parameters": {"shared_buffers": "3GB"}}`, "", 422, "parameters.shared_buffers", "more than half the plan's 4GB"},
		{"unknown parameter", `{"parameters": {"fsync": "off"}}`, "", 422, "parameters.fsync", "Unknown parameter"},
		{"parameter of the wrong type", `{"parameters": {"work_mem": true}}`, "", 422, "parameters.work_mem", "Use a string"},
		{"pool size as a string", `{"pgbouncer": {"pool_size": "30"}}`, "", 422, "pgbouncer.pool_size", "Use a whole number"},
		{"pool size fractional", `{"pgbouncer": {"pool_size": 30.5}}`, "", 422, "pgbouncer.pool_size", "Use a whole number"},
		{"pool size huge", `{"pgbouncer": {"pool_size": 1e30}}`, "", 422, "pgbouncer.pool_size", "Use a whole number"},
		{"pool size too large", `{"pgbouncer": {"pool_size": 500}}`, "", 422, "pgbouncer.pool_size", "Use 1 to 127"},
		{"enabled as a string", `{"pgbouncer": {"enabled": "yes"}}`, "", 422, "pgbouncer.enabled", "Use true or false."},
		{"pool mode", `{"pgbouncer": {"pool_mode": "statement"}}`, "", 422, "pgbouncer.pool_mode", "Use session or transaction."},
		{"null pool size", `{"pgbouncer": {"pool_size": null}}`, "", 422, "pgbouncer.pool_size", "Use a whole number"},
		{"unknown field", `{"parameters": {}, "tuning": {}}`, "", 400, "", `unknown field "tuning"`},
		{"unknown pgbouncer field", `{"pgbouncer": {"size": 30}}`, "", 400, "", `unknown field "pgbouncer.size"`},
		{"field in the wrong case", `{"Parameters": {"work_mem": "8MB"}}`, "", 400, "", `unknown field "Parameters"`},
		{"parameters not an object", `{"parameters": ["work_mem"]}`, "", 400, "", "parameters: want a JSON object"},
		{"not an object", `[]`, "", 400, "", "invalid JSON body"},
		{"trailing data", `{"parameters": {}} {}`, "", 400, "", "unexpected data after the JSON object"},
		{"broken JSON", `{"parameters": `, "", 400, "", "invalid JSON body"},
		{"too large", `{"parameters": {"work_mem": "` + strings.Repeat("9", 70<<10) + `"}}`, "", 400, "", "too large"},
		{"not JSON", `parameters.work_mem=8MB`, "application/x-www-form-urlencoded", 415, "", "Content-Type: application/json"},
	}
	for _, tc := range refusals {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{"Authorization": {"Bearer " + owner}, "Content-Type": {"application/json"}}
			if tc.contentType != "" {
				h.Set("Content-Type", tc.contentType)
			}
			r := a.apiRequest(http.MethodPut, path, h, tc.body).want(t, tc.code)
			if tc.field != "" {
				if got := fieldMsg(r, tc.field); !strings.Contains(got, tc.message) {
					t.Errorf("fields[%s] = %q, want %q (%s)", tc.field, got, tc.message, r.Raw)
				}
			} else if !strings.Contains(r.str("error"), tc.message) {
				t.Errorf("error = %q, want %q", r.str("error"), tc.message)
			}
			if after := a.settings(e); !after.UpdatedAt.Equal(before.UpdatedAt) {
				t.Error("a refused PUT saved something")
			}
		})
	}
	a.api(http.MethodPut, path, viewer, `{"parameters": {"work_mem": "8MB"}}`).want(t, http.StatusForbidden)
	a.api(http.MethodPut, "/api/v1/environments/nope/database/settings", owner, `{}`).want(t, http.StatusNotFound)
	if after := a.settings(e); !after.UpdatedAt.Equal(before.UpdatedAt) {
		t.Error("a viewer's PUT saved something")
	}

	t.Run("parallel saves lose nothing", func(t *testing.T) {
		names := []string{"work_mem", "maintenance_work_mem", "effective_cache_size", "random_page_cost", "effective_io_concurrency",
			"default_statistics_target", "checkpoint_completion_target", "max_parallel_workers"}
		values := []string{"6MB", "300MB", "2GB", "1.2", "150", "150", "0.8", "2"}
		codes := make(chan int, len(names))
		for i := range names {
			go func() {
				body := `{"parameters": {"` + names[i] + `": "` + values[i] + `"}}`
				codes <- a.rawAPI(http.MethodPut, path, owner, body)
			}()
		}
		for range names {
			if code := <-codes; code != http.StatusOK {
				t.Errorf("a parallel PUT answered %d", code)
			}
		}
		got := a.settings(e).Parameters
		for i, n := range names {
			if got[n] != values[i] {
				t.Errorf("after parallel saves %s = %q, want %q (all: %v)", n, got[n], values[i], got)
			}
		}
	})
}

// TestAPIPooler: GET /environments/{name} carries the pooler, disabled
// until PgBouncer is applied and its instance recorded, then as its health
// says; the Connection pooling card shows its figures.
func TestAPIPooler(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	tok := a.token(a.user("owner@example.com", store.RoleOwner))
	e := a.markDeployed(a.envOn("erp", "pro"))
	ctx := context.Background()

	pooler := func() map[string]any {
		t.Helper()
		r := a.api(http.MethodGet, "/api/v1/environments/erp", tok, "").want(t, http.StatusOK)
		p, ok := r.JSON["pooler"].(map[string]any)
		if !ok {
			t.Fatalf("no pooler object: %s", r.Raw)
		}
		return p
	}
	if p := pooler(); p["status"] != "disabled" || p["port"] != nil || p["reason"] != "PgBouncer is off." {
		t.Errorf("pooler of a pro environment without PgBouncer = %v", p)
	}
	a.api(http.MethodPut, "/api/v1/environments/erp/database/settings", tok, `{"pgbouncer": {"enabled": true, "pool_size": 30}}`).want(t, http.StatusOK)
	if p := pooler(); p["status"] != "disabled" || !strings.Contains(p["reason"].(string), "a redeploy starts it") {
		t.Errorf("pooler saved on, not applied = %v", p)
	}
	d, err := provisioner.ResolveSettings(e, a.settings(e))
	if err != nil {
		t.Fatal(err)
	}
	snap, _ := json.Marshal(d)
	if err := a.st.SetAppliedSettings(ctx, e.ID, snap); err != nil {
		t.Fatal(err)
	}
	if p := pooler(); p["status"] != "disabled" {
		t.Errorf("pooler applied without an instance = %v", p)
	}
	if _, err := a.st.SetInstancePort(ctx, e.ID, store.InstancePooler, 6543); err != nil {
		t.Fatal(err)
	}
	if p := pooler(); p["status"] != "checking" || p["port"] != 6543.0 {
		t.Errorf("pooler before its first check = %v", p)
	}
	details, _ := json.Marshal(store.PoolerDetails{Database: "erp", PoolMode: "transaction", PoolSize: 30, MaxClientConn: 100,
		ClActive: 12, ClWaiting: 3, SvActive: 30, SvIdle: 0, MaxWaitSeconds: 1.5, AvgQueryMicros: 2400})
	if err := a.st.UpsertHealth(ctx, store.Health{EnvironmentID: e.ID, Component: store.ComponentPooler, Status: store.HealthRunning,
		CheckedAt: time.Now(), Details: details}); err != nil {
		t.Fatal(err)
	}
	if p := pooler(); p["status"] != "running" || p["port"] != 6543.0 {
		t.Errorf("pooler running = %v", p)
	}

	c := a.client()
	c.login(t, "owner@example.com")
	c.header.Set("HX-Request", "true")
	card := c.get("/environments/erp/settings/database/pooling").want(t, http.StatusOK)
	for id, want := range map[string]string{"cl_active": "12", "cl_waiting": "3", "sv_active": "30", "sv_idle": "0", "maxwait": "1.50 s", "avg_query": "2.4 ms"} {
		if got := strings.Join(strings.Fields(card.Text("[data-testid=pool-"+id+"]")), " "); got != want {
			t.Errorf("pool stat %s = %q, want %q", id, got, want)
		}
	}
	if hint := card.Text("[data-testid=sizing-hint]"); !strings.Contains(hint, "3 clients wait for a server connection") {
		t.Errorf("sizing hint = %q", hint)
	}
	if trig, _ := card.Find("#connection-pooling").Attr("hx-trigger"); trig == "" {
		t.Error("the pooling card does not refresh itself")
	}
}

// mustJSON renders a decoded JSON value again.
func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// paramField is a field of one parameter of a settings answer.
func paramField(r apiAnswer, name, field string) any {
	ps, _ := r.JSON["parameters"].([]any)
	for _, p := range ps {
		m, _ := p.(map[string]any)
		if m["name"] == name {
			return m[field]
		}
	}
	return "missing"
}

// fieldMsg is the message of a field of an API error.
func fieldMsg(r apiAnswer, field string) string {
	f, _ := r.JSON["fields"].(map[string]any)
	s, _ := f[field].(string)
	return s
}

// pgconnect connects over TCP as the environment's role to its database.
func pgconnect(t *testing.T, e store.Environment, password string) (*pgx.Conn, error) {
	t.Helper()
	if e.Port == nil {
		t.Fatalf("%s has no port", e.Name)
	}
	cfg, err := pgx.ParseConfig("host=127.0.0.1 sslmode=disable connect_timeout=10")
	if err != nil {
		return nil, err
	}
	cfg.Port = uint16(*e.Port)
	cfg.Database, cfg.User, cfg.Password = e.DBName, e.DBUser, password
	return pgx.ConnectConfig(context.Background(), cfg)
}

// rawAPI calls the API and returns the status only; safe from any goroutine.
func (a *app) rawAPI(method, path, token, body string) int {
	req := httptest.NewRequest(method, base.ResolveReference(&url.URL{Path: path}).String(), strings.NewReader(body))
	req.RemoteAddr = "192.0.2.20:40000"
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	return rec.Code
}
