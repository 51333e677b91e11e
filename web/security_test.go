package web_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"pgdeck/store/storetest"
	"pgdeck/web"
)

// multipartFiles lists Go's multipart spill files in the temp folder.
func multipartFiles(t *testing.T) map[string]bool {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(os.TempDir(), "multipart-*"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, n := range names {
		out[n] = true
	}
	return out
}

// bigUpload is a multipart body with one 50 MB file part.
func bigUpload(t *testing.T) (body []byte, contentType string) {
	t.Helper()
	var buf bytes.Buffer
	w := multipart.NewWriter(&buf)
	w.WriteField("_csrf", "x")
	fw, err := w.CreateFormFile("file", "big.bin")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write(bytes.Repeat([]byte("A"), 50<<20))
	w.Close()
	return buf.Bytes(), w.FormDataContentType()
}

func TestUploadsLeaveNothingOnDisk(t *testing.T) {
	a := newApp(t)
	a.user("ada@example.com", "owner")
	body, ct := bigUpload(t)
	before := multipartFiles(t)
	for _, path := range []string{"/login", "/no-such-page", "/setup", "/account/tokens"} {
		for _, known := range []bool{true, false} {
			// Without a length the body limit cannot refuse it up front.
			var r io.Reader = bytes.NewReader(body)
			if !known {
				r = io.MultiReader(bytes.NewReader(body))
			}
			req := httptest.NewRequest(http.MethodPost, base.String()+strings.TrimPrefix(path, "/"), r)
			if !known {
				req.ContentLength = -1
			}
			req.Header.Set("Content-Type", ct)
			req.RemoteAddr = "192.0.2.66:4000"
			rec := httptest.NewRecorder()
			a.h.ServeHTTP(rec, req)
			if rec.Code < 400 || rec.Code > 499 {
				t.Errorf("POST %s (length known %v): %d, want 4xx", path, known, rec.Code)
			}
		}
	}
	for n := range multipartFiles(t) {
		if !before[n] {
			t.Errorf("an upload left %s in the temp folder", n)
			os.Remove(n)
		}
	}
}

func TestCSRFTokenNotFromTheQuery(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	c := a.client()
	c.login(t, "ada@example.com")
	req := httptest.NewRequest(http.MethodPost, base.String()+"account/tokens?_csrf="+url.QueryEscape(c.csrf), strings.NewReader("name=query"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	c.do(req).want(t, http.StatusForbidden)
	// The header works, as htmx sends it.
	req = httptest.NewRequest(http.MethodPost, base.String()+"account/tokens", strings.NewReader("name=header"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("X-CSRF-Token", c.csrf)
	c.do(req).want(t, http.StatusCreated)
}

func TestParallelWrongLoginsAreCountedBeforeHashing(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	c := a.clientFrom("198.51.100.30")
	c.get("/login").want(t, http.StatusOK)
	codes := make([]int, 30)
	var wg sync.WaitGroup
	for i := range codes {
		wg.Go(func() {
			c := *c // its own copy of the last CSRF token read; the cookie jar is shared
			codes[i] = c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {fmt.Sprintf("wrong guess %d", i)}}).Code
		})
	}
	wg.Wait()
	count := map[int]int{}
	for _, code := range codes {
		count[code]++
	}
	if count[http.StatusUnauthorized] > 5 || count[http.StatusUnauthorized]+count[http.StatusTooManyRequests]+count[http.StatusServiceUnavailable] != 30 {
		t.Errorf("30 parallel wrong logins answered %v, want at most 5 × 401 and the rest 429 (or 503)", count)
	}
	var failed int
	if err := a.st.Pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_log WHERE action = 'login.failed'").Scan(&failed); err != nil {
		t.Fatal(err)
	}
	if failed > 5 {
		t.Errorf("%d passwords were checked, want at most 5", failed)
	}
}

func TestOwnerSignsInWhileTheAccountIsSprayed(t *testing.T) {
	t.Parallel()
	// A low ceiling keeps the number of (slow) password hashes small.
	a := newAppWith(t, storetest.New(t), func(d *web.Deps) { d.AccountLoginCeiling = 12 })
	a.user("ada@example.com", "owner")
	usual := a.clientFrom("203.0.113.5")
	usual.login(t, "ada@example.com")
	usual.post("/logout", nil).want(t, http.StatusSeeOther)
	// Same address, a browser without the device cookie.
	usualAddr := a.clientFrom("203.0.113.5")

	// Wrong passwords from many addresses, one each.
	for i := range 12 {
		c := a.clientFrom(fmt.Sprintf("198.18.0.%d", i+1))
		c.get("/login")
		c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"spray spray spray"}}).want(t, http.StatusUnauthorized)
	}

	// A browser that never signed in meets the account-wide ceiling...
	stranger := a.clientFrom("192.0.2.200")
	stranger.get("/login")
	stranger.post("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}).want(t, http.StatusTooManyRequests)
	// ...the owner's browser and usual address do not.
	usual.login(t, "ada@example.com")
	usualAddr.login(t, "ada@example.com")
}

