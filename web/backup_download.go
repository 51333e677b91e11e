package web

import (
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"time"

	"github.com/labstack/echo/v4"

	"pgdeck/store"
)

// downloadBackup streams a backup's archive (owners and admins; audited).
// http.ServeContent answers Range requests, so an interrupted download
// resumes; the write deadline moves on while bytes flow, so a large archive
// is not cut by the server's write timeout, but a client that stops reading
// is.
func (s *Server) downloadBackup(c echo.Context) error {
	e, err := s.environment(c)
	if err != nil {
		return err
	}
	b, err := s.backup(c, e)
	if err != nil {
		return err
	}
	return s.serveBackup(c, b)
}

func (s *Server) serveBackup(c echo.Context, b store.Backup) error {
	if b.State != store.BackupSucceeded {
		return echo.NewHTTPError(http.StatusConflict, "This backup is "+b.State+": there is no archive to download.")
	}
	if s.jobs == nil {
		return echo.NewHTTPError(http.StatusServiceUnavailable, "Backups are not available in this process.")
	}
	f, err := os.Open(s.jobs.BackupPath(b))
	if errors.Is(err, os.ErrNotExist) {
		return echo.NewHTTPError(http.StatusGone, "The archive "+b.File+" is no longer in the backup folder.")
	}
	if err != nil {
		return err
	}
	defer f.Close()
	// Each Range request (a resumed download) is recorded once.
	if c.Request().Header.Get("Range") == "" {
		s.audit(c, "backup.download", b.EnvName, b.File)
	} else {
		s.audit(c, "backup.download", b.EnvName, b.File+" ("+c.Request().Header.Get("Range")+")")
	}
	w := c.Response()
	w.Header().Set("Content-Disposition", `attachment; filename="`+filepath.Base(b.File)+`"`)
	w.Header().Set("Content-Type", "application/zip")
	w.Header().Set("Cache-Control", "private, no-store")
	if b.SHA256 != "" {
		w.Header().Set("ETag", `"`+b.SHA256+`"`)
		w.Header().Set("Digest", "sha-256-hex="+b.SHA256)
	}
	rc := http.NewResponseController(w.Writer)
	http.ServeContent(&deadlineWriter{ResponseWriter: w.Writer, rc: rc}, c.Request(), "", b.CreatedAt, f)
	return nil
}

// transferWindow is how long a download or upload may go without moving
// transferStep bytes before it is cut (a client that stalls).
const (
	transferWindow = 60 * time.Second
	transferStep   = 1 << 20
)

// deadlineWriter pushes the connection's write deadline on by
// transferWindow each time transferStep more bytes were written.
type deadlineWriter struct {
	http.ResponseWriter
	rc      *http.ResponseController
	pending int
}

func (d *deadlineWriter) Write(p []byte) (int, error) {
	if d.pending == 0 {
		_ = d.rc.SetWriteDeadline(time.Now().Add(transferWindow))
	}
	n, err := d.ResponseWriter.Write(p)
	d.pending += n
	if d.pending >= transferStep {
		d.pending = 0
	}
	return n, err
}

// Unwrap lets http.ResponseController reach the connection.
func (d *deadlineWriter) Unwrap() http.ResponseWriter { return d.ResponseWriter }
