package backup

import (
	"archive/zip"
	"bytes"
	"compress/flate"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

// deflateLevel is the compression of deflated entries: level 1 compresses
// a plain dump about as well as the default level (SQL text and COPY rows)
// at several times the speed (see BenchmarkDeflateLevels).
const deflateLevel = flate.BestSpeed

// progressEvery is how many archive bytes pass between progress calls.
const progressEvery = 64 << 10

// Source is what Write puts in an archive.
type Source struct {
	Format Format
	// Dump writes the dump (plain for FormatZip, custom for FormatDump),
	// e.g. Runtime.Stream of pg_dump.
	Dump func(ctx context.Context, w io.Writer) error
	// FilestoreDir is the database's filestore root on this host; missing
	// or "" is an empty filestore.
	FilestoreDir string
	// Config are the config/<name> entries.
	Config map[string][]byte
	// Manifest holds Odoo's keys and Pgdeck.{Environment,
	// PostgreSQLVersion, PostgreSQLMajor, PgdeckVersion, CreatedAt, Tables}
	// from the caller; Write fills Format, Files and the sizes.
	Manifest Manifest
}

// Write streams the archive to w: the dump goes from Dump straight into the
// zip entry through a pipe (never held in memory, never staged on disk), the
// filestore files are copied one by one; progress (may be nil) is called
// with the archive bytes written so far, every 64 KiB or so and at the end.
// It returns the manifest it wrote. A failing Dump, a filestore read error
// or ctx's end makes Write fail (the caller then deletes what it wrote).
func Write(ctx context.Context, w io.Writer, src Source, progress func(written int64)) (Manifest, error) {
	if src.Format != FormatZip && src.Format != FormatDump {
		return Manifest{}, fmt.Errorf("backup: unknown format %q", src.Format)
	}
	if src.Dump == nil {
		return Manifest{}, errors.New("backup: no dump")
	}
	m := src.Manifest
	info := Info{}
	if m.Pgdeck != nil {
		info = *m.Pgdeck
	}
	info.Format = src.Format
	info.Files = map[string]Part{}
	info.FilestoreFiles, info.FilestoreBytes = 0, 0
	m.Pgdeck = &info
	if m.OdooDump == "" {
		m.OdooDump = "1"
	}
	if info.CreatedAt.IsZero() {
		info.CreatedAt = time.Now().UTC()
	}
	modified := info.CreatedAt

	cw := &countWriter{w: w, ctx: ctx, progress: progress}
	zw := zip.NewWriter(cw)
	zw.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		return flate.NewWriter(out, deflateLevel)
	})
	fail := func(err error) (Manifest, error) {
		if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
			err = fmt.Errorf("%w (%v)", ctx.Err(), err)
		}
		return Manifest{}, err
	}

	// The dump, first (Odoo's zip_dir puts dump.sql first too).
	name := src.Format.DumpName()
	method := zip.Deflate
	if src.Format == FormatDump {
		// pg_dump's custom format is already compressed.
		method = zip.Store
	}
	part, err := writeDump(ctx, zw, name, method, modified, src.Dump)
	if err != nil {
		return fail(err)
	}
	info.Files[name] = part
	info.DumpBytes = part.Size

	if root := src.FilestoreDir; root != "" {
		// The root may be a symbolic link (a data_dir moved elsewhere);
		// links below it are refused.
		if r, err := filepath.EvalSymlinks(root); err == nil {
			root = r
		}
		err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err != nil {
				if p == root && errors.Is(err, fs.ErrNotExist) {
					return fs.SkipAll
				}
				return fmt.Errorf("backup: read filestore: %w", err)
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if d.IsDir() {
				return nil
			}
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			if !d.Type().IsRegular() {
				return fmt.Errorf("backup: filestore entry %s is not a regular file", p)
			}
			entry := FilestorePrefix + filepath.ToSlash(rel)
			part, err := writeFile(zw, entry, p, modified)
			if err != nil {
				return err
			}
			info.Files[entry] = part
			info.FilestoreFiles++
			info.FilestoreBytes += part.Size
			return nil
		})
		if err != nil {
			return fail(err)
		}
	}

	names := make([]string, 0, len(src.Config))
	for n := range src.Config {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		if n == "" || strings.ContainsAny(n, "/\\\x00") || n == "." || n == ".." {
			return fail(fmt.Errorf("backup: invalid config file name %q", n))
		}
		part, err := writeBytes(zw, ConfigPrefix+n, src.Config[n], zip.Deflate, modified)
		if err != nil {
			return fail(err)
		}
		info.Files[ConfigPrefix+n] = part
	}

	data, err := json.MarshalIndent(m, "", "    ")
	if err != nil {
		return fail(fmt.Errorf("backup: manifest: %w", err))
	}
	if _, err := writeBytes(zw, ManifestName, data, zip.Deflate, modified); err != nil {
		return fail(err)
	}
	if err := zw.Close(); err != nil {
		return fail(fmt.Errorf("backup: write archive: %w", err))
	}
	cw.report(true)
	return m, nil
}

