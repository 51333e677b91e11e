package web

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"os"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/labstack/echo/v4"

	"pgdeck/provisioner/backup"
	"pgdeck/store"
	"pgdeck/views"
)

// Uploads of archives are the one place pgdeck takes a file. They are
// streamed to a file in the environment's backup folder as they come, never
// held in memory and never given to a form parser: the page's form is read
// part by part (its CSRF token first, then the file), the API takes the
// archive as the body or as the multipart field "file". The size limit
// (PGDECK_BACKUP_UPLOAD_LIMIT) is enforced while reading, and the read
// deadline moves on only while bytes flow.

// uploadRoutes are the routes whose bodies limitBody leaves to the handler
// and whose CSRF token the handler reads from the body's first part.
var uploadRoutes = map[string]bool{
	"/environments/:name/backups/import":        true,
	"/api/v1/environments/:name/backups/import": true,
}

// formUploadRoutes are the forms that carry small files (the register
// form's PEM files), with the bound of each whole body. Like an upload,
// their CSRF token is read by the handler from the body's first part.
var formUploadRoutes = map[string]int64{
	"/servers": maxServerForm,
}

// takesFiles reports whether the route takes multipart bodies, whose CSRF
// token its handler reads from the first part.
func takesFiles(path string) bool {
	_, form := formUploadRoutes[path]
	return uploadRoutes[path] || form
}

// csrfDeferredKey holds, for an upload, the CSRF token the handler must
// find in the body's first part.
const csrfDeferredKey = "csrf_deferred"

// importUpload is Upload and import on the Backups tab.
func (s *Server) importUpload(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.receiveUpload(c, e, true)
	var refusal *backup.Error
	if errors.As(err, &refusal) {
		return s.renderBackupsTab(c, e, http.StatusUnprocessableEntity, func(t *views.BackupsTab) {
			t.Import = views.Form{Errors: map[string]string{"file": sentence(refusal.Reason)}}
		})
	}
	var fe fieldsError
	if errors.As(err, &fe) {
		return s.renderBackupsTab(c, e, http.StatusUnprocessableEntity, func(t *views.BackupsTab) {
			t.Import = views.Form{Errors: fe.fields}
		})
	}
	if err != nil {
		return err
	}
	s.flash(c, "info", "Imported "+b.File+" ("+views.Bytes(b.SizeBytes)+"). Restore it from the list.")
	return redirect(c, "/environments/"+e.Name+"/backups")
}

// apiImportBackup answers POST /api/v1/environments/{name}/backups/import
// with the imported backup (201).
func (s *Server) apiImportBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.receiveUpload(c, e, false)
	var refusal *backup.Error
	if errors.As(err, &refusal) {
		return invalidFields(map[string]string{"file": refusal.Reason})
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusCreated, toAPIBackup(b))
}

