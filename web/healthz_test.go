package web_test

import (
	"net/http"
	"testing"

	"pgdeck/store/storetest"
)

func TestHealthz(t *testing.T) {
	t.Parallel()
	t.Run("store up", func(t *testing.T) {
		a := newApp(t)
		r := a.api(http.MethodGet, "/healthz", "", "").want(t, http.StatusOK)
		if r.str("status") != "ok" || r.str("version") != "test" {
			t.Errorf("/healthz = %s", r.Raw)
		}
	})

	t.Run("store down", func(t *testing.T) {
		st := storetest.New(t)
		a := newAppOn(t, st)
		a.api(http.MethodGet, "/healthz", "", "").want(t, http.StatusOK)
		st.Close()
		r := a.api(http.MethodGet, "/healthz", "", "").want(t, http.StatusServiceUnavailable)
		if r.str("status") != "unavailable" || r.str("store") == "" {
			t.Errorf("/healthz with the store down = %s", r.Raw)
		}
	})
}
