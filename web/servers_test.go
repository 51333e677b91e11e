package web_test

import (
	"bytes"
	"context"
	"encoding/json"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"pgdeck/internal/dockertest"
	"pgdeck/store"
)

// Fake PEM blocks: PEM as far as the form can tell (the engine is never
// reached with them).
const (
	testCA   = "-----BEGIN CERTIFICATE-----\nQ0EgY2VydGlmaWNhdGU=\n-----END CERTIFICATE-----\n"
	testCert = "-----BEGIN CERTIFICATE-----\nY2xpZW50IGNlcnQ=\n-----END CERTIFICATE-----\n"
	testKey  = "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1tYXRlcmlhbA==\n-----END PRIVATE KEY-----\n"
)

// formPart is one field of a multipart form; with file set it is a file
// input (file is its file name, "" when none was chosen).
type formPart struct {
	name, value string
	file        *string
}

func field(name, value string) formPart { return formPart{name: name, value: value} }

func filePart(name, fileName, content string) formPart {
	return formPart{name: name, value: content, file: &fileName}
}

// postMultipart submits a multipart form as a browser does: the CSRF token
// of the last page read first, then the parts in order.
func (c *client) postMultipart(path string, parts ...formPart) *page {
	c.a.t.Helper()
	return c.postMultipartRaw(path, append([]formPart{field("_csrf", c.csrf)}, parts...)...)
}

