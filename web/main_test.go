package web_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/PuerkitoBio/goquery"

	"pgdeck/store"
	"pgdeck/store/storetest"
	"pgdeck/web"
)

// TestMain runs the package's tests against one embedded control-plane
// cluster, stopped when they end.
func TestMain(m *testing.M) { storetest.Main(m) }

// testPassword is every test account's password.
const testPassword = "correct horse battery"

// base is the origin the test client's cookies belong to.
var base = &url.URL{Scheme: "http", Host: "pgdeck.test", Path: "/"}

// app is a pgdeck web server on a fresh store.
type app struct {
	t   *testing.T
	st  *store.Store
	h   http.Handler
	srv *web.Server
}

// newApp builds the web layer on a fresh, migrated store.
func newApp(t *testing.T) *app {
	t.Helper()
	st := storetest.New(t)
	return newAppOn(t, st)
}

func newAppOn(t *testing.T, st *store.Store) *app {
	t.Helper()
	return newAppWith(t, st, func(*web.Deps) {})
}

// newAppWith builds the web layer on st with deps changed by change.
func newAppWith(t *testing.T, st *store.Store, change func(*web.Deps)) *app {
	t.Helper()
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelError}))
	d := testDeps(st, log)
	change(&d)
	srv := web.New(d)
	return &app{t: t, st: st, h: srv.Handler(), srv: srv}
}

// testDeps are the web layer's dependencies in tests: pgdeck is reached at
// base's host.
func testDeps(st *store.Store, log *slog.Logger) web.Deps {
	return web.Deps{Store: st, Log: log, Version: "test", PublicURL: &url.URL{Scheme: base.Scheme, Host: base.Host}}
}

// user creates an account with testPassword.
func (a *app) user(email, role string) store.User {
	a.t.Helper()
	hash, err := web.HashPassword(testPassword)
	if err != nil {
		a.t.Fatal(err)
	}
	u, err := a.st.CreateUser(context.Background(), email, hash, role)
	if err != nil {
		a.t.Fatal(err)
	}
	return u
}

// token creates an API token for u and returns its secret.
func (a *app) token(u store.User) string {
	a.t.Helper()
	tok, prefix := web.NewAPIToken()
	if _, err := a.st.CreateAPIToken(context.Background(), u.ID, "test", prefix, web.HashAPIToken(tok), nil); err != nil {
		a.t.Fatal(err)
	}
	return tok
}

// environment creates an environment directly in the store.
func (a *app) environment(name string) store.Environment {
	a.t.Helper()
	e, err := a.st.CreateEnvironment(context.Background(), store.Environment{Name: name, OdooVersion: "18.0", Stage: "staging", Plan: "starter"})
	if err != nil {
		a.t.Fatal(err)
	}
	return e
}

// countEnvironments is how many environments the store holds.
func (a *app) countEnvironments() int {
	a.t.Helper()
	es, err := a.st.ListEnvironments(context.Background())
	if err != nil {
		a.t.Fatal(err)
	}
	return len(es)
}

// countAudit is how many audit entries the store holds.
func (a *app) countAudit() int {
	a.t.Helper()
	var n int
	if err := a.st.Pool.QueryRow(context.Background(), "SELECT count(*) FROM audit_log").Scan(&n); err != nil {
		a.t.Fatal(err)
	}
	return n
}

// client is a browser: it keeps cookies, comes from one address and
// remembers the CSRF token of the last page it read.
type client struct {
	a          *app
	jar        *cookiejar.Jar
	remoteAddr string
	header     http.Header
	csrf       string
}

// client returns a browser without cookies coming from 192.0.2.10.
func (a *app) client() *client {
	return a.clientFrom("192.0.2.10")
}

// clientFrom returns a browser without cookies coming from ip.
func (a *app) clientFrom(ip string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		a.t.Fatal(err)
	}
	return &client{a: a, jar: jar, remoteAddr: ip + ":40000", header: http.Header{}}
}

// page is one answer as the browser sees it.
type page struct {
	t      *testing.T
	Code   int
	Header http.Header
	Body   string
	Cookie []*http.Cookie
	doc    *goquery.Document
}

// Doc parses the body as HTML.
func (p *page) Doc() *goquery.Document {
	p.t.Helper()
	if p.doc == nil {
		d, err := goquery.NewDocumentFromReader(strings.NewReader(p.Body))
		if err != nil {
			p.t.Errorf("parse HTML: %v", err)
			d, _ = goquery.NewDocumentFromReader(strings.NewReader(""))
		}
		p.doc = d
	}
	return p.doc
}

// Find returns the elements matching selector.
func (p *page) Find(selector string) *goquery.Selection {
	p.t.Helper()
	return p.Doc().Find(selector)
}

// Text returns the trimmed text of the elements matching selector.
func (p *page) Text(selector string) string {
	p.t.Helper()
	return strings.TrimSpace(p.Find(selector).Text())
}

// Location is the redirect target.
func (p *page) Location() string { return p.Header.Get("Location") }

