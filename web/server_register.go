package web

import (
	"bytes"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math"
	"mime"
	"net/http"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner"
	"pgdeck/provisioner/render"
	"pgdeck/store"
	"pgdeck/views"
)

// The register form is the one browser form besides the archive upload
// that carries files (the PEM files of a tcp endpoint): multipart, bounded
// by maxServerForm as a whole, its CSRF token read from the first part
// before the rest (see formUploadRoutes). It also takes a urlencoded body
// (the PEM pasted), whose token the csrf middleware checks as usual.

// maxServerForm bounds the register form: three PEM files and a few short
// fields.
const maxServerForm = 4*maxPEMBytes + 64<<10

// maxPEMBytes bounds each PEM file, as the provisioner does.
const maxPEMBytes = 64 << 10

// maxServerText bounds each text field of the register form.
const maxServerText = 1 << 10

// maxCapacityGB bounds a capacity typed in GB (a petabyte), so that it
// fits in bytes.
const maxCapacityGB = 1 << 20

// serverFormFields are the register form's text fields; pemFields its
// PEM files, each a file (name + "_file") or pasted text.
var (
	serverFormFields = []string{"name", "docker_host", "memory", "cpus", "storage"}
	pemFields        = []string{"tls_ca", "tls_cert", "tls_key"}
)

// registerServer is Register a server on the Servers page.
func (s *Server) registerServer(c echo.Context) error {
	if s.jobs == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Servers cannot be registered in this process.")
	}
	vals, pems, err := s.readServerForm(c)
	if err != nil {
		return err
	}
	in, form := serverFormInput(vals, pems)
	if len(form.Errors) == 0 {
		sv, err := s.jobs.RegisterServer(c.Request().Context(), in)
		if err == nil {
			s.audit(c, "server.register", sv.Name, registerDetail(sv))
			s.flash(c, "success", "Server "+sv.Name+" registered: "+views.ServerStatusLabel(serverStatus(sv.Status))+
				", "+capacityText(sv)+". New environments may now be placed on it.")
			return redirect(c, "/servers")
		}
		if form.Errors, err = serverInvalid(err, func(k string) string { return k }); err != nil {
			return err
		}
	}
	return s.renderServers(c, http.StatusUnprocessableEntity, form, "")
}

// readServerForm reads the register form: its text fields, and each PEM
// file from its file part or, when none was chosen, its text box.
func (s *Server) readServerForm(c echo.Context) (map[string]string, map[string][]byte, error) {
	r := c.Request()
	vals := map[string]string{}
	pems := map[string][]byte{}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	switch mt {
	case "multipart/form-data":
		mr, err := r.MultipartReader()
		if err != nil {
			return nil, nil, echo.NewHTTPError(http.StatusBadRequest, "The form is not a valid multipart body.")
		}
		if _, deferred := c.Get(csrfDeferredKey).(string); deferred {
			if err := s.checkUploadCSRF(c, mr); err != nil {
				return nil, nil, err
			}
		}
		files := map[string][]byte{}
		seen := map[string]bool{}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				break
			}
			if err != nil {
				return nil, nil, formReadError(err)
			}
			name := p.FormName()
			limit := int64(maxServerText)
			field, isFile := strings.CutSuffix(name, "_file")
			if isFile || isPEMField(name) {
				limit = maxPEMBytes
			}
			b, err := io.ReadAll(io.LimitReader(p, limit+1))
			if err != nil {
				return nil, nil, formReadError(err)
			}
			if seen[name] {
				return nil, nil, echo.NewHTTPError(http.StatusBadRequest, "The form sent "+quoteName(name)+" twice.")
			}
			seen[name] = true
			switch {
			case isFile && isPEMField(field):
				files[field] = b
			case isPEMField(name):
				pems[name] = b
			default:
				vals[name] = string(b) // unknown parts are left out below
			}
		}
		// A chosen file wins over the text box.
		for k, b := range files {
			if len(bytes.TrimSpace(b)) > 0 {
				pems[k] = b
			}
		}
	case "application/x-www-form-urlencoded":
		for _, k := range serverFormFields {
			vals[k] = r.PostFormValue(k)
		}
		for _, k := range pemFields {
			if v := r.PostFormValue(k); v != "" {
				pems[k] = []byte(v)
			}
		}
	default:
		return nil, nil, echo.NewHTTPError(http.StatusUnsupportedMediaType, "Send the form (multipart/form-data or application/x-www-form-urlencoded).")
	}
	out := make(map[string]string, len(serverFormFields))
	for _, k := range serverFormFields {
		out[k] = vals[k]
	}
	return out, pems, nil
}

func isPEMField(name string) bool {
	for _, k := range pemFields {
		if k == name {
			return true
		}
	}
	return false
}