func TestLoginInputIsCheckedBeforeTheLimiterAndTheAudit(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	c := a.client()
	a.user("ada@example.com", "owner")
	c.get("/login")
	before := a.countAudit()
	for name, email := range map[string]string{
		"200 KB email":  strings.Repeat("a", 200<<10) + "@example.com",
		"255 bytes":     strings.Repeat("a", 243) + "@example.com",
		"NUL byte":      "ada\x00@example.com",
		"invalid UTF-8": "ad\xffa@example.com",
		"RLO":           "ada\u202e@example.com",
	} {
		p := c.post("/login", url.Values{"email": {email}, "password": {"whatever"}})
		if p.Code != http.StatusUnprocessableEntity || p.Text("[data-testid=error-email]") == "" {
			t.Errorf("%s: %d, message %q; want 422 beside the field", name, p.Code, p.Text("[data-testid=error-email]"))
		}
	}
	p := c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {"pass\x00word"}}).want(t, http.StatusUnprocessableEntity)
	if p.Text("[data-testid=error-password]") == "" {
		t.Error("no message beside a password with a NUL byte")
	}
	if n := a.countAudit(); n != before {
		t.Errorf("refused input wrote %d audit entries", n-before)
	}
	// Still allowed: nothing was counted.
	c.login(t, "ada@example.com")

	// A token name with a NUL byte is refused beside the field, not a 500.
	p = c.post("/account/tokens", url.Values{"name": {"dep\x00loy"}}).want(t, http.StatusUnprocessableEntity)
	if p.Text("[data-testid=error-name]") == "" {
		t.Error("no message beside the token name")
	}
	p = c.post("/environments", url.Values{"name": {"shop\u202e"}, "odoo_version": {"18.0"}, "stage": {"staging"}, "plan": {"pro"}}).want(t, http.StatusUnprocessableEntity)
	if p.Text("[data-testid=error-name]") == "" {
		t.Error("no message beside the environment name")
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	c := a.client()
	c.login(t, "ada@example.com")
	for _, path := range []string{"/environments", "/account", "/login"} {
		p := c.get(path)
		csp := p.Header.Get("Content-Security-Policy")
		if !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") || strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if p.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("%s: Cache-Control %q, want no-store", path, p.Header.Get("Cache-Control"))
		}
		if p.Header.Get("Strict-Transport-Security") != "" {
			t.Errorf("%s: HSTS on plain HTTP", path)
		}
		if p.Find("[style]").Length() > 0 || p.Find("script:not([src])").Length() > 0 || strings.Contains(p.Body, " onclick=") {
			t.Errorf("%s has inline style or script, which the CSP blocks", path)
		}
	}
	if p := c.post("/account/tokens", url.Values{"name": {"ci"}}).want(t, http.StatusCreated); p.Header.Get("Cache-Control") != "no-store" {
		t.Error("the page showing a new token may be cached")
	}

	// Behind a TLS-terminating proxy: https public URL.
	s := newAppWith(t, a.st, func(d *web.Deps) { d.PublicURL = &url.URL{Scheme: "https", Host: "pgdeck.test"} })
	sc := s.client()
	p := sc.get("/login")
	if !strings.HasPrefix(p.Header.Get("Strict-Transport-Security"), "max-age=") {
		t.Errorf("https public URL: HSTS %q", p.Header.Get("Strict-Transport-Security"))
	}
	var anon *http.Cookie
	for _, ck := range p.Cookie {
		if ck.Name == "pgdeck_csrf" {
			anon = ck
		}
	}
	if anon == nil || !anon.Secure {
		t.Fatalf("https public URL: CSRF cookie %+v is not Secure", anon)
	}
	// The test's cookie jar keeps Secure cookies off http://, so send it by hand.
	req := httptest.NewRequest(http.MethodPost, base.String()+"login", strings.NewReader(url.Values{
		"email": {"ada@example.com"}, "password": {testPassword}, "_csrf": {sc.csrf}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(&http.Cookie{Name: anon.Name, Value: anon.Value})
	p = sc.do(req).want(t, http.StatusSeeOther)
	if ck := p.sessionCookie(); ck == nil || !ck.Secure {
		t.Errorf("https public URL: session cookie %+v is not Secure", ck)
	}
}

func TestHostAndOriginChecks(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	get := func(host string) int {
		req := httptest.NewRequest(http.MethodGet, "http://"+host+"/login", nil)
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		return rec.Code
	}
	for host, want := range map[string]int{
		"pgdeck.test": 200, "127.0.0.1:8080": 200, "[::1]:8080": 200, "localhost:8080": 200,
		"attacker.example": 421, "attacker.example:8080": 421,
	} {
		if got := get(host); got != want {
			t.Errorf("Host %s: %d, want %d", host, got, want)
		}
	}
	c := a.client()
	c.login(t, "ada@example.com")
	c.header.Set("Origin", "http://attacker.example")
	c.post("/account/tokens", url.Values{"name": {"x"}}).want(t, http.StatusForbidden)
	c.header.Set("Origin", "http://pgdeck.test")
	c.post("/account/tokens", url.Values{"name": {"x"}}).want(t, http.StatusCreated)
}

func TestAnonymousViewsKeepNoSession(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	for range 20 {
		c := a.client()
		c.get("/login").want(t, http.StatusOK)
		c.get("/environments").want(t, http.StatusSeeOther)
		c.get("/no-such-page")
		c.get("/setup")
	}
	var n int
	if err := a.st.Pool.QueryRow(context.Background(), "SELECT count(*) FROM sessions").Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Errorf("anonymous views wrote %d session rows, want 0", n)
	}
	// A login form from a cookie signed by someone else is refused.
	c := a.client()
	c.get("/login")
	c.jar.SetCookies(base, []*http.Cookie{{Name: "pgdeck_csrf", Value: c.csrf + ".forged"}})
	c.post("/login", url.Values{"email": {"ada@example.com"}, "password": {testPassword}}).want(t, http.StatusForbidden)
}

func TestViewerRevokesOwnToken(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	u := a.user("cy@example.com", "viewer")
	tok := a.token(u)
	c := a.client()
	c.login(t, "cy@example.com")
	p := c.get("/account").want(t, http.StatusOK)
	action, _ := p.Find("[data-testid=token-row] form").Attr("action")
	c.post(action, nil).want(t, http.StatusSeeOther)
	a.api(http.MethodGet, "/api/v1/environments", tok, "").want(t, http.StatusUnauthorized)
}

func TestHealthzHidesStoreErrors(t *testing.T) {
	t.Parallel()
	st := newApp(t).st
	a := newAppOn(t, st)
	st.Close()
	ans := a.apiRequest(http.MethodGet, "/healthz", nil, "")
	if ans.Code != http.StatusServiceUnavailable || strings.Contains(ans.Raw, "closed") || strings.Contains(ans.Raw, "/") {
		t.Errorf("healthz with the store down: %d %s", ans.Code, ans.Raw)
	}
}

func TestAPICreateIsStrict(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	tok := a.token(a.user("ada@example.com", "owner"))
	good := `{"name":"shop","odoo_version":"18.0","stage":"staging","plan":"pro"}`
	for name, body := range map[string]string{
		"trailing garbage":  good + `{"name":"x"}`,
		"trailing text":     good + ` garbage`,
		"case-mismatch key": `{"NAME":"shop","odoo_version":"18.0","stage":"staging","plan":"pro"}`,
		"unknown key":       `{"name":"shop","odoo_version":"18.0","stage":"staging","plan":"pro","x":1}`,
		"non-string value":  `{"name":1,"odoo_version":"18.0","stage":"staging","plan":"pro"}`,
		"not an object":     `[1]`,
		"null":              `null`,
	} {
		if ans := a.api(http.MethodPost, "/api/v1/environments", tok, body); ans.Code != http.StatusBadRequest {
			t.Errorf("%s: %d %s, want 400", name, ans.Code, ans.Raw)
		}
	}
	for _, reserved := range []string{"new", "postgres", "template0", "template1"} {
		ans := a.api(http.MethodPost, "/api/v1/environments", tok, `{"name":"`+reserved+`","odoo_version":"18.0","stage":"staging","plan":"pro"}`).want(t, http.StatusUnprocessableEntity)
		if !strings.Contains(ans.str("fields.name"), "reserved") {
			t.Errorf("the reserved name %s: %s", reserved, ans.Raw)
		}
	}
	ans := a.api(http.MethodPost, "/api/v1/environments", tok, `{"name":"shop\u202e","odoo_version":"18.0","stage":"staging\u0000","plan":"pro"}`).want(t, http.StatusUnprocessableEntity)
	if ans.str("fields.name") == "" || ans.str("fields.stage") == "" {
		t.Errorf("control characters: %s", ans.Raw)
	}
	if a.countEnvironments() != 0 {
		t.Error("a refused body created an environment")
	}
	a.api(http.MethodPost, "/api/v1/environments", tok, good).want(t, http.StatusCreated)

	// /static/ lists no folders.
	for _, path := range []string{"/static/", "/static/css/", "/static/js"} {
		req := httptest.NewRequest(http.MethodGet, base.String()+strings.TrimPrefix(path, "/"), nil)
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", path, rec.Code)
		}
	}
	req := httptest.NewRequest(http.MethodGet, base.String()+"static/css/app.css", nil)
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Errorf("GET app.css: %d", rec.Code)
	}
}