// postMultipartRaw submits the parts as they are (no CSRF token added).
func (c *client) postMultipartRaw(path string, parts ...formPart) *page {
	c.a.t.Helper()
	var body bytes.Buffer
	w := multipart.NewWriter(&body)
	for _, p := range parts {
		var err error
		if p.file != nil {
			fw, ferr := w.CreateFormFile(p.name, *p.file)
			if err = ferr; err == nil {
				_, err = fw.Write([]byte(p.value))
			}
		} else {
			err = w.WriteField(p.name, p.value)
		}
		if err != nil {
			c.a.t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		c.a.t.Fatal(err)
	}
	req := httptest.NewRequest(http.MethodPost, base.ResolveReference(&url.URL{Path: path}).String(), &body)
	req.Header.Set("Content-Type", w.FormDataContentType())
	return c.do(req)
}

// getURL fetches a path with its query.
func (c *client) getURL(ref string) *page {
	c.a.t.Helper()
	u, err := url.Parse(ref)
	if err != nil {
		c.a.t.Fatal(err)
	}
	return c.do(httptest.NewRequest(http.MethodGet, base.ResolveReference(u).String(), nil))
}

// registerParts is the register form as a browser sends it, no file
// chosen, with the fields given.
func registerParts(fields map[string]string) []formPart {
	var out []formPart
	for _, k := range []string{"name", "docker_host", "memory", "cpus", "storage"} {
		out = append(out, field(k, fields[k]))
	}
	for _, k := range []string{"tls_ca", "tls_cert", "tls_key"} {
		out = append(out, filePart(k+"_file", "", ""), field(k, fields[k]))
	}
	return out
}

// serverJSON is a register request body.
func serverJSON(fields map[string]any) string {
	b, _ := json.Marshal(fields)
	return string(b)
}

// fields returns the API error's message for each field.
func (r apiAnswer) fields() map[string]string {
	out := map[string]string{}
	m, _ := r.JSON["fields"].(map[string]any)
	for k, v := range m {
		out[k], _ = v.(string)
	}
	return out
}

// addServer registers a server directly in the store, as if its engine had
// answered, with status.
func (a *jobsApp) addServer(name, status string) store.Server {
	a.t.Helper()
	ctx := context.Background()
	sv, err := a.st.CreateServer(ctx, store.Server{Name: name, Runtime: store.ServerDocker,
		DockerHost: "unix:///run/" + name + ".sock", MemoryBytes: 8 << 30, CPUs: 4, StorageBytes: 100 << 30})
	if err != nil {
		a.t.Fatal(err)
	}
	if err := a.st.SetServerStatus(ctx, name, status, map[string]string{store.ServerOffline: "engine does not answer"}[status], time.Now()); err != nil {
		a.t.Fatal(err)
	}
	return sv
}

// envOnServer creates an environment directly in the store on server.
func (a *jobsApp) envOnServer(name, server string) store.Environment {
	a.t.Helper()
	e, err := a.st.CreateEnvironment(context.Background(), store.Environment{Name: name, OdooVersion: "18.0", Stage: "staging", Plan: "starter", Server: server})
	if err != nil {
		a.t.Fatal(err)
	}
	return e
}

func TestServersAPI(t *testing.T) {
	t.Parallel()
	a := newServersApp(t)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	viewer := a.token(a.user("viewer@example.com", store.RoleViewer))

	t.Run("the built-in server is listed", func(t *testing.T) {
		r := a.api(http.MethodGet, "/api/v1/servers", viewer, "").want(t, http.StatusOK)
		svs, _ := r.JSON["servers"].([]any)
		if len(svs) != 1 {
			t.Fatalf("servers = %s, want the built-in one", r.Raw)
		}
		sv := svs[0].(map[string]any)
		if sv["name"] != store.BuiltinServer || sv["builtin"] != true || sv["runtime"] != "local" || sv["status"] != "unknown" {
			t.Errorf("built-in server = %v", sv)
		}
		if envs, ok := sv["environments"].([]any); !ok || len(envs) != 0 {
			t.Errorf("environments = %v, want []", sv["environments"])
		}
		for _, k := range []string{"capacity", "used"} {
			res, ok := sv[k].(map[string]any)
			if !ok || res["memory_bytes"] == nil || res["cpus"] == nil || res["storage_bytes"] == nil {
				t.Errorf("%s = %v, want memory_bytes, cpus, storage_bytes", k, sv[k])
			}
		}
		one := a.api(http.MethodGet, "/api/v1/servers/local", viewer, "").want(t, http.StatusOK)
		if one.str("name") != "local" || one.str("status") != "unknown" {
			t.Errorf("GET /servers/local = %s", one.Raw)
		}
	})

	t.Run("bad names in the URL are 404", func(t *testing.T) {
		for _, name := range []string{"nope", "NOPE", "a", "x%20y", "-x-", strings.Repeat("a", 300)} {
			a.api(http.MethodGet, "/api/v1/servers/"+name, viewer, "").want(t, http.StatusNotFound)
			a.api(http.MethodDelete, "/api/v1/servers/"+name, owner, "").want(t, http.StatusNotFound)
		}
	})

	t.Run("register refusals are 422 per field", func(t *testing.T) {
		tests := []struct {
			name  string
			body  map[string]any
			field string
			has   string
		}{
			{"no engine at the socket", map[string]any{"name": "dock-a", "docker_host": "unix:///nonexistent.sock"}, "docker_host", "does not answer"},
			{"http endpoint", map[string]any{"name": "dock-a", "docker_host": "http://x"}, "docker_host", "unix socket or tcp with TLS"},
			{"tcp without TLS", map[string]any{"name": "dock-a", "docker_host": "tcp://10.0.0.5:2376"}, "tls", "needs TLS"},
			{"TLS on a unix socket", map[string]any{"name": "dock-a", "docker_host": "unix:///run/docker.sock", "tls_ca": testCA, "tls_cert": testCert, "tls_key": testKey}, "tls", "takes no TLS"},
			{"not PEM", map[string]any{"name": "dock-a", "docker_host": "tcp://10.0.0.5:2376", "tls_ca": "hello", "tls_cert": testCert, "tls_key": testKey}, "tls_ca", "not PEM"},
			{"bad name", map[string]any{"name": "Dock_A", "docker_host": "unix:///run/docker.sock"}, "name", "lower-case"},
			{"the built-in name", map[string]any{"name": "local", "docker_host": "unix:///run/docker.sock"}, "name", "this host's own server"},
			{"negative memory", map[string]any{"name": "dock-a", "docker_host": "unix:///run/docker.sock", "memory_bytes": -1}, "memory_bytes", "0 or more"},
			{"too many CPUs", map[string]any{"name": "dock-a", "docker_host": "unix:///run/docker.sock", "cpus": 5000}, "cpus", "0 to 4096"},
			{"control characters", map[string]any{"name": "dock\x00a", "docker_host": "unix:///run/docker.sock"}, "name", "control"},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				r := a.api(http.MethodPost, "/api/v1/servers", owner, serverJSON(tt.body)).want(t, http.StatusUnprocessableEntity)
				if got := r.fields()[tt.field]; !strings.Contains(got, tt.has) {
					t.Errorf("fields[%s] = %q, want it to say %q; body %s", tt.field, got, tt.has, r.Raw)
				}
				if strings.Contains(r.Raw, "c2VjcmV0") {
					t.Errorf("the answer echoes the key: %s", r.Raw)
				}
			})
		}
		r := a.api(http.MethodGet, "/api/v1/servers", owner, "").want(t, http.StatusOK)
		if svs, _ := r.JSON["servers"].([]any); len(svs) != 1 {
			t.Errorf("refused registrations left servers: %s", r.Raw)
		}
	})

	t.Run("malformed bodies are 400", func(t *testing.T) {
		for _, body := range []string{`{"name":"dock-a","port":1}`, `{"name":1}`, `{"cpus":"2"}`, `[1]`, `{"name":"a"} {}`} {
			a.api(http.MethodPost, "/api/v1/servers", owner, body).want(t, http.StatusBadRequest)
		}
	})

	t.Run("a viewer cannot register or remove", func(t *testing.T) {
		a.api(http.MethodPost, "/api/v1/servers", viewer, serverJSON(map[string]any{"name": "dock-a", "docker_host": "unix:///run/docker.sock"})).want(t, http.StatusForbidden)
		a.api(http.MethodDelete, "/api/v1/servers/local", viewer, "").want(t, http.StatusForbidden)
	})

	t.Run("the built-in server cannot be removed", func(t *testing.T) {
		r := a.api(http.MethodDelete, "/api/v1/servers/local", owner, "").want(t, http.StatusConflict)
		if !strings.Contains(r.str("error"), "cannot be removed") {
			t.Errorf("error = %q", r.str("error"))
		}
	})

	t.Run("environments carry their server", func(t *testing.T) {
		bad := a.api(http.MethodPost, "/api/v1/environments", owner,
			`{"name":"shop","odoo_version":"18.0","stage":"staging","plan":"starter","server":"ghost"}`).want(t, http.StatusUnprocessableEntity)
		if got := bad.fields()["server"]; !strings.Contains(got, "There is no server ghost") {
			t.Errorf("fields.server = %q; body %s", got, bad.Raw)
		}
		bad = a.api(http.MethodPost, "/api/v1/environments", owner,
			`{"name":"shop","odoo_version":"18.0","stage":"staging","plan":"starter","server":"Not A Name"}`).want(t, http.StatusUnprocessableEntity)
		if got := bad.fields()["server"]; !strings.Contains(got, "There is no server named") {
			t.Errorf("fields.server = %q; body %s", got, bad.Raw)
		}
		if n := a.countEnvironments(); n != 0 {
			t.Fatalf("refused creates made %d environments", n)
		}

		created := a.api(http.MethodPost, "/api/v1/environments", owner,
			`{"name":"shop","odoo_version":"18.0","stage":"staging","plan":"starter","server":"local"}`).want(t, http.StatusCreated)
		if created.str("server") != "local" {
			t.Errorf("created: server = %q, want local", created.str("server"))
		}
		auto := a.api(http.MethodPost, "/api/v1/environments", owner,
			`{"name":"shop-2","odoo_version":"18.0","stage":"staging","plan":"starter"}`).want(t, http.StatusCreated)
		if auto.str("server") != "local" {
			t.Errorf("placed automatically: server = %q, want local (the only server)", auto.str("server"))
		}
		if got := a.api(http.MethodGet, "/api/v1/environments/shop", viewer, "").want(t, http.StatusOK).str("server"); got != "local" {
			t.Errorf("GET environment: server = %q", got)
		}
		list := a.api(http.MethodGet, "/api/v1/environments", viewer, "").want(t, http.StatusOK)
		for _, e := range list.JSON["environments"].([]any) {
			if s := e.(map[string]any)["server"]; s != "local" {
				t.Errorf("list: %v has server %v", e.(map[string]any)["name"], s)
			}
		}
		sv := a.api(http.MethodGet, "/api/v1/servers/local", viewer, "").want(t, http.StatusOK)
		if envs, _ := sv.JSON["environments"].([]any); len(envs) != 2 {
			t.Errorf("local's environments = %v, want shop and shop-2", sv.JSON["environments"])
		}
		if used := sv.JSON["used"].(map[string]any); used["memory_bytes"] != float64(2<<30) || used["cpus"] != float64(2) {
			t.Errorf("local's used = %v, want two starter plans (2 GB, 2 CPUs)", used)
		}
	})

	t.Run("offline and busy servers", func(t *testing.T) {
		a.addServer("dock-off", store.ServerOffline)
		r := a.api(http.MethodPost, "/api/v1/environments", owner,
			`{"name":"erp","odoo_version":"18.0","stage":"staging","plan":"starter","server":"dock-off"}`).want(t, http.StatusUnprocessableEntity)
		if got := r.fields()["server"]; !strings.Contains(got, "dock-off is offline") {
			t.Errorf("fields.server = %q", got)
		}
		off := a.api(http.MethodGet, "/api/v1/servers/dock-off", viewer, "").want(t, http.StatusOK)
		if off.str("status") != "offline" || off.str("reason") != "engine does not answer" || off.str("checked_at") == "" {
			t.Errorf("offline server = %s", off.Raw)
		}
		if cap := off.JSON["capacity"].(map[string]any); cap["memory_bytes"] != float64(8<<30) || cap["cpus"] != float64(4) {
			t.Errorf("capacity = %v", cap)
		}

		a.addServer("dock-busy", store.ServerOnline)
		a.envOnServer("crm", "dock-busy")
		a.envOnServer("crm-2", "dock-busy")
		busy := a.api(http.MethodDelete, "/api/v1/servers/dock-busy", owner, "").want(t, http.StatusConflict)
		if msg := busy.str("error"); !strings.Contains(msg, "crm, crm-2") {
			t.Errorf("error = %q, want it to name crm and crm-2", msg)
		}
		if code := a.rawAPI(http.MethodDelete, "/api/v1/servers/dock-off", owner, ""); code != http.StatusNoContent {
			t.Errorf("DELETE dock-off: status %d, want 204", code)
		}
		a.api(http.MethodGet, "/api/v1/servers/dock-off", owner, "").want(t, http.StatusNotFound)
	})
}

