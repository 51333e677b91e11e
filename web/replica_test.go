package web_test

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/PuerkitoBio/goquery"

	"pgdeck/provisioner"
	"pgdeck/store"
)

// replicaKinds stand in for the replica's jobs (written elsewhere): these
// tests queue them and never run them.
func replicaKinds() []provisioner.Option {
	var opts []provisioner.Option
	for _, k := range []provisioner.Kind{provisioner.KindDeployReplica, provisioner.KindRebuildReplica, provisioner.KindRemoveReplica} {
		opts = append(opts, provisioner.WithKind(provisioner.JobKind{Kind: k, Lane: store.LaneOps, Timeout: time.Minute,
			Run: func(context.Context, *provisioner.JobRun, store.Environment) error {
				return errors.New("not in this test")
			}}))
	}
	return opts
}

// replicaEnv creates a deployed environment on plan with Odoo version.
func (a *jobsApp) replicaEnv(name, plan, version string) store.Environment {
	a.t.Helper()
	e, err := a.st.CreateEnvironment(context.Background(), store.Environment{Name: name, OdooVersion: version, Stage: "production", Plan: plan})
	if err != nil {
		a.t.Fatal(err)
	}
	return a.markDeployed(e)
}

// applyReplica saves read_replica on and records a redeploy that applied it.
func (a *jobsApp) applyReplica(e store.Environment) {
	a.t.Helper()
	ctx := context.Background()
	saved, err := a.st.UpdateDatabaseSettings(ctx, e.ID, func(d *store.DatabaseSettings) error { d.ReadReplica = true; return nil })
	if err != nil {
		a.t.Fatal(err)
	}
	d, err := provisioner.ResolveSettings(e, saved)
	if err != nil {
		a.t.Fatal(err)
	}
	// Recorded as applied even where the requirements say no (an Odoo
	// older than 18 never gets it from a redeploy), so that the refusal
	// tested is the requirement's own.
	d.ReadReplica = true
	raw, _ := json.Marshal(d)
	if err := a.st.SetAppliedSettings(ctx, e.ID, raw); err != nil {
		a.t.Fatal(err)
	}
}

// withReplica records a replica instance for e, as its deploy would.
func (a *jobsApp) withReplica(e store.Environment, port int) store.Environment {
	a.t.Helper()
	if _, err := a.st.SetInstancePort(context.Background(), e.ID, store.InstanceReplica, port); err != nil {
		a.t.Fatal(err)
	}
	e, err := a.st.EnvironmentByID(context.Background(), e.ID)
	if err != nil {
		a.t.Fatal(err)
	}
	return e
}

// finishJobs ends every queued job, as if it had run.
func (a *jobsApp) finishJobs() {
	a.t.Helper()
	if _, err := a.st.Pool.Exec(context.Background(), `UPDATE jobs SET state = 'succeeded', finished_at = now() WHERE state IN ('queued', 'running')`); err != nil {
		a.t.Fatal(err)
	}
}

