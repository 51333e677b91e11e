package web

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"pgdeck/views"
)

// handleError is echo's one error handler: it logs (5xx as error, 4xx as warn)
// and answers with JSON for the API, a fragment for htmx or an error page.
func (s *Server) handleError(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := "pgdeck could not complete the request. The error is in the server log."
	var he *echo.HTTPError
	var fe fieldsError
	if errors.As(err, &fe) {
		code, msg = http.StatusUnprocessableEntity, "validation failed"
	} else if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok {
			msg = m
		} else {
			msg = http.StatusText(code)
		}
	}
	req := c.Request()
	attrs := []any{"method", req.Method, "path", req.URL.Path, "status", code, "error", err}
	if code >= 500 {
		s.log.Error("request failed", attrs...)
	} else {
		s.log.Warn("request refused", attrs...)
	}

	if strings.HasPrefix(req.URL.Path, "/api/") {
		_ = c.JSON(code, apiError{Error: msg, Fields: fe.fields})
		return
	}
	if req.Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	if isHTMX(c) {
		_ = s.renderFragment(c, code, views.ErrorFragment(msg))
		return
	}
	p := s.page(c, http.StatusText(code), "")
	if rerr := s.render(c, code, p, views.ErrorPage(code, msg)); rerr != nil {
		s.log.Error("render error page", "error", rerr)
		_ = c.String(code, msg)
	}
}

// fieldsError is a 422 whose messages belong beside fields (the API's
// `fields`); the one error handler writes it.
type fieldsError struct{ fields map[string]string }

func (e fieldsError) Error() string { return fmt.Sprintf("validation failed: %v", e.fields) }

// invalidFields is the error of a request whose fields failed validation.
func invalidFields(fields map[string]string) error { return fieldsError{fields: fields} }

// apiError is the JSON body of every API error.
type apiError struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}
