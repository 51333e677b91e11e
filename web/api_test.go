package web_test

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

// envJSON is a create request body.
func envJSON(name, version, stage, plan string) string {
	b, _ := json.Marshal(map[string]string{"name": name, "odoo_version": version, "stage": stage, "plan": plan})
	return string(b)
}

func TestAPIAuthentication(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.user("ada@example.com", "owner")
	tok := a.token(owner)

	t.Run("no token", func(t *testing.T) {
		r := a.api(http.MethodGet, "/api/v1/environments", "", "").want(t, http.StatusUnauthorized)
		if r.str("error") == "" {
			t.Errorf("401 without an error message: %s", r.Raw)
		}
		if !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Bearer") {
			t.Errorf("WWW-Authenticate = %q", r.Header.Get("WWW-Authenticate"))
		}
	})

	t.Run("bad tokens", func(t *testing.T) {
		for _, bad := range []string{"pgd_not-a-real-token", tok + "x", strings.ToUpper(tok)} {
			r := a.api(http.MethodGet, "/api/v1/environments", bad, "").want(t, http.StatusUnauthorized)
			if r.str("error") == "" {
				t.Errorf("401 without an error message: %s", r.Raw)
			}
		}
	})

	t.Run("not a bearer token", func(t *testing.T) {
		for _, h := range []string{"Basic " + tok, tok, "Bearer ", "bearer" + tok} {
			r := a.apiRequest(http.MethodGet, "/api/v1/environments", http.Header{"Authorization": {h}}, "")
			r.want(t, http.StatusUnauthorized)
		}
	})

	t.Run("a session cookie is not an API credential", func(t *testing.T) {
		c := a.client()
		c.login(t, "ada@example.com")
		p := c.get("/api/v1/environments")
		if p.Code != http.StatusUnauthorized {
			t.Errorf("API with only a session cookie: status %d, want 401", p.Code)
		}
	})

	t.Run("owner token", func(t *testing.T) {
		r := a.api(http.MethodGet, "/api/v1/environments", tok, "").want(t, http.StatusOK)
		envs, ok := r.JSON["environments"].([]any)
		if !ok || len(envs) != 0 {
			t.Errorf("environments = %v, want an empty list", r.JSON["environments"])
		}
	})

	t.Run("revoked token", func(t *testing.T) {
		ts, err := a.st.ListAPITokens(context.Background(), owner.ID)
		if err != nil || len(ts) != 1 {
			t.Fatalf("ListAPITokens = %v, %v", ts, err)
		}
		if _, err := a.st.RevokeAPIToken(context.Background(), owner.ID, ts[0].ID); err != nil {
			t.Fatal(err)
		}
		r := a.api(http.MethodGet, "/api/v1/environments", tok, "").want(t, http.StatusUnauthorized)
		if r.str("error") == "" {
			t.Errorf("401 without an error message: %s", r.Raw)
		}
	})
}

