package web

import (
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

func jobRef(j store.Job) string { return "#" + strconv.FormatInt(j.ID, 10) }

// listJobs shows recent jobs.
func (s *Server) listJobs(c echo.Context) error {
	js, err := s.store.ListJobs(c.Request().Context(), "", 100)
	if err != nil {
		return err
	}
	vms := make([]views.Job, len(js))
	for i, j := range js {
		vms[i] = jobView(j, nil)
	}
	p := s.page(c, "Jobs", "jobs")
	return s.render(c, http.StatusOK, p, views.JobsPage(p, vms))
}