func TestReplicaRequirementsRefuse(t *testing.T) {
	a := newJobsApp(t, replicaKinds()...)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	a.user("admin@example.com", store.RoleAdmin)
	a.replicaEnv("small", "starter", "18.0")
	old := a.replicaEnv("old", "pro", "17.0")
	// Saved and applied on would not help a version that cannot use it.
	a.applyReplica(old)

	for _, tc := range []struct{ env, want string }{
		{"small", "requires the Pro plan or above"},
		{"old", "db_replica_host came with Odoo 18.0"},
	} {
		for _, path := range []string{"/replica", "/replica/rebuild"} {
			r := a.api(http.MethodPost, "/api/v1/environments/"+tc.env+path, owner, "").want(t, http.StatusForbidden)
			if !strings.Contains(r.str("error"), tc.want) {
				t.Errorf("%s%s: error %q, want %q", tc.env, path, r.str("error"), tc.want)
			}
		}
	}
	if n := a.countJobs(); n != 0 {
		t.Fatalf("%d jobs queued by refused requests", n)
	}

	got := a.api(http.MethodGet, "/api/v1/environments/small/replica", owner, "").want(t, http.StatusOK)
	var met []string
	for _, q := range got.JSON["requirements"].([]any) {
		m := q.(map[string]any)
		met = append(met, m["name"].(string)+"="+mustJSON(m["met"]))
		if m["reason"] == "" {
			t.Errorf("requirement %v has no reason", m)
		}
	}
	if strings.Join(met, " ") != "plan=false odoo_version=true quota=false" || got.str("status") != "not_deployed" {
		t.Errorf("GET replica on starter: %s", got.Raw)
	}
	if a.api(http.MethodGet, "/api/v1/environments/small", owner, "").str("replica.status") != "not_deployed" {
		t.Error("GET environment: replica.status is not not_deployed")
	}

	// The page shows the checklist and nothing to enable.
	c := a.client()
	c.login(t, "admin@example.com")
	p := c.get("/environments/old/settings/database").want(t, http.StatusOK)
	var items []string
	p.Find("#read-replica [data-testid=requirement]").Each(func(_ int, s *goquery.Selection) {
		n, _ := s.Attr("data-name")
		m, _ := s.Attr("data-met")
		items = append(items, n+"="+m)
	})
	if strings.Join(items, " ") != "plan=true odoo_version=false quota=true" {
		t.Errorf("checklist on pro, Odoo 17: %v", items)
	}
	if p.Find("#read-replica-enabled, #replica-widget, #replica-deploy").Length() != 0 {
		t.Error("the card offers a replica that cannot be had")
	}
}

