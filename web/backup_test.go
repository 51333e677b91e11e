package web_test

import (
	"archive/zip"
	"bytes"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strconv"
	"strings"
	"testing"

	"pgdeck/store"
)

// TestAPIBackups drives the backups' API with good and bad input: a bad
// value is a 422 beside its field, a bad shape a 400, a viewer's change a
// 403, another environment's backup a 404, and nothing changes on a
// refusal.
func TestAPIBackups(t *testing.T) {
	a := newJobsApp(t)
	owner := a.token(a.user("owner@example.com", store.RoleOwner))
	viewer := a.token(a.user("viewer@example.com", store.RoleViewer))
	for _, name := range []string{"erp", "other"} {
		a.api(http.MethodPost, "/api/v1/environments", owner, `{"name":"`+name+`","odoo_version":"18.0","stage":"production","plan":"pro"}`).want(t, http.StatusCreated)
		a.runJob()
	}

	bad := a.api(http.MethodPost, "/api/v1/environments/erp/backups", owner, `{"format":"tar"}`).want(t, http.StatusUnprocessableEntity)
	if bad.JSON["fields"].(map[string]any)["format"] == nil {
		t.Errorf("bad format: %s", bad.Raw)
	}
	a.api(http.MethodPost, "/api/v1/environments/erp/backups", owner, `{"format":"zip","extra":1}`).want(t, http.StatusBadRequest)
	a.api(http.MethodPost, "/api/v1/environments/erp/backups", viewer, "").want(t, http.StatusForbidden)
	if n := a.countJobs(); n != 2 {
		t.Fatalf("refused backups queued jobs: %d jobs", n)
	}
	job := a.api(http.MethodPost, "/api/v1/environments/erp/backups", owner, "").want(t, http.StatusAccepted)
	if job.str("kind") != "backup" {
		t.Fatalf("backup job: %s", job.Raw)
	}
	a.runJob()
	list := a.api(http.MethodGet, "/api/v1/environments/erp/backups", viewer, "").want(t, http.StatusOK)
	backups, _ := list.JSON["backups"].([]any)
	if len(backups) != 1 {
		t.Fatalf("backups: %s", list.Raw)
	}
	b := backups[0].(map[string]any)
	if b["state"] != "succeeded" || b["kind"] != "manual" || b["format"] != "zip" || b["size_bytes"].(float64) <= 0 {
		t.Fatalf("backup: %v", b)
	}
	id := strconv.FormatFloat(b["id"].(float64), 'f', 0, 64)
	a.api(http.MethodGet, "/api/v1/environments/erp/backups/"+id, viewer, "").want(t, http.StatusOK)
	a.api(http.MethodGet, "/api/v1/environments/other/backups/"+id, owner, "").want(t, http.StatusNotFound)
	a.api(http.MethodGet, "/api/v1/environments/erp/backups/abc", owner, "").want(t, http.StatusNotFound)
	a.api(http.MethodGet, "/api/v1/environments/erp/backups/99999", owner, "").want(t, http.StatusNotFound)

	// Downloads: owners and admins, whole or resumed.
	download := func(token, rng string) *httptest.ResponseRecorder {
		req := httptest.NewRequest(http.MethodGet, base.ResolveReference(&url.URL{Path: "/api/v1/environments/erp/backups/" + id + "/download"}).String(), nil)
		req.RemoteAddr = "192.0.2.20:40000"
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		if rng != "" {
			req.Header.Set("Range", rng)
		}
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		return rec
	}
	if rec := download("", ""); rec.Code != http.StatusUnauthorized {
		t.Errorf("download without a token: %d", rec.Code)
	}
	if rec := download(viewer, ""); rec.Code != http.StatusForbidden {
		t.Errorf("download by a viewer: %d", rec.Code)
	}
	whole := download(owner, "")
	if whole.Code != http.StatusOK || !strings.Contains(whole.Header().Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d %v", whole.Code, whole.Header())
	}
	data := whole.Body.Bytes()
	if int64(len(data)) != int64(b["size_bytes"].(float64)) {
		t.Errorf("downloaded %d bytes, the backup has %v", len(data), b["size_bytes"])
	}
	if zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data))); err != nil || zr.File[0].Name != "dump.sql" {
		t.Errorf("the download is not an Odoo zip with dump.sql first: %v", err)
	}
	part := download(owner, "bytes=100-199")
	if part.Code != http.StatusPartialContent || !bytes.Equal(part.Body.Bytes(), data[100:200]) {
		t.Errorf("resumed download: %d, %d bytes", part.Code, part.Body.Len())
	}

	// Restore: a bad target or shape changes nothing.
	r := a.api(http.MethodPost, "/api/v1/environments/erp/backups/"+id+"/restore", owner, `{"target":"nope"}`).want(t, http.StatusUnprocessableEntity)
	if r.JSON["fields"].(map[string]any)["target"] == nil {
		t.Errorf("unknown target: %s", r.Raw)
	}
	a.api(http.MethodPost, "/api/v1/environments/erp/backups/"+id+"/restore", owner, `{"target":"../erp"}`).want(t, http.StatusUnprocessableEntity)
	a.api(http.MethodPost, "/api/v1/environments/erp/backups/"+id+"/restore", owner, `{"neutralize":"yes"}`).want(t, http.StatusBadRequest)
	a.api(http.MethodPost, "/api/v1/environments/erp/backups/"+id+"/restore", viewer, "").want(t, http.StatusForbidden)
	if n := a.countJobs(); n != 3 {
		t.Fatalf("refused restores queued jobs: %d jobs", n)
	}

	// Schedule.
	s := a.api(http.MethodGet, "/api/v1/environments/erp/backups/schedule", viewer, "").want(t, http.StatusOK)
	if s.JSON["enabled"] != false || s.str("time") != "02:00" || s.JSON["keep_daily"].(float64) != 7 {
		t.Errorf("default schedule: %s", s.Raw)
	}
	for body, field := range map[string]string{
		`{"time":"25:00"}`: "time", `{"time":"2:00"}`: "time", `{"keep_daily":-1}`: "keep_daily",
		`{"keep_weekly":"4"}`: "keep_weekly", `{"enabled":"yes"}`: "enabled",
		`{"enabled":true,"keep_daily":0,"keep_weekly":0,"keep_monthly":0}`: "keep_daily",
	} {
		r := a.api(http.MethodPut, "/api/v1/environments/erp/backups/schedule", owner, body).want(t, http.StatusUnprocessableEntity)
		if r.JSON["fields"].(map[string]any)[field] == nil {
			t.Errorf("%s: %s, want a message for %s", body, r.Raw, field)
		}
	}
	a.api(http.MethodPut, "/api/v1/environments/erp/backups/schedule", owner, `{"every":"day"}`).want(t, http.StatusBadRequest)
	a.api(http.MethodPut, "/api/v1/environments/erp/backups/schedule", viewer, `{"enabled":true}`).want(t, http.StatusForbidden)
	s = a.api(http.MethodPut, "/api/v1/environments/erp/backups/schedule", owner, `{"enabled":true,"time":"03:15","keep_monthly":6}`).want(t, http.StatusOK)
	if s.JSON["enabled"] != true || s.str("time") != "03:15" || s.JSON["keep_monthly"].(float64) != 6 || s.JSON["keep_daily"].(float64) != 7 {
		t.Errorf("saved schedule: %s", s.Raw)
	}

	// Import: a file that is not an archive is refused with the reason; one
	// over the limit is a 413; neither is recorded.
	imp := func(body []byte, ct string) apiAnswer {
		h := http.Header{"Authorization": {"Bearer " + owner}, "Content-Type": {ct}}
		return a.apiRequest(http.MethodPost, "/api/v1/environments/erp/backups/import", h, string(body))
	}
	r = imp([]byte("not a zip at all"), "application/zip").want(t, http.StatusUnprocessableEntity)
	if r.JSON["fields"].(map[string]any)["file"] == nil {
		t.Errorf("non-zip import: %s", r.Raw)
	}
	imp(bytes.Repeat([]byte("x"), 5<<20), "application/zip").want(t, http.StatusRequestEntityTooLarge)
	// The archive pgdeck just wrote imports (into the other environment).
	h := http.Header{"Authorization": {"Bearer " + owner}, "Content-Type": {"application/zip"}}
	r = a.apiRequest(http.MethodPost, "/api/v1/environments/other/backups/import", h, string(data)).want(t, http.StatusCreated)
	if r.str("kind") != "imported" || r.str("state") != "succeeded" || r.str("source") != "erp" {
		t.Errorf("imported backup: %s", r.Raw)
	}
	list = a.api(http.MethodGet, "/api/v1/environments/erp/backups", viewer, "").want(t, http.StatusOK)
	if n := len(list.JSON["backups"].([]any)); n != 1 {
		t.Errorf("erp has %d backups after refused imports, want 1", n)
	}

	a.api(http.MethodDelete, "/api/v1/environments/erp/backups/"+id, viewer, "").want(t, http.StatusForbidden)
	req := httptest.NewRequest(http.MethodDelete, base.ResolveReference(&url.URL{Path: "/api/v1/environments/erp/backups/" + id}).String(), nil)
	req.Header.Set("Authorization", "Bearer "+owner)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusNoContent {
		t.Errorf("delete: %d %s", rec.Code, rec.Body)
	}
	a.api(http.MethodGet, "/api/v1/environments/erp/backups/"+id, owner, "").want(t, http.StatusNotFound)
}

