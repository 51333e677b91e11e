package web

import (
	"errors"
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

// job loads the job named in the URL, or answers 404.
func (s *Server) job(c echo.Context) (store.Job, []store.JobLine, error) {
	id, err := strconv.ParseInt(c.Param("id"), 10, 64)
	if err != nil || id <= 0 {
		return store.Job{}, nil, echo.NewHTTPError(http.StatusNotFound, "There is no such job.")
	}
	ctx := c.Request().Context()
	j, err := s.store.JobByID(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return store.Job{}, nil, echo.NewHTTPError(http.StatusNotFound, "There is no such job.")
	}
	if err != nil {
		return store.Job{}, nil, err
	}
	log, err := s.store.JobLog(ctx, id)
	return j, log, err
}

// showJob shows one job and its log.
func (s *Server) showJob(c echo.Context) error {
	j, log, err := s.job(c)
	if err != nil {
		return err
	}
	p := s.page(c, "Job "+jobRef(j), "jobs")
	return s.render(c, http.StatusOK, p, views.JobPage(p, jobView(j, log)))
}