func TestReplicaDeployAndRemove(t *testing.T) {
	a := newJobsApp(t, replicaKinds()...)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	viewer := a.token(a.user("viewer@example.com", store.RoleViewer))
	a.user("admin@example.com", store.RoleAdmin)
	e := a.replicaEnv("erp", "pro", "18.0")
	c := a.client()
	c.login(t, "admin@example.com")

	// Off: 422 saying what to do.
	r := a.api(http.MethodPost, "/api/v1/environments/erp/replica", owner, "").want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(r.str("error"), "enable it in Settings → Database, save, and redeploy") {
		t.Errorf("deploy while off: %q", r.str("error"))
	}

	// Enabled with the card's checkbox and Save Settings: pending, not applied.
	p := c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	if p.Find("#read-replica-enabled[form=settings-form]").Length() != 1 || p.Find("input[name=read_replica][form=settings-form]").Length() != 1 {
		t.Fatal("the Enable Read Replica box is not part of the settings form")
	}
	if got := p.Text("[data-testid=replica-next]"); !strings.Contains(got, "Enable Read Replica, Save Settings and redeploy") {
		t.Errorf("widget before enabling says %q", got)
	}
	form := formOf(t, p, "#settings-form")
	form.Set("read_replica", "1")
	form.Set("read_replica.enabled", "on")
	c.post("/environments/erp/settings/database", form).want(t, http.StatusSeeOther)
	if !a.settings(e).ReadReplica {
		t.Fatal("Save Settings did not save read_replica")
	}
	p = c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	if lines := pendingLines(p); !contains(lines, "read_replica.enabled: off → on") {
		t.Errorf("pending notice = %q, want read_replica.enabled: off → on", lines)
	}
	if _, ok := p.Find("#read-replica-enabled").Attr("checked"); !ok {
		t.Error("the box is not checked after saving it on")
	}
	if p.Find("#replica-deploy").Length() != 0 {
		t.Error("Deploy Replica offered before a redeploy applied the setting")
	}
	r = a.api(http.MethodPost, "/api/v1/environments/erp/replica", owner, "").want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(r.str("error"), "not applied yet: redeploy erp") {
		t.Errorf("deploy before the redeploy: %q", r.str("error"))
	}
	if a.countJobs() != 0 {
		t.Fatal("a refused deploy queued a job")
	}

	// Applied: Deploy Replica shows, and the API queues deploy_replica.
	a.applyReplica(e)
	p = c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	if p.Find("#replica-deploy:not([disabled])").Length() != 1 || p.Text("[data-testid=replica-status]") != "Not deployed" {
		t.Fatalf("after the redeploy: deploy button %d, status %q", p.Find("#replica-deploy").Length(), p.Text("[data-testid=replica-status]"))
	}
	a.api(http.MethodPost, "/api/v1/environments/erp/replica", viewer, "").want(t, http.StatusForbidden)
	ans := a.api(http.MethodPost, "/api/v1/environments/erp/replica", owner, "").want(t, http.StatusAccepted)
	if ans.str("kind") != "deploy_replica" || ans.str("state") != "queued" {
		t.Fatalf("deploy answer: %s", ans.Raw)
	}
	a.api(http.MethodPost, "/api/v1/environments/erp/replica", owner, "").want(t, http.StatusConflict)
	got := a.api(http.MethodGet, "/api/v1/environments/erp/replica", viewer, "").want(t, http.StatusOK)
	if got.str("status") != "deploying" || got.JSON["enabled"] != true || got.str("job.kind") != "deploy_replica" {
		t.Errorf("GET replica while deploying: %s", got.Raw)
	}
	if th := mustJSON(got.JSON["thresholds"]); th != `{"crit_bytes":100000000,"crit_seconds":30,"warn_bytes":50000000,"warn_seconds":15}` {
		t.Errorf("thresholds = %s", th)
	}
	w := c.get("/environments/erp/settings/database/replica").want(t, http.StatusOK)
	if w.Text("[data-testid=replica-status]") != "Deploying" || w.Find("#replica-deploy").Length() != 0 {
		t.Errorf("widget while deploying: %s", w.Body)
	}

	// Deployed: DELETE queues the removal; viewers may not.
	a.finishJobs()
	a.withReplica(e, 26001)
	env := a.api(http.MethodGet, "/api/v1/environments/erp", viewer, "").want(t, http.StatusOK)
	if mustJSON(env.JSON["replica"]) != `{"port":26001,"status":"offline"}` {
		t.Errorf("GET environment: replica = %s", mustJSON(env.JSON["replica"]))
	}
	a.api(http.MethodPost, "/api/v1/environments/erp/replica", owner, "").want(t, http.StatusUnprocessableEntity)
	a.api(http.MethodDelete, "/api/v1/environments/erp/replica", viewer, "").want(t, http.StatusForbidden)
	del := a.api(http.MethodDelete, "/api/v1/environments/erp/replica", owner, "").want(t, http.StatusAccepted)
	if del.str("kind") != "remove_replica" {
		t.Fatalf("DELETE answer: %s", del.Raw)
	}

	// The page's buttons are forms with the CSRF token.
	a.finishJobs()
	p = c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	if p.Find("dialog#replica-remove-dialog form[action='/environments/erp/replica/remove'] input[name=_csrf]").Length() != 1 {
		t.Fatal("no confirmation dialog with a form")
	}
	if cmd, _ := p.Find("#replica-remove").Attr("command"); cmd != "show-modal" {
		t.Errorf("Remove opens the dialog with command=%q", cmd)
	}
	if p.Find("script:not([src])").Length() != 0 || strings.Contains(p.Body, "onclick") {
		t.Error("the page has inline script")
	}
	rb := c.post("/environments/erp/replica/rebuild", url.Values{}).want(t, http.StatusSeeOther)
	if rb.Location() != "/environments/erp/settings/database" {
		t.Errorf("rebuild redirects to %q", rb.Location())
	}
	j, err := a.st.ActiveJob(context.Background(), "erp")
	if err != nil || j.Kind != "rebuild_replica" {
		t.Fatalf("active job = %+v, %v; want rebuild_replica", j, err)
	}
	c.postRaw("/environments/erp/replica/remove", url.Values{}).want(t, http.StatusForbidden)

	// With htmx: the header (its strip follows the job), env-changed, and
	// the confirmation replaced by a closed one.
	a.finishJobs()
	c.get("/environments/erp/settings/database").want(t, http.StatusOK)
	c.header.Set("HX-Request", "true")
	rm := c.post("/environments/erp/replica/remove", url.Values{}).want(t, http.StatusAccepted)
	c.header.Del("HX-Request")
	if rm.Header.Get("HX-Trigger") != "env-changed" || rm.Find("#env-live").Length() != 1 {
		t.Errorf("htmx remove: trigger %q, body %s", rm.Header.Get("HX-Trigger"), rm.Body)
	}
	if d := rm.Find("dialog#replica-remove-dialog[hx-swap-oob]"); d.Length() != 1 || d.AttrOr("open", "none") != "none" {
		t.Error("the answer does not close the confirmation")
	}
	if j, err := a.st.ActiveJob(context.Background(), "erp"); err != nil || j.Kind != "remove_replica" {
		t.Fatalf("active job = %+v, %v; want remove_replica", j, err)
	}
}