// sessionCookie returns the session cookie the answer set, if any.
func (p *page) sessionCookie() *http.Cookie {
	for _, c := range p.Cookie {
		if c.Name == "pgdeck_session" {
			return c
		}
	}
	return nil
}

// want fails the test unless the answer has the status code.
func (p *page) want(t testing.TB, code int) *page {
	t.Helper()
	if p.Code != code {
		body := p.Body
		if len(body) > 2000 {
			body = body[:2000] + "…"
		}
		t.Fatalf("status %d, want %d; Location %q; body:\n%s", p.Code, code, p.Location(), body)
	}
	return p
}

func (c *client) do(req *http.Request) *page {
	c.a.t.Helper()
	req.RemoteAddr = c.remoteAddr
	for k, vs := range c.header {
		req.Header[k] = vs
	}
	for _, ck := range c.jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	rec := httptest.NewRecorder()
	c.a.h.ServeHTTP(rec, req)
	res := rec.Result()
	body, _ := io.ReadAll(res.Body)
	c.jar.SetCookies(req.URL, res.Cookies())
	p := &page{t: c.a.t, Code: res.StatusCode, Header: res.Header, Body: string(body), Cookie: res.Cookies()}
	if strings.HasPrefix(res.Header.Get("Content-Type"), "text/html") {
		if v, ok := p.Find(`input[name="_csrf"]`).First().Attr("value"); ok && v != "" {
			c.csrf = v
		}
	}
	return p
}

// get fetches a page.
func (c *client) get(path string) *page {
	c.a.t.Helper()
	return c.do(httptest.NewRequest(http.MethodGet, base.ResolveReference(&url.URL{Path: path}).String(), nil))
}

// post submits a form with the CSRF token of the last page read.
func (c *client) post(path string, form url.Values) *page {
	c.a.t.Helper()
	f := url.Values{}
	for k, v := range form {
		f[k] = v
	}
	f.Set("_csrf", c.csrf)
	return c.postRaw(path, f)
}

// postRaw submits a form as it is (no CSRF token added).
func (c *client) postRaw(path string, form url.Values) *page {
	c.a.t.Helper()
	req := httptest.NewRequest(http.MethodPost, base.ResolveReference(&url.URL{Path: path}).String(), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return c.do(req)
}

// login signs the client in, fails the test unless it works, and returns
// the login answer (the redirect).
func (c *client) login(t testing.TB, email string) *page {
	t.Helper()
	c.get("/login").want(t, http.StatusOK)
	p := c.post("/login", url.Values{"email": {email}, "password": {testPassword}}).want(t, http.StatusSeeOther)
	if p.Location() != "/environments" {
		t.Fatalf("login redirects to %q, want /environments", p.Location())
	}
	// Follow the redirect as a browser does: signing in renews the CSRF token.
	c.get(p.Location()).want(t, http.StatusOK)
	return p
}

// apiAnswer is a JSON API answer.
type apiAnswer struct {
	Code   int
	Header http.Header
	Raw    string
	JSON   map[string]any
}

// api calls the JSON API with a bearer token ("" sends none) and a JSON body ("" sends none).
func (a *app) api(method, path, token, body string) apiAnswer {
	a.t.Helper()
	h := http.Header{}
	if body != "" {
		h.Set("Content-Type", "application/json")
	}
	if token != "" {
		h.Set("Authorization", "Bearer "+token)
	}
	return a.apiRequest(method, path, h, body)
}

// apiRequest calls the JSON API with the given headers and body.
func (a *app) apiRequest(method, path string, header http.Header, body string) apiAnswer {
	a.t.Helper()
	var r io.Reader
	if body != "" {
		r = strings.NewReader(body)
	}
	req := httptest.NewRequest(method, base.ResolveReference(&url.URL{Path: path}).String(), r)
	req.RemoteAddr = "192.0.2.20:40000"
	for k, vs := range header {
		req.Header[k] = vs
	}
	rec := httptest.NewRecorder()
	a.h.ServeHTTP(rec, req)
	ans := apiAnswer{Code: rec.Code, Header: rec.Header(), Raw: rec.Body.String()}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		a.t.Fatalf("%s %s: Content-Type %q, want JSON; body %s", method, path, ct, ans.Raw)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &ans.JSON); err != nil {
		a.t.Fatalf("%s %s: body is not a JSON object: %v: %s", method, path, err, ans.Raw)
	}
	return ans
}

// want fails the test unless the answer has the status code.
func (r apiAnswer) want(t *testing.T, code int) apiAnswer {
	t.Helper()
	if r.Code != code {
		t.Fatalf("status %d, want %d; body %s", r.Code, code, r.Raw)
	}
	return r
}

// str returns a string at a dotted path of the JSON answer ("" if absent).
func (r apiAnswer) str(path string) string {
	var v any = r.JSON
	for _, k := range strings.Split(path, ".") {
		m, ok := v.(map[string]any)
		if !ok {
			return ""
		}
		v = m[k]
	}
	s, _ := v.(string)
	return s
}
