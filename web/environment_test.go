package web_test

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// goodEnvironment is a form that creates an environment.
func goodEnvironment(name string) url.Values {
	return url.Values{"name": {name}, "odoo_version": {"18.0"}, "stage": {"staging"}, "plan": {"pro"}}
}

// with returns a copy of v with key set to value.
func with(v url.Values, key, value string) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	out.Set(key, value)
	return out
}

// badEnvironmentCases are inputs the server must refuse, with the field
// and the message shown beside it. "taken" already exists.
var badEnvironmentCases = []struct {
	name, key, value, field, message string
}{
	{"empty name", "name", "", "name", "Enter a name."},
	{"blank name", "name", "   ", "name", "Enter a name."},
	{"name too short", "name", "ab", "name", "Use at least 3 characters."},
	{"name too long", "name", strings.Repeat("a", 41), "name", "Use at most 40 characters."},
	{"upper-case name", "name", "Shop", "name", "Use only lower-case letters a–z, digits 0–9 and '-', not at the start or end."},
	{"underscore in name", "name", "my_shop", "name", "Use only lower-case letters a–z, digits 0–9 and '-', not at the start or end."},
	{"leading dash", "name", "-shop", "name", "Use only lower-case letters a–z, digits 0–9 and '-', not at the start or end."},
	{"trailing dash", "name", "shop-", "name", "Use only lower-case letters a–z, digits 0–9 and '-', not at the start or end."},
	{"dot in name", "name", "shop.prod", "name", "Use only lower-case letters a–z, digits 0–9 and '-', not at the start or end."},
	{"duplicate name", "name", "taken", "name", "An environment with this name already exists."},
	{"unknown odoo version", "odoo_version", "15.0", "odoo_version", "Choose one of 16.0, 17.0, 18.0, 19.0."},
	{"empty odoo version", "odoo_version", "", "odoo_version", "Choose one of 16.0, 17.0, 18.0, 19.0."},
	{"unknown stage", "stage", "qa", "stage", "Choose one of production, staging, development."},
	{"unknown plan", "plan", "gold", "plan", "Choose one of starter, pro, enterprise."},
}

func TestCreateEnvironmentForm(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	a.environment("taken")
	c := a.client()
	c.login(t, "ada@example.com")

	p := c.get("/environments/new").want(t, http.StatusOK)
	if p.Find("#environment-form").Length() != 1 {
		t.Fatal("no #environment-form on /environments/new")
	}

	for _, tc := range badEnvironmentCases {
		t.Run(tc.name, func(t *testing.T) {
			envs, audits := a.countEnvironments(), a.countAudit()
			p := c.post("/environments", with(goodEnvironment("shop"), tc.key, tc.value)).want(t, http.StatusUnprocessableEntity)
			if got := p.Text("[data-testid=error-" + tc.field + "]"); got != tc.message {
				t.Errorf("message beside %s = %q, want %q", tc.field, got, tc.message)
			}
			if n := p.Find(".field-error").Length(); n != 1 {
				t.Errorf("%d field messages, want 1 (beside %s)", n, tc.field)
			}
			if p.Find("#environment-form").Length() != 1 {
				t.Error("the form is not shown again")
			}
			if tc.key == "name" {
				if v, _ := p.Find("#f-name").Attr("value"); v != strings.TrimSpace(tc.value) {
					t.Errorf("name field keeps %q, want what was typed %q", v, tc.value)
				}
			}
			if n := a.countEnvironments(); n != envs {
				t.Errorf("%d environments after a refused create, want %d", n, envs)
			}
			if n := a.countAudit(); n != audits {
				t.Errorf("a refused create wrote to the audit log (%d → %d entries)", audits, n)
			}
		})
	}

	t.Run("missing CSRF token", func(t *testing.T) {
		n := a.countEnvironments()
		p := c.postRaw("/environments", goodEnvironment("no-token")).want(t, http.StatusForbidden)
		if !strings.Contains(p.Text("[data-testid=error-page]"), "CSRF") {
			t.Errorf("403 page does not explain the CSRF refusal: %q", p.Text("[data-testid=error-page]"))
		}
		if got := a.countEnvironments(); got != n {
			t.Errorf("%d environments, want %d", got, n)
		}
	})

	t.Run("wrong CSRF token", func(t *testing.T) {
		n := a.countEnvironments()
		c.postRaw("/environments", with(goodEnvironment("bad-token"), "_csrf", "not-the-token")).want(t, http.StatusForbidden)
		// Another session's token is just as wrong.
		other := a.client()
		other.login(t, "ada@example.com")
		c.postRaw("/environments", with(goodEnvironment("bad-token"), "_csrf", other.csrf)).want(t, http.StatusForbidden)
		if got := a.countEnvironments(); got != n {
			t.Errorf("%d environments, want %d", got, n)
		}
	})

	t.Run("good input", func(t *testing.T) {
		for _, name := range []string{"shop-prod", "abc", strings.Repeat("x", 40), "  padded  "} {
			n := a.countEnvironments()
			p := c.post("/environments", goodEnvironment(name)).want(t, http.StatusSeeOther)
			name = strings.TrimSpace(name)
			if p.Location() != "/environments/"+name {
				t.Errorf("create redirects to %q, want /environments/%s", p.Location(), name)
			}
			if got := a.countEnvironments(); got != n+1 {
				t.Errorf("%d environments after create, want %d", got, n+1)
			}
			list := c.get("/environments").want(t, http.StatusOK)
			row := list.Find(`[data-testid=environment-row][data-name="` + name + `"]`)
			if row.Length() != 1 {
				t.Fatalf("%s is not in the list", name)
			}
			if !strings.Contains(row.Text(), "18.0") || !strings.Contains(row.Text(), "staging") {
				t.Errorf("row for %s = %q, want version and stage", name, strings.Join(strings.Fields(row.Text()), " "))
			}
		}

		p := c.get("/environments/shop-prod").want(t, http.StatusOK)
		if got := p.Text("#environment-name"); got != "shop-prod" {
			t.Errorf("environment page heading = %q", got)
		}
		if got := p.Text("[data-testid=flash]"); got != "" && !strings.Contains(got, "shop-prod") {
			t.Errorf("flash = %q", got)
		}
	})

	t.Run("unknown environment", func(t *testing.T) {
		for _, path := range []string{"/environments/nope", "/environments/Not_A_Name", "/environments/nope/settings/database"} {
			p := c.get(path).want(t, http.StatusNotFound)
			if p.Find("[data-testid=error-page]").Length() != 1 {
				t.Errorf("%s: no error page", path)
			}
		}
	})
}