// TestPageImportNeedsTheTokenFirst uploads through the page: without the
// CSRF token as the form's first part nothing is read (403); with it, a
// file that is not an archive gets its message under the field.
func TestPageImportNeedsTheTokenFirst(t *testing.T) {
	a := newJobsApp(t)
	a.user("owner@example.com", store.RoleOwner)
	c := a.client()
	c.login(t, "owner@example.com")
	a.api(http.MethodPost, "/api/v1/environments", a.token(a.user("api@example.com", store.RoleOwner)),
		`{"name":"erp","odoo_version":"18.0","stage":"production","plan":"pro"}`).want(t, http.StatusCreated)
	a.runJob()
	c.get("/environments/erp/backups").want(t, http.StatusOK)

	upload := func(fields [][2]string, file []byte) *page {
		var body bytes.Buffer
		mw := multipart.NewWriter(&body)
		for _, f := range fields {
			mw.WriteField(f[0], f[1])
		}
		if file != nil {
			w, _ := mw.CreateFormFile("file", "backup.zip")
			w.Write(file)
		}
		mw.Close()
		req := httptest.NewRequest(http.MethodPost, base.ResolveReference(&url.URL{Path: "/environments/erp/backups/import"}).String(), io.NopCloser(&body))
		req.Header.Set("Content-Type", mw.FormDataContentType())
		return c.do(req)
	}
	upload(nil, []byte("PK not really")).want(t, http.StatusForbidden)
	upload([][2]string{{"_csrf", "wrong"}}, []byte("PK not really")).want(t, http.StatusForbidden)
	p := upload([][2]string{{"_csrf", c.csrf}}, []byte("not a zip")).want(t, http.StatusUnprocessableEntity)
	if msg := p.Text(`[data-testid="error-file"]`); msg == "" {
		t.Errorf("no message under the file field: %s", p.Body)
	}
	p = upload([][2]string{{"_csrf", c.csrf}}, nil).want(t, http.StatusUnprocessableEntity)
	if msg := p.Text(`[data-testid="error-file"]`); !strings.Contains(msg, "Choose an archive") {
		t.Errorf("upload without a file: %q", msg)
	}

	// The schedule form: a bad time keeps what was typed, with its message.
	p = c.post("/environments/erp/backups/schedule", url.Values{"enabled": {"on"}, "time": {"25:99"},
		"keep_daily": {"7"}, "keep_weekly": {"4"}, "keep_monthly": {"12"}}).want(t, http.StatusUnprocessableEntity)
	if p.Text(`[data-testid="error-time"]`) == "" || p.Find(`input[name="time"]`).AttrOr("value", "") != "25:99" {
		t.Errorf("bad time: %s", p.Body)
	}
}