func TestMetricsNeedAToken(t *testing.T) {
	t.Parallel()
	st := newApp(t).st
	a := newAppWith(t, st, func(d *web.Deps) {
		d.Metrics = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "pgdeck_up 1\n") })
	})
	tok := a.token(a.user("cy@example.com", "viewer"))
	get := func(token string) int {
		req := httptest.NewRequest(http.MethodGet, base.String()+"metrics", nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		rec := httptest.NewRecorder()
		a.h.ServeHTTP(rec, req)
		return rec.Code
	}
	if code := get(""); code != http.StatusUnauthorized {
		t.Errorf("anonymous /metrics: %d, want 401", code)
	}
	if code := get(tok); code != http.StatusOK {
		t.Errorf("/metrics with a viewer's token: %d, want 200", code)
	}
}

func TestAccountLifecycle(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	bob := a.user("bob@example.com", "admin")
	bobTok := a.token(bob)
	owner := a.client()
	owner.login(t, "ada@example.com")
	b := a.clientFrom("192.0.2.11")
	b.login(t, "bob@example.com")

	// Only owners see the People page.
	b.get("/users").want(t, http.StatusForbidden)
	p := owner.get("/users").want(t, http.StatusOK)
	if p.Find("[data-testid=user-row]").Length() != 2 {
		t.Fatalf("People page rows:\n%s", p.Body)
	}
	id := fmt.Sprint(bob.ID)

	// End bob's sessions: his browser is signed out, his token still works.
	owner.post("/users/"+id+"/sessions/end", nil).want(t, http.StatusSeeOther)
	b.get("/environments").want(t, http.StatusSeeOther)
	a.api(http.MethodGet, "/api/v1/environments", bobTok, "").want(t, http.StatusOK)

	// Disable: no sign-in, no token.
	b.login(t, "bob@example.com")
	owner.post("/users/"+id+"/disable", nil).want(t, http.StatusSeeOther)
	b.get("/environments").want(t, http.StatusSeeOther)
	a.api(http.MethodGet, "/api/v1/environments", bobTok, "").want(t, http.StatusUnauthorized)
	b.get("/login")
	b.post("/login", url.Values{"email": {"bob@example.com"}, "password": {testPassword}}).want(t, http.StatusForbidden)
	owner.post("/users/"+id+"/enable", nil).want(t, http.StatusSeeOther)

	// Reset the password.
	owner.get("/users")
	p = owner.post("/users/"+id+"/password", url.Values{"password": {"short"}}).want(t, http.StatusUnprocessableEntity)
	if p.Text("[data-testid=error-password]") == "" {
		t.Error("no message beside a short password")
	}
	owner.post("/users/"+id+"/password", url.Values{"password": {"a brand new password"}}).want(t, http.StatusSeeOther)
	b.get("/login")
	b.post("/login", url.Values{"email": {"bob@example.com"}, "password": {testPassword}}).want(t, http.StatusUnauthorized)

	// The owner cannot lock themself out from here.
	ada, _ := a.st.UserByEmail(context.Background(), "ada@example.com")
	owner.post(fmt.Sprintf("/users/%d/disable", ada.ID), nil).want(t, http.StatusUnprocessableEntity)

	// A token with an expiry shows it; an expired one stops working.
	p = owner.post("/account/tokens", url.Values{"name": {"weekly"}, "expires_in": {"7"}}).want(t, http.StatusCreated)
	if got := p.Text("[data-testid=token-expires]"); !strings.Contains(got, time.Now().Add(7*24*time.Hour).Format("2006-01-02")) {
		t.Errorf("token expiry shown as %q", got)
	}
	owner.post("/account/tokens", url.Values{"name": {"x"}, "expires_in": {"1000"}}).want(t, http.StatusUnprocessableEntity)
}