func TestViewerCannotChangeEnvironments(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("viewer@example.com", "viewer")
	a.environment("shop")
	c := a.client()
	c.login(t, "viewer@example.com")

	p := c.get("/environments").want(t, http.StatusOK)
	if p.Find(`[data-testid=environment-row][data-name="shop"]`).Length() != 1 {
		t.Error("the viewer does not see the environment")
	}
	if p.Find("#new-environment").Length() != 0 {
		t.Error("the viewer sees the New environment button")
	}
	if p.Find("[data-testid=nav-audit]").Length() != 0 {
		t.Error("the viewer sees the audit log link")
	}
	c.get("/environments/shop").want(t, http.StatusOK)
	c.get("/environments/new").want(t, http.StatusForbidden)

	n := a.countEnvironments()
	p = c.post("/environments", goodEnvironment("viewer-made")).want(t, http.StatusForbidden)
	if !strings.Contains(p.Text("[data-testid=error-page]"), "viewer") {
		t.Errorf("403 page = %q, want it to name the role", p.Text("[data-testid=error-page]"))
	}
	if got := a.countEnvironments(); got != n {
		t.Errorf("%d environments after a viewer's create, want %d", got, n)
	}
}

func TestAnonymousCannotCreateEnvironments(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	c := a.client()
	c.get("/login")
	c.post("/environments", goodEnvironment("anon")).want(t, http.StatusUnauthorized)
	if n := a.countEnvironments(); n != 0 {
		t.Errorf("%d environments, want 0", n)
	}
}

func TestAuditPage(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	a.user("ada@example.com", "owner")
	a.user("viewer@example.com", "viewer")

	owner := a.client()
	owner.login(t, "ada@example.com")
	owner.get("/environments/new")
	owner.post("/environments", goodEnvironment("audited")).want(t, http.StatusSeeOther)

	p := owner.get("/audit").want(t, http.StatusOK)
	rows := p.Find("[data-testid=audit-row]")
	found := map[string]string{}
	for i := range rows.Length() {
		cells := rows.Eq(i).Find("td")
		action := strings.TrimSpace(cells.Eq(2).Text())
		found[action] = strings.TrimSpace(cells.Eq(1).Text()) + " " + strings.TrimSpace(cells.Eq(3).Text())
	}
	if got, ok := found["login"]; !ok || !strings.Contains(got, "ada@example.com") {
		t.Errorf("no login entry by ada@example.com; rows: %v", found)
	}
	if got, ok := found["environment.create"]; !ok || got != "ada@example.com audited" {
		t.Errorf("environment.create entry = %q, want by ada@example.com on audited; rows: %v", got, found)
	}
	// Newest first.
	if first := strings.TrimSpace(rows.First().Find("td").Eq(2).Text()); first != "environment.create" {
		t.Errorf("first row is %q, want the newest (environment.create)", first)
	}
	if p := owner.get("/environments"); p.Find("[data-testid=nav-audit]").Length() != 1 {
		t.Error("the owner has no audit log link")
	}

	viewer := a.client()
	viewer.login(t, "viewer@example.com")
	viewer.get("/audit").want(t, http.StatusForbidden)
}