func TestServersPage(t *testing.T) {
	t.Parallel()
	a := newServersApp(t)
	a.user("owner@example.com", store.RoleOwner)
	a.user("viewer@example.com", store.RoleViewer)
	owner := a.client()
	owner.login(t, "owner@example.com")
	viewer := a.clientFrom("192.0.2.11")
	viewer.login(t, "viewer@example.com")

	t.Run("viewers look", func(t *testing.T) {
		p := viewer.get("/servers").want(t, http.StatusOK)
		if p.Find("[data-testid=nav-servers].active").Length() != 1 {
			t.Error("the Servers nav item is missing or not active")
		}
		row := p.Find(`[data-testid=server-row][data-name="local"]`)
		if row.Length() != 1 {
			t.Fatalf("no row for the built-in server:\n%s", p.Body)
		}
		if got := strings.TrimSpace(row.Find("[data-testid=server-status]").Text()); got != "Unknown" {
			t.Errorf("status = %q, want Unknown (never checked)", got)
		}
		if p.Find("#servers-live[hx-trigger]").Length() != 1 {
			t.Error("the table does not refresh itself")
		}
		if p.Find("#server-form").Length() != 0 || p.Find("button[command=show-modal]").Length() != 0 {
			t.Error("a viewer sees the register form or a Remove button")
		}
		viewer.postMultipart("/servers", registerParts(map[string]string{"name": "dock-a", "docker_host": "unix:///run/docker.sock"})...).want(t, http.StatusForbidden)
		viewer.post("/servers/local/delete", nil).want(t, http.StatusForbidden)
	})

	t.Run("the built-in server has no Remove", func(t *testing.T) {
		p := owner.get("/servers").want(t, http.StatusOK)
		if p.Find("#server-form").Length() != 1 {
			t.Fatal("an owner sees no register form")
		}
		if p.Find("#server-remove-local").Length() != 0 || p.Find("#remove-server-dialog-local").Length() != 0 {
			t.Error("the built-in server has a Remove button or dialog")
		}
		r := owner.post("/servers/local/delete", nil).want(t, http.StatusConflict)
		if msg := r.Text("[data-testid=server-remove-error]"); !strings.Contains(msg, "cannot be removed") {
			t.Errorf("refusal = %q", msg)
		}
		owner.post("/servers/ghost/delete", nil).want(t, http.StatusNotFound)
		owner.post("/servers/Bad%20Name/delete", nil).want(t, http.StatusNotFound)
	})

	t.Run("register refusals show beside the fields", func(t *testing.T) {
		tests := []struct {
			name   string
			fields map[string]string
			want   map[string]string // error testid → substring
		}{
			{"no engine at the socket", map[string]string{"name": "dock-a", "docker_host": "unix:///nonexistent.sock"},
				map[string]string{"docker_host": "does not answer"}},
			{"http endpoint", map[string]string{"name": "dock-a", "docker_host": "http://x"},
				map[string]string{"docker_host": "unix socket or tcp with TLS"}},
			{"tcp without TLS", map[string]string{"name": "dock-a", "docker_host": "tcp://10.0.0.5:2376"},
				map[string]string{"tls": "needs TLS"}},
			{"every bad field at once", map[string]string{"name": "A", "docker_host": "ftp://x", "memory": "lots", "cpus": "2.5", "storage": "-1"},
				map[string]string{"name": "at least 3", "docker_host": "unix socket or tcp", "memory": "size in GB", "cpus": "whole number", "storage": "size in GB"}},
			{"a pasted key that is not PEM", map[string]string{"name": "dock-a", "docker_host": "tcp://10.0.0.5:2376", "tls_ca": testCA, "tls_cert": testCert, "tls_key": "secret"},
				map[string]string{"tls_key": "not PEM"}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				owner.get("/servers").want(t, http.StatusOK)
				p := owner.postMultipart("/servers", registerParts(tt.fields)...).want(t, http.StatusUnprocessableEntity)
				for k, has := range tt.want {
					if got := p.Text("[data-testid=error-" + k + "]"); !strings.Contains(got, has) {
						t.Errorf("message beside %s = %q, want it to say %q", k, got, has)
					}
				}
				if got, _ := p.Find("#f-name").Attr("value"); got != tt.fields["name"] {
					t.Errorf("the name field holds %q, want %q kept", got, tt.fields["name"])
				}
				if got, _ := p.Find("#f-docker_host").Attr("value"); got != tt.fields["docker_host"] {
					t.Errorf("the endpoint field holds %q, want %q kept", got, tt.fields["docker_host"])
				}
			})
		}
	})

	t.Run("certificates are kept, the key never", func(t *testing.T) {
		owner.get("/servers").want(t, http.StatusOK)
		p := owner.postMultipart("/servers",
			field("name", "dock-a"), field("docker_host", "unix:///run/docker.sock"), field("memory", "16"), field("cpus", "4"), field("storage", ""),
			filePart("tls_ca_file", "ca.pem", testCA), field("tls_ca", ""),
			filePart("tls_cert_file", "cert.pem", testCert), field("tls_cert", ""),
			filePart("tls_key_file", "key.pem", testKey), field("tls_key", ""),
		).want(t, http.StatusUnprocessableEntity)
		if got := p.Text("[data-testid=error-tls]"); !strings.Contains(got, "takes no TLS") {
			t.Errorf("tls message = %q", got)
		}
		if got := p.Find("#f-tls_ca").Text(); got != testCA {
			t.Errorf("the CA box holds %q, want the uploaded CA kept", got)
		}
		if got, _ := p.Find("#f-memory").Attr("value"); got != "16" {
			t.Errorf("memory holds %q, want 16", got)
		}
		if strings.Contains(p.Body, "c2VjcmV0") || strings.TrimSpace(p.Find("#f-tls_key").Text()) != "" {
			t.Error("the page sends the key back")
		}
	})

	t.Run("a pasted form (urlencoded) works too", func(t *testing.T) {
		owner.get("/servers").want(t, http.StatusOK)
		p := owner.post("/servers", url.Values{"name": {"dock-a"}, "docker_host": {"tcp://10.0.0.5:2376"}, "tls_ca": {testCA}}).want(t, http.StatusUnprocessableEntity)
		if got := p.Text("[data-testid=error-tls]"); !strings.Contains(got, "needs TLS") {
			t.Errorf("tls message = %q", got)
		}
	})

	t.Run("the form needs its CSRF token first", func(t *testing.T) {
		owner.get("/servers").want(t, http.StatusOK)
		owner.postMultipartRaw("/servers", registerParts(map[string]string{"name": "dock-a", "docker_host": "unix:///run/docker.sock"})...).want(t, http.StatusForbidden)
		late := append(registerParts(map[string]string{"name": "dock-a", "docker_host": "unix:///run/docker.sock"}), field("_csrf", owner.csrf))
		owner.postMultipartRaw("/servers", late...).want(t, http.StatusForbidden)
	})

	t.Run("an oversized form is refused", func(t *testing.T) {
		owner.get("/servers").want(t, http.StatusOK)
		p := owner.postMultipart("/servers", append(registerParts(map[string]string{"name": "dock-a", "docker_host": "unix:///run/docker.sock"}),
			filePart("extra_file", "big.bin", strings.Repeat("x", 400<<10)))...)
		if p.Code != http.StatusRequestEntityTooLarge {
			t.Errorf("status %d, want 413", p.Code)
		}
	})

	t.Run("remove", func(t *testing.T) {
		a.addServer("dock-busy", store.ServerOnline)
		a.addServer("dock-idle", store.ServerOffline)
		a.envOnServer("crm", "dock-busy")

		p := owner.get("/servers").want(t, http.StatusOK)
		if got := p.Text(`[data-testid=server-row][data-name="dock-idle"] [data-testid=server-status]`); got != "Offline" {
			t.Errorf("dock-idle status = %q, want Offline", got)
		}
		if got := p.Text(`[data-testid=server-row][data-name="dock-idle"] [data-testid=server-reason]`); got != "engine does not answer" {
			t.Errorf("dock-idle reason = %q", got)
		}
		if got := p.Text(`[data-testid=server-row][data-name="dock-busy"] [data-testid=server-status]`); got != "Online" {
			t.Errorf("dock-busy status = %q, want Online", got)
		}
		if got, _ := p.Find(`[data-testid=server-row][data-name="dock-busy"] [data-testid=server-environments]`).Attr("data-count"); got != "1" {
			t.Errorf("dock-busy environments = %q, want 1", got)
		}
		if p.Find("#remove-server-dialog-dock-busy [data-testid=server-remove-blocked]").Length() != 1 {
			t.Error("the busy server's dialog does not explain that it holds environments")
		}
		if p.Find("#server-remove-confirm-dock-idle").Length() != 1 {
			t.Error("the idle server's dialog has no Remove server button")
		}

		r := owner.post("/servers/dock-busy/delete", nil).want(t, http.StatusConflict)
		if msg := r.Text("[data-testid=server-remove-error]"); !strings.Contains(msg, "environment crm") {
			t.Errorf("refusal = %q, want it to name crm", msg)
		}
		audits := a.countAudit()
		owner.post("/servers/dock-idle/delete", nil).want(t, http.StatusSeeOther)
		if a.countAudit() != audits+1 {
			t.Error("the removal was not audited")
		}
		p = owner.get("/servers").want(t, http.StatusOK)
		if p.Find(`[data-testid=server-row][data-name="dock-idle"]`).Length() != 0 {
			t.Error("dock-idle is still listed")
		}
		if flash := p.Text("[data-testid=flash]"); !strings.Contains(flash, "dock-idle removed") {
			t.Errorf("flash = %q", flash)
		}
	})

	t.Run("the refresh sends the dialogs only when they changed", func(t *testing.T) {
		p := owner.get("/servers").want(t, http.StatusOK)
		poll, _ := p.Find("#servers-live").Attr("hx-get")
		if !strings.HasPrefix(poll, "/servers/live?dialogs=") {
			t.Fatalf("hx-get = %q", poll)
		}
		same := owner.getURL(poll).want(t, http.StatusOK)
		if same.Find("#servers-table").Length() != 1 || same.Find("#server-dialogs").Length() != 0 || same.Find("header.topbar").Length() != 0 {
			t.Errorf("unchanged: want the table alone, got:\n%s", same.Body)
		}
		a.addServer("dock-new", store.ServerOnline)
		changed := owner.getURL(poll).want(t, http.StatusOK)
		if changed.Find(`#server-dialogs[hx-swap-oob] #remove-server-dialog-dock-new`).Length() != 1 {
			t.Errorf("a new server: want its dialog out of band, got:\n%s", changed.Body)
		}
		if v := viewer.getURL(poll).want(t, http.StatusOK); v.Find("#server-dialogs").Length() != 0 {
			t.Error("a viewer gets Remove dialogs")
		}
		owner.getURL("/servers/live?dialogs="+url.QueryEscape(strings.Repeat("x,", 5000))).want(t, http.StatusOK)
	})

	t.Run("new environment form", func(t *testing.T) {
		p := owner.get("/environments/new").want(t, http.StatusOK)
		opts := p.Find("#f-server option")
		if opts.Length() < 2 {
			t.Fatalf("server options: %d", opts.Length())
		}
		if v, _ := opts.First().Attr("value"); v != "" || !strings.HasPrefix(opts.First().Text(), "Automatic") {
			t.Errorf("first option = %q (%q), want Automatic", opts.First().Text(), v)
		}
		if got := p.Text(`#f-server option[value="dock-busy"]`); !strings.Contains(got, "dock-busy — Online") || !strings.Contains(got, "free") {
			t.Errorf("dock-busy option = %q, want its status and what it has free", got)
		}

		r := owner.post("/environments", url.Values{"name": {"shop"}, "odoo_version": {"18.0"}, "stage": {"staging"}, "plan": {"starter"}, "server": {"ghost"}}).want(t, http.StatusUnprocessableEntity)
		if got := r.Text("[data-testid=error-server]"); !strings.Contains(got, "There is no server ghost") {
			t.Errorf("message beside Server = %q", got)
		}
		if got, _ := r.Find("#f-name").Attr("value"); got != "shop" {
			t.Errorf("name not kept: %q", got)
		}
		r = owner.post("/environments", url.Values{"name": {"shop"}, "odoo_version": {"18.0"}, "stage": {"staging"}, "plan": {"enterprise"}, "server": {"dock-busy"}}).want(t, http.StatusUnprocessableEntity)
		if got := r.Text("[data-testid=error-server]"); !strings.Contains(got, "Enterprise environment: not enough memory") {
			t.Errorf("message beside Server = %q", got)
		}

		audits := a.countAudit()
		owner.post("/environments", url.Values{"name": {"shop"}, "odoo_version": {"18.0"}, "stage": {"staging"}, "plan": {"starter"}, "server": {"dock-busy"}}).want(t, http.StatusSeeOther)
		e, err := a.st.EnvironmentByName(context.Background(), "shop")
		if err != nil || e.Server != "dock-busy" {
			t.Fatalf("shop: %+v, %v; want it on dock-busy", e, err)
		}
		if a.countAudit() <= audits {
			t.Error("the creation was not audited")
		}
		var detail string
		if err := a.st.Pool.QueryRow(context.Background(), `SELECT detail FROM audit_log WHERE action = 'environment.create' AND target = 'shop'`).Scan(&detail); err != nil || !strings.Contains(detail, "on server dock-busy") {
			t.Errorf("audit detail = %q, %v", detail, err)
		}
		page := owner.get("/environments/shop").want(t, http.StatusOK)
		if got := page.Text("#environment-server"); got != "dock-busy" {
			t.Errorf("header server = %q", got)
		}
		list := owner.get("/environments").want(t, http.StatusOK)
		if got := list.Text(`[data-testid=environment-row][data-name="shop"] [data-testid=server-cell]`); got != "dock-busy" {
			t.Errorf("list server = %q", got)
		}
	})
}