func TestAPIEnvironments(t *testing.T) {
	t.Parallel()
	a := newApp(t)
	owner := a.user("ada@example.com", "owner")
	tok := a.token(owner)
	a.environment("taken")

	r := a.api(http.MethodPost, "/api/v1/environments", tok, envJSON("shop-prod", "17.0", "production", "enterprise")).want(t, http.StatusCreated)
	for key, want := range map[string]string{"name": "shop-prod", "odoo_version": "17.0", "stage": "production", "plan": "enterprise", "desired_state": "running"} {
		if got := r.str(key); got != want {
			t.Errorf("created %s = %q, want %q", key, got, want)
		}
	}
	if got := r.str("health.status"); got != "not_deployed" {
		t.Errorf("new environment health.status = %q, want not_deployed", got)
	}

	t.Run("list", func(t *testing.T) {
		r := a.api(http.MethodGet, "/api/v1/environments", tok, "").want(t, http.StatusOK)
		envs, _ := r.JSON["environments"].([]any)
		var names []string
		for _, e := range envs {
			names = append(names, e.(map[string]any)["name"].(string))
		}
		if strings.Join(names, ",") != "shop-prod,taken" {
			t.Errorf("listed %v, want [shop-prod taken]", names)
		}
	})

	t.Run("show", func(t *testing.T) {
		r := a.api(http.MethodGet, "/api/v1/environments/shop-prod", tok, "").want(t, http.StatusOK)
		if r.str("name") != "shop-prod" || r.str("odoo_version") != "17.0" {
			t.Errorf("show = %s", r.Raw)
		}
		h, ok := r.JSON["health"].(map[string]any)
		if !ok {
			t.Fatalf("no health object: %s", r.Raw)
		}
		if h["status"] != "not_deployed" {
			t.Errorf("health.status = %v, want not_deployed", h["status"])
		}
		for _, key := range []string{"reason", "checked_at"} {
			if _, ok := h[key]; !ok {
				t.Errorf("health has no %q: %v", key, h)
			}
		}
		if h["checked_at"] != nil {
			t.Errorf("health.checked_at = %v for a never-checked environment, want null", h["checked_at"])
		}
	})

	t.Run("unknown environment", func(t *testing.T) {
		for _, path := range []string{"/api/v1/environments/nope", "/api/v1/environments/NOT_A_NAME"} {
			r := a.api(http.MethodGet, path, tok, "").want(t, http.StatusNotFound)
			if !strings.Contains(r.str("error"), "There is no environment named") {
				t.Errorf("%s: error = %q", path, r.str("error"))
			}
		}
	})

	for _, tc := range badEnvironmentCases {
		t.Run("refuses "+tc.name, func(t *testing.T) {
			in := map[string]string{"name": "api-env", "odoo_version": "18.0", "stage": "staging", "plan": "pro"}
			in[tc.key] = tc.value
			body, _ := json.Marshal(in)
			envs, audits := a.countEnvironments(), a.countAudit()
			r := a.api(http.MethodPost, "/api/v1/environments", tok, string(body)).want(t, http.StatusUnprocessableEntity)
			if r.str("error") == "" {
				t.Errorf("422 without an error: %s", r.Raw)
			}
			fields, _ := r.JSON["fields"].(map[string]any)
			if got := fields[tc.field]; got != tc.message {
				t.Errorf("fields.%s = %v, want %q (body %s)", tc.field, got, tc.message, r.Raw)
			}
			if len(fields) != 1 {
				t.Errorf("fields = %v, want only %s", fields, tc.field)
			}
			if n := a.countEnvironments(); n != envs {
				t.Errorf("%d environments after a refused create, want %d", n, envs)
			}
			if n := a.countAudit(); n != audits {
				t.Errorf("a refused create wrote to the audit log (%d → %d)", audits, n)
			}
		})
	}

	t.Run("every bad field at once", func(t *testing.T) {
		r := a.api(http.MethodPost, "/api/v1/environments", tok, envJSON("A", "1.0", "qa", "free")).want(t, http.StatusUnprocessableEntity)
		fields, _ := r.JSON["fields"].(map[string]any)
		for _, f := range []string{"name", "odoo_version", "stage", "plan"} {
			if fields[f] == nil {
				t.Errorf("no message for %s: %s", f, r.Raw)
			}
		}
	})

	t.Run("malformed requests", func(t *testing.T) {
		n := a.countEnvironments()
		a.api(http.MethodPost, "/api/v1/environments", tok, `{"name": "x"`).want(t, http.StatusBadRequest)
		a.api(http.MethodPost, "/api/v1/environments", tok, `{"name": "extra-field", "odoo_version": "18.0", "stage": "staging", "plan": "pro", "admin": true}`).
			want(t, http.StatusBadRequest)
		h := http.Header{"Authorization": {"Bearer " + tok}, "Content-Type": {"text/plain"}}
		a.apiRequest(http.MethodPost, "/api/v1/environments", h, envJSON("plain-text", "18.0", "staging", "pro")).
			want(t, http.StatusUnsupportedMediaType)
		if got := a.countEnvironments(); got != n {
			t.Errorf("%d environments after malformed requests, want %d", got, n)
		}
	})

	t.Run("viewer token reads but cannot create", func(t *testing.T) {
		vtok := a.token(a.user("viewer@example.com", "viewer"))
		a.api(http.MethodGet, "/api/v1/environments", vtok, "").want(t, http.StatusOK)
		a.api(http.MethodGet, "/api/v1/environments/shop-prod", vtok, "").want(t, http.StatusOK)
		n := a.countEnvironments()
		r := a.api(http.MethodPost, "/api/v1/environments", vtok, envJSON("viewer-env", "18.0", "staging", "pro")).want(t, http.StatusForbidden)
		if r.str("error") == "" {
			t.Errorf("403 without an error: %s", r.Raw)
		}
		if got := a.countEnvironments(); got != n {
			t.Errorf("%d environments after a viewer's create, want %d", got, n)
		}
	})

	t.Run("create is audited", func(t *testing.T) {
		es, err := a.st.ListAudit(context.Background(), 100)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range es {
			if e.Action == "environment.create" && e.Target == "shop-prod" {
				if e.Actor != "ada@example.com" {
					t.Errorf("environment.create by %q, want ada@example.com", e.Actor)
				}
				return
			}
		}
		t.Errorf("no environment.create entry for shop-prod in %+v", es)
	})
}