// receiveUpload streams the upload into a file and imports it. With page,
// the body must be multipart with the CSRF token first.
func (s *Server) receiveUpload(c echo.Context, e store.Environment, page bool) (store.Backup, error) {
	if s.jobs == nil {
		return store.Backup{}, echo.NewHTTPError(http.StatusServiceUnavailable, "Backups are not available in this process.")
	}
	r := c.Request()
	if r.ContentLength > s.uploadLimit {
		return store.Backup{}, echo.NewHTTPError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("The archive is larger than the upload limit, %s (PGDECK_BACKUP_UPLOAD_LIMIT).", views.Bytes(s.uploadLimit)))
	}
	rc := http.NewResponseController(c.Response().Writer)
	body := &deadlineReader{r: r.Body, rc: rc}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	var src io.Reader
	switch {
	case mt == "multipart/form-data":
		r.Body = io.NopCloser(body)
		mr, err := r.MultipartReader()
		if err != nil {
			return store.Backup{}, echo.NewHTTPError(http.StatusBadRequest, "The upload is not a valid multipart body: "+err.Error())
		}
		if page {
			if err := s.checkUploadCSRF(c, mr); err != nil {
				return store.Backup{}, err
			}
		}
		for {
			p, err := mr.NextPart()
			if err == io.EOF {
				return store.Backup{}, invalidFields(map[string]string{"file": "Choose an archive (.zip) to upload."})
			}
			if err != nil {
				return store.Backup{}, echo.NewHTTPError(http.StatusBadRequest, "The upload could not be read: "+err.Error())
			}
			if p.FormName() == "file" {
				src = p
				break
			}
		}
	case page:
		return store.Backup{}, echo.NewHTTPError(http.StatusUnsupportedMediaType, "Send the archive with the form (multipart/form-data).")
	default:
		src = body
	}
	f, err := s.jobs.UploadFile(e.Name)
	if err != nil {
		return store.Backup{}, err
	}
	tmp := f.Name()
	defer os.Remove(tmp) // gone once imported (renamed) or refused
	n, err := io.Copy(f, io.LimitReader(src, s.uploadLimit+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	switch {
	case err != nil:
		return store.Backup{}, echo.NewHTTPError(http.StatusBadRequest, "The upload was cut short: "+err.Error())
	case n > s.uploadLimit:
		return store.Backup{}, echo.NewHTTPError(http.StatusRequestEntityTooLarge,
			fmt.Sprintf("The archive is larger than the upload limit, %s (PGDECK_BACKUP_UPLOAD_LIMIT).", views.Bytes(s.uploadLimit)))
	case n == 0:
		return store.Backup{}, invalidFields(map[string]string{"file": "The uploaded file is empty."})
	}
	u, _ := currentUser(c)
	b, err := s.jobs.ImportBackup(r.Context(), e, tmp, true, u.Email)
	if err != nil {
		return store.Backup{}, err
	}
	s.audit(c, "backup.import", e.Name, fmt.Sprintf("%s (%d bytes, uploaded)", b.File, b.SizeBytes))
	return b, nil
}

// checkUploadCSRF reads the form's first part, which must be the CSRF
// token, before a byte of the file is read.
func (s *Server) checkUploadCSRF(c echo.Context, mr *multipart.Reader) error {
	want, _ := c.Get(csrfDeferredKey).(string)
	forbidden := echo.NewHTTPError(http.StatusForbidden, "The form has expired or did not come from pgdeck (missing or wrong CSRF token). Reload the page and try again.")
	p, err := mr.NextPart()
	if err != nil || p.FormName() != "_csrf" {
		return forbidden
	}
	got, err := io.ReadAll(io.LimitReader(p, 256))
	if err != nil || want == "" || subtle.ConstantTimeCompare([]byte(want), got) != 1 {
		return forbidden
	}
	return nil
}

// importServerFile imports an archive already in the import folder.
func (s *Server) importServerFile(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	name := strings.TrimSpace(c.Request().PostFormValue("server_file"))
	b, err := s.importFromFolder(c, e, name)
	var refusal *backup.Error
	if errors.As(err, &refusal) {
		return s.renderBackupsTab(c, e, http.StatusUnprocessableEntity, func(t *views.BackupsTab) {
			t.Import = views.Form{Values: map[string]string{"server_file": name}, Errors: map[string]string{"server_file": sentence(refusal.Reason)}}
		})
	}
	if err != nil {
		return err
	}
	s.flash(c, "info", "Imported "+name+" as "+b.File+". Restore it from the list.")
	return redirect(c, "/environments/"+e.Name+"/backups")
}

func (s *Server) importFromFolder(c echo.Context, e store.Environment, name string) (store.Backup, error) {
	if s.jobs == nil {
		return store.Backup{}, echo.NewHTTPError(http.StatusServiceUnavailable, "Backups are not available in this process.")
	}
	if name == "" {
		return store.Backup{}, &backup.Error{Reason: "Choose a file."}
	}
	path, err := s.jobs.ImportFilePath(name)
	if err != nil {
		return store.Backup{}, err
	}
	u, _ := currentUser(c)
	b, err := s.jobs.ImportBackup(c.Request().Context(), e, path, false, u.Email)
	if err != nil {
		return store.Backup{}, err
	}
	s.audit(c, "backup.import", e.Name, b.File+" (from "+name+" on the server)")
	return b, nil
}

// sentence writes an archive's refusal (a clause such as "the file is not
// a zip archive (…)", made to follow a colon in logs and job errors) as the
// sentence a form shows under its field.
func sentence(reason string) string {
	reason = strings.TrimSpace(reason)
	if reason == "" {
		return reason
	}
	r, size := utf8.DecodeRuneInString(reason)
	reason = string(unicode.ToUpper(r)) + reason[size:]
	if !strings.HasSuffix(reason, ".") && !strings.HasSuffix(reason, "?") {
		reason += "."
	}
	return reason
}

// deadlineReader pushes the connection's read deadline on by
// transferWindow each time transferStep more bytes were read.
type deadlineReader struct {
	r       io.Reader
	rc      *http.ResponseController
	pending int
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if d.pending == 0 {
		_ = d.rc.SetReadDeadline(time.Now().Add(transferWindow))
	}
	n, err := d.r.Read(p)
	d.pending += n
	if d.pending >= transferStep {
		d.pending = 0
	}
	return n, err
}