// TestRegisterDockerServer registers a private Docker engine through the
// API and sees it Online on the Servers page.
func TestRegisterDockerServer(t *testing.T) {
	t.Parallel()
	d := dockertest.Engine(t)
	dockertest.Image(t, d)
	a := newServersApp(t)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	a.user("viewer@example.com", store.RoleViewer)

	r := a.api(http.MethodPost, "/api/v1/servers", owner, serverJSON(map[string]any{"name": "dock-1", "docker_host": d.Host})).want(t, http.StatusCreated)
	if r.str("status") != "online" || r.str("runtime") != "docker" || r.str("docker_host") != d.Host {
		t.Fatalf("registered: %s", r.Raw)
	}
	if c := r.JSON["capacity"].(map[string]any); c["memory_bytes"].(float64) <= 0 || c["cpus"].(float64) <= 0 || c["storage_bytes"].(float64) <= 0 {
		t.Errorf("capacity read from the engine = %v, want every figure", c)
	}
	again := a.api(http.MethodPost, "/api/v1/servers", owner, serverJSON(map[string]any{"name": "dock-1", "docker_host": d.Host})).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(again.fields()["name"], "already exists") {
		t.Errorf("a second dock-1: %s", again.Raw)
	}

	c := a.clientFrom("192.0.2.12")
	c.login(t, "viewer@example.com")
	p := c.get("/servers").want(t, http.StatusOK)
	row := p.Find(`[data-testid=server-row][data-name="dock-1"]`)
	if got := strings.TrimSpace(row.Find("[data-testid=server-status]").Text()); got != "Online" {
		t.Errorf("dock-1 shows %q, want Online", got)
	}
	if got := strings.TrimSpace(row.Find("[data-testid=server-endpoint]").Text()); got != d.Host {
		t.Errorf("dock-1 endpoint = %q", got)
	}

	env := a.api(http.MethodPost, "/api/v1/environments", owner,
		`{"name":"shop","odoo_version":"18.0","stage":"staging","plan":"starter","server":"dock-1"}`).want(t, http.StatusCreated)
	if env.str("server") != "dock-1" {
		t.Errorf("environment placed on %q, want dock-1", env.str("server"))
	}
	var entries int
	if err := a.st.Pool.QueryRow(context.Background(), `SELECT count(*) FROM audit_log WHERE action = 'server.register' AND target = 'dock-1'`).Scan(&entries); err != nil || entries != 1 {
		t.Errorf("server.register entries = %d, %v", entries, err)
	}
}