// writeDump runs dump into the entry through a pipe, so that pg_dump's
// output is compressed as it comes and a slow reader slows pg_dump down.
func writeDump(ctx context.Context, zw *zip.Writer, name string, method uint16, modified time.Time, dump func(context.Context, io.Writer) error) (Part, error) {
	ew, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: modified})
	if err != nil {
		return Part{}, fmt.Errorf("backup: write %s: %w", name, err)
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := dump(ctx, pw)
		if err == nil {
			err = ctx.Err()
		}
		if err != nil {
			pw.CloseWithError(err)
		} else {
			pw.Close()
		}
		done <- err
	}()
	h := sha256.New()
	n, copyErr := io.Copy(io.MultiWriter(ew, h), pr)
	if copyErr != nil {
		// Stop the dump and let its goroutine end before returning.
		cancel()
		pr.CloseWithError(copyErr)
	}
	dumpErr := <-done
	if dumpErr != nil {
		return Part{}, fmt.Errorf("backup: dump: %w", dumpErr)
	}
	if copyErr != nil {
		return Part{}, fmt.Errorf("backup: write %s: %w", name, copyErr)
	}
	return Part{Size: n, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// writeFile copies one filestore file into the archive, stored as it is
// when it is already compressed (images, archives), deflated otherwise.
func writeFile(zw *zip.Writer, name, p string, modified time.Time) (Part, error) {
	f, err := os.Open(p)
	if err != nil {
		return Part{}, fmt.Errorf("backup: read filestore: %w", err)
	}
	defer f.Close()
	head := make([]byte, 512)
	n, err := io.ReadFull(f, head)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return Part{}, fmt.Errorf("backup: read filestore file %s: %w", p, err)
	}
	head = head[:n]
	method := zip.Deflate
	if compressed(path.Ext(p), head) {
		method = zip.Store
	}
	if fi, err := f.Stat(); err == nil {
		modified = fi.ModTime()
	}
	ew, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: modified})
	if err != nil {
		return Part{}, fmt.Errorf("backup: write %s: %w", name, err)
	}
	h := sha256.New()
	mw := io.MultiWriter(ew, h)
	if _, err := mw.Write(head); err != nil {
		return Part{}, fmt.Errorf("backup: write %s: %w", name, err)
	}
	m, err := io.Copy(mw, readerOnly{f})
	if err != nil {
		return Part{}, fmt.Errorf("backup: copy filestore file %s: %w", p, err)
	}
	return Part{Size: int64(n) + m, SHA256: hex.EncodeToString(h.Sum(nil))}, nil
}

// readerOnly hides os.File's WriterTo/ReaderFrom so io.Copy uses a buffer.
type readerOnly struct{ io.Reader }

func writeBytes(zw *zip.Writer, name string, data []byte, method uint16, modified time.Time) (Part, error) {
	ew, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: method, Modified: modified})
	if err != nil {
		return Part{}, fmt.Errorf("backup: write %s: %w", name, err)
	}
	if _, err := ew.Write(data); err != nil {
		return Part{}, fmt.Errorf("backup: write %s: %w", name, err)
	}
	sum := sha256.Sum256(data)
	return Part{Size: int64(len(data)), SHA256: hex.EncodeToString(sum[:])}, nil
}

// compressedExt are extensions of files that deflate cannot shrink.
var compressedExt = map[string]bool{
	".png": true, ".jpg": true, ".jpeg": true, ".gif": true, ".webp": true,
	".zip": true, ".gz": true, ".tgz": true, ".bz2": true, ".xz": true, ".zst": true, ".7z": true,
	".mp4": true, ".mp3": true, ".woff": true, ".woff2": true, ".docx": true, ".xlsx": true, ".odt": true,
}

// compressedMagic are the first bytes of formats that are compressed
// already; Odoo's filestore names have no extension.
var compressedMagic = [][]byte{
	{0x89, 'P', 'N', 'G'},    // PNG
	{0xff, 0xd8, 0xff},       // JPEG
	[]byte("GIF8"),           // GIF
	{'P', 'K', 0x03, 0x04},   // zip, docx, xlsx, odt
	{0x1f, 0x8b},             // gzip
	[]byte("BZh"),            // bzip2
	{0xfd, '7', 'z', 'X'},    // xz
	{0x28, 0xb5, 0x2f, 0xfd}, // zstd
	{'7', 'z', 0xbc, 0xaf},   // 7z
	[]byte("wOF2"),           // woff2
	[]byte("wOFF"),           // woff
}

func compressed(ext string, head []byte) bool {
	if compressedExt[strings.ToLower(ext)] {
		return true
	}
	for _, m := range compressedMagic {
		if bytes.HasPrefix(head, m) {
			return true
		}
	}
	// RIFF....WEBP, and ISO media (mp4, heic): ....ftyp
	if len(head) >= 12 && string(head[:4]) == "RIFF" && string(head[8:12]) == "WEBP" {
		return true
	}
	return len(head) >= 8 && string(head[4:8]) == "ftyp"
}

// countWriter counts the archive's bytes, reports progress and stops the
// write when ctx ends.
type countWriter struct {
	w        io.Writer
	ctx      context.Context
	progress func(int64)
	n, last  int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.report(false)
	return n, err
}

func (c *countWriter) report(final bool) {
	if c.progress != nil && (c.n-c.last >= progressEvery || final && c.n != c.last) {
		c.last = c.n
		c.progress(c.n)
	}
}
