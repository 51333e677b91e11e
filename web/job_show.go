package web

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
	"pgdeck/views"
)

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