// TestRegisterDockerServerOverTLS: the API registers a Docker host over
// tcp with its TLS files as JSON strings; certificates the engine refuses
// are answered 422 beside tls and nothing is stored; the server's answer
// and the page never show the key or the certificates.
func TestRegisterDockerServerOverTLS(t *testing.T) {
	t.Parallel()
	d := dockertest.EngineTLS(t)
	dockertest.Image(t, d)
	a := newServersApp(t)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	untrusted, err := dockertest.UntrustedTLS()
	if err != nil {
		t.Fatal(err)
	}

	bad := a.api(http.MethodPost, "/api/v1/servers", owner, serverJSON(map[string]any{"name": "dock-tls", "docker_host": d.TCP,
		"tls_ca": string(d.TLS.CA), "tls_cert": string(untrusted.Cert), "tls_key": string(untrusted.Key)})).want(t, http.StatusUnprocessableEntity)
	if !strings.Contains(bad.fields()["tls"], "refused pgdeck's client certificate") {
		t.Errorf("a client certificate the engine does not know: %s", bad.Raw)
	}
	if svs, _ := a.st.ListServers(context.Background()); len(svs) != 1 {
		t.Fatalf("a refused registration left servers: %+v", svs)
	}

	r := a.api(http.MethodPost, "/api/v1/servers", owner, serverJSON(map[string]any{"name": "dock-tls", "docker_host": d.TCP,
		"tls_ca": string(d.TLS.CA), "tls_cert": string(d.TLS.Cert), "tls_key": string(d.TLS.Key)})).want(t, http.StatusCreated)
	if r.str("status") != "online" || r.str("docker_host") != d.TCP {
		t.Fatalf("registered: %s", r.Raw)
	}
	got := a.api(http.MethodGet, "/api/v1/servers/dock-tls", owner, "").want(t, http.StatusOK)
	c := a.clientFrom("192.0.2.13")
	c.login(t, "owner@example.com")
	page := c.get("/servers").want(t, http.StatusOK)
	if page.Find(`[data-testid=server-row][data-name="dock-tls"]`).Length() != 1 {
		t.Error("the page does not list dock-tls")
	}
	for what, body := range map[string]string{"POST answer": r.Raw, "GET answer": got.Raw, "page": page.Body} {
		if strings.Contains(body, "BEGIN") || strings.Contains(body, string(d.TLS.Key[40:80])) {
			t.Errorf("the %s shows TLS material", what)
		}
	}
}