func TestReplicaWidget(t *testing.T) {
	a := newJobsApp(t, replicaKinds()...)
	a.user("viewer@example.com", store.RoleViewer)
	a.user("admin@example.com", store.RoleAdmin)
	e := a.replicaEnv("erp", "pro", "18.0")
	a.applyReplica(e)
	e = a.withReplica(e, 26002)
	ctx := context.Background()
	i64 := func(n int64) *int64 { return &n }
	f64 := func(f float64) *float64 { return &f }
	details := func(d store.ReplicaDetails) json.RawMessage { b, _ := json.Marshal(d); return b }

	// The last half hour of checks, for the chart.
	now := time.Now()
	for i := 30; i > 0; i-- {
		at := now.Add(-time.Duration(i) * time.Minute / 2)
		if err := a.st.AddHealthHistory(ctx, e.ID, store.HealthHistoryEntry{Component: store.ComponentReplica, CheckedAt: at,
			Status: store.HealthOnline, Severity: store.SeverityOK, LagBytes: i64(int64(i) * 1_000_000), LagSeconds: f64(float64(i) / 2)}); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name     string
		h        store.Health
		pill     string
		severity string
		figures  [3]string // lag bytes, lag seconds, WAL headroom
		errorBox string
		rebuild  bool // Rebuild is the primary button
	}{
		{name: "online", h: store.Health{Status: store.HealthOnline, Severity: store.SeverityOK, LagBytes: i64(1_400_000), LagSeconds: f64(0.25),
			Details: details(store.ReplicaDetails{SafeWALBytes: i64(2_000_000_000), WALStatus: "reserved", ReceiverStatus: "streaming"})},
			pill: "Online", figures: [3]string{"1.4 MB", "0.25 s", "2.0 GB"}},
		{name: "lagging, critical", h: store.Health{Status: store.HealthLagging, Severity: store.SeverityCritical, Reason: "lag over the critical threshold",
			LagBytes: i64(150_000_000), LagSeconds: f64(42)},
			pill: "Lagging", severity: "critical", figures: [3]string{"150.0 MB", "42 s", "—"}, rebuild: true},
		{name: "offline", h: store.Health{Status: store.HealthOffline, Severity: store.SeverityOK, Reason: "the replica is not streaming"},
			pill: "Offline", figures: [3]string{"—", "—", "—"}, rebuild: true},
		{name: "error", h: store.Health{Status: store.HealthError, Severity: store.SeverityOK, Reason: "replication slot lost",
			Details: details(store.ReplicaDetails{WALStatus: "lost", Detail: "The replication slot pgdeck_replica was invalidated: required WAL was removed.",
				LogLine: "FATAL:  could not receive data from WAL stream: requested WAL segment 000000010000000000000003 has already been removed"})},
			pill: "Error", figures: [3]string{"—", "—", "—"}, errorBox: "requested WAL segment", rebuild: true},
	}
	admin := a.client()
	admin.login(t, "admin@example.com")
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := tc.h
			h.EnvironmentID, h.Component, h.CheckedAt = e.ID, store.ComponentReplica, time.Now().Add(-12*time.Second)
			if err := a.st.UpsertHealth(ctx, h); err != nil {
				t.Fatal(err)
			}
			w := admin.get("/environments/erp/settings/database/replica").want(t, http.StatusOK)
			if got := w.Text("[data-testid=replica-status]"); got != tc.pill {
				t.Errorf("pill %q, want %q", got, tc.pill)
			}
			if trig, _ := w.Find("#replica-widget").Attr("hx-trigger"); !strings.Contains(trig, "health-refreshed from:body") {
				t.Errorf("the widget does not refresh after health checks: %q", trig)
			}
			sev, _ := w.Find("[data-testid=replica-severity]").Attr("data-severity")
			if sev != tc.severity {
				t.Errorf("severity marker %q, want %q", sev, tc.severity)
			}
			got := [3]string{w.Text("[data-testid=replica-lag-bytes]"), strings.Join(strings.Fields(w.Text("[data-testid=replica-lag-seconds]")), " "),
				w.Text("[data-testid=replica-safe-wal]")}
			if got != tc.figures {
				t.Errorf("figures %q, want %q", got, tc.figures)
			}
			if tc.name == "online" {
				if title, _ := w.Find("[data-testid=replica-lag-bytes]").Attr("title"); title != "1400000 bytes" {
					t.Errorf("raw bytes tooltip %q", title)
				}
			}
			if got := w.Text("[data-testid=replica-checked]"); got != "12 s ago" && got != "13 s ago" {
				t.Errorf("Last Checked %q", got)
			}
			if title, _ := w.Find("[data-testid=replica-checked]").Attr("title"); !strings.HasSuffix(title, "UTC") {
				t.Errorf("Last Checked tooltip %q", title)
			}
			box := w.Text("[data-testid=replica-error]")
			if tc.errorBox == "" && box != "" || tc.errorBox != "" && (!strings.Contains(box, tc.errorBox) || !strings.Contains(box, "was invalidated")) {
				t.Errorf("error box %q, want %q", box, tc.errorBox)
			}
			// The chart: two panels, each with both bands and the half hour's line.
			for _, panel := range []string{"bytes", "seconds"} {
				svg := w.Find("#replica-chart svg[data-testid=chart-" + panel + "]")
				if svg.Find("rect[data-testid=band-warning]").Length() != 1 || svg.Find("rect[data-testid=band-critical]").Length() != 1 {
					t.Errorf("%s chart has no threshold bands", panel)
				}
				pts, _ := svg.Find("polyline[data-testid=lag-line]").Attr("points")
				if len(strings.Fields(pts)) != 30 {
					t.Errorf("%s chart line has %d points, want 30", panel, len(strings.Fields(pts)))
				}
			}
			primary := w.Find("#replica-rebuild.btn-primary").Length() == 1
			if primary != tc.rebuild || w.Find("#replica-rebuild").Length() != 1 {
				t.Errorf("Rebuild emphasised = %v, want %v", primary, tc.rebuild)
			}
			if w.Find("#replica-remove").Length() != 1 {
				t.Error("no Remove button")
			}
		})
	}

	t.Run("API", func(t *testing.T) {
		tok := a.token(a.user("owner@example.com", store.RoleOwner))
		r := a.api(http.MethodGet, "/api/v1/environments/erp/replica", tok, "").want(t, http.StatusOK)
		if r.str("status") != "error" || r.str("severity") != "ok" || !strings.Contains(r.str("error"), "was invalidated") || r.str("host") == "" ||
			mustJSON(r.JSON["port"]) != "26002" || r.JSON["lag_bytes"] != nil || r.str("checked_at") == "" {
			t.Errorf("GET replica in error: %s", r.Raw)
		}
	})

	t.Run("viewers see no buttons", func(t *testing.T) {
		v := a.client()
		v.login(t, "viewer@example.com")
		p := v.get("/environments/erp/settings/database").want(t, http.StatusOK)
		if p.Find("#replica-widget").Length() != 1 || p.Find("#replica-rebuild, #replica-remove, dialog").Length() != 0 {
			t.Error("a viewer is offered replica buttons")
		}
		if _, ok := p.Find("#read-replica-enabled").Attr("disabled"); !ok {
			t.Error("a viewer's Enable box is not disabled")
		}
	})
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