// formReadError is a body that could not be read: too large (413) or cut
// short (400).
func formReadError(err error) error {
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return echo.NewHTTPError(http.StatusRequestEntityTooLarge, fmt.Sprintf("The form is too large: at most %s.", views.Size(mbe.Limit)))
	}
	return echo.NewHTTPError(http.StatusBadRequest, "The form could not be read: "+err.Error())
}

// serverFormInput checks the form's values and builds the registration,
// with the form to show again: what was typed (the key never) and a
// message per field that failed. Name and endpoint are checked here too,
// so that every message shows at once.
func serverFormInput(vals map[string]string, pems map[string][]byte) (provisioner.ServerInput, views.Form) {
	f := views.Form{Values: map[string]string{}, Errors: map[string]string{}}
	for _, k := range serverFormFields {
		v := strings.TrimSpace(vals[k])
		if msg := CheckText(v); msg != "" {
			f.Errors[k] = msg
			v = cleanText(v)
		}
		f.Values[k] = v
	}
	in := provisioner.ServerInput{Name: f.Values["name"], DockerHost: f.Values["docker_host"]}
	var msg string
	if in.MemoryBytes, msg = parseGB(f.Values["memory"]); msg != "" && f.Errors["memory"] == "" {
		f.Errors["memory"] = msg
	}
	if in.CPUs, msg = parseCPUs(f.Values["cpus"]); msg != "" && f.Errors["cpus"] == "" {
		f.Errors["cpus"] = msg
	}
	if in.StorageBytes, msg = parseGB(f.Values["storage"]); msg != "" && f.Errors["storage"] == "" {
		f.Errors["storage"] = msg
	}
	for _, k := range pemFields {
		b := pems[k]
		if msg := checkPEM(b); msg != "" {
			f.Errors[k] = msg
		} else if k != "tls_key" && len(b) > 0 {
			// Certificates are public: the form keeps them. The key is
			// never sent back.
			f.Values[k] = string(b)
		}
	}
	in.CA, in.Cert, in.Key = pems["tls_ca"], pems["tls_cert"], pems["tls_key"]
	if len(f.Errors) > 0 {
		if msg := provisioner.CheckServerName(in.Name); msg != "" && f.Errors["name"] == "" {
			f.Errors["name"] = msg
		}
		if msg := provisioner.CheckDockerHost(in.DockerHost); msg != "" && f.Errors["docker_host"] == "" {
			f.Errors["docker_host"] = msg
		}
	}
	return in, f
}

var (
	gbRE   = regexp.MustCompile(`^[0-9]{1,7}(\.[0-9]{1,3})?$`)
	cpusRE = regexp.MustCompile(`^[0-9]{1,6}$`)
)

// parseGB reads a size in GB (1024-based, as plans and PGDECK_CAPACITY):
// empty is 0, read from the engine.
func parseGB(s string) (int64, string) {
	if s == "" {
		return 0, ""
	}
	bad := "Enter a size in GB, e.g. 64 or 15.5, or leave it empty to read it from the engine."
	if !gbRE.MatchString(s) {
		return 0, bad
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, bad
	}
	if f > maxCapacityGB {
		return 0, fmt.Sprintf("Enter at most %d GB.", maxCapacityGB)
	}
	return int64(math.Round(f * float64(render.GiB))), ""
}

// parseCPUs reads a number of CPUs: empty is 0, read from the engine.
func parseCPUs(s string) (int, string) {
	if s == "" {
		return 0, ""
	}
	n, err := strconv.Atoi(s)
	if !cpusRE.MatchString(s) || err != nil {
		return 0, "Enter a whole number of CPUs, or leave it empty to read it from the engine."
	}
	return n, ""
}

// checkPEM returns a message when b, given, is not PEM text.
func checkPEM(b []byte) string {
	if len(b) == 0 {
		return ""
	}
	if len(b) > maxPEMBytes {
		return "This file is larger than 64 KiB: it is not a certificate or key."
	}
	notPEM := "This is not PEM: choose the file that starts with -----BEGIN."
	if !utf8.Valid(b) {
		return notPEM
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\n' && r != '\r' && r != '\t' || r == 0x7f {
			return notPEM
		}
	}
	if block, _ := pem.Decode(b); block == nil {
		return notPEM
	}
	return ""
}

// registerDetail is the audit entry's detail of a registration.
func registerDetail(sv store.Server) string {
	d := sv.DockerHost + ", " + capacityText(sv)
	if len(sv.TLSCA) > 0 {
		d += ", TLS"
	}
	return d
}

// capacityText says what a server holds, in words.
func capacityText(sv store.Server) string {
	var parts []string
	if sv.MemoryBytes > 0 {
		parts = append(parts, views.Size(sv.MemoryBytes)+" memory")
	}
	if sv.CPUs > 0 {
		parts = append(parts, views.CPUs(sv.CPUs))
	}
	if sv.StorageBytes > 0 {
		parts = append(parts, views.Size(sv.StorageBytes)+" storage")
	}
	if len(parts) == 0 {
		return "capacity not counted"
	}
	return strings.Join(parts, ", ")
}
