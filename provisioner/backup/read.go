package backup

import (
	"archive/zip"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"strings"
	"syscall"
)

// Limits bound what Open and the readers accept (zip bombs, huge archives).
// A zero field takes its default.
type Limits struct {
	// MaxEntries is the most entries an archive may hold; default 1,000,000.
	MaxEntries int
	// MaxTotal is the most uncompressed bytes, all entries together;
	// default 256 GiB.
	MaxTotal int64
	// MaxRatio is the most an entry may expand (uncompressed/compressed);
	// default 200. Entries under 1 MiB uncompressed are exempt.
	MaxRatio int64
}

// The default limits.
const (
	DefaultMaxEntries = 1_000_000
	DefaultMaxTotal   = 256 << 30
	DefaultMaxRatio   = 200
	// ratioExempt is the uncompressed size under which an entry's ratio is
	// not checked (a file of zeros compresses 1000:1 and harms no one).
	ratioExempt = 1 << 20
	// MaxConfigSize bounds one config/ entry.
	MaxConfigSize = 1 << 20
	// maxManifestSize bounds manifest.json.
	maxManifestSize = 64 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxTotal <= 0 {
		l.MaxTotal = DefaultMaxTotal
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	return l
}

// Archive is an opened, structurally checked archive.
type Archive struct {
	f        *os.File
	zr       *zip.Reader
	size     int64
	lim      Limits
	manifest Manifest
	format   Format
	dump     *zip.File
	entries  map[string]*zip.File // regular entries by name
}

// Open checks the archive's structure without reading entry data: a zip;
// every name relative and clean (no "..", no absolute path, no backslash,
// no NUL), every entry a regular file or folder, no name twice; entries,
// total size and expansion within lim (declared sizes: the readers enforce
// the actual ones); manifest.json present with Odoo's keys; exactly one of
// dump.sql and dump.dump; nothing else than filestore/ and config/ entries
// beside them. All refusals are *Error.
func Open(path string, lim Limits) (*Archive, error) {
	lim = lim.withDefaults()
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("backup: open archive: %w", err)
	}
	a, err := open(f, lim)
	if err != nil {
		f.Close()
		return nil, err
	}
	return a, nil
}

func open(f *os.File, lim Limits) (*Archive, error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("backup: open archive: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, refusef("the archive is not a regular file")
	}
	zr, err := zip.NewReader(f, fi.Size())
	if err != nil && !(errors.Is(err, zip.ErrInsecurePath) && zr != nil) {
		return nil, refusef("the file is not a zip archive (%v)", err)
	}
	a := &Archive{f: f, zr: zr, size: fi.Size(), lim: lim, entries: map[string]*zip.File{}}
	if len(zr.File) > lim.MaxEntries {
		return nil, refusef("the archive holds %d entries, more than the %d allowed", len(zr.File), lim.MaxEntries)
	}
	seen := map[string]bool{}
	var total uint64
	for _, zf := range zr.File {
		name := zf.Name
		if err := checkName(name); err != nil {
			return nil, err
		}
		key := strings.TrimSuffix(name, "/")
		if seen[key] {
			return nil, refusef("the archive holds %q twice", key)
		}
		seen[key] = true
		mode := zf.Mode()
		isDir := strings.HasSuffix(name, "/")
		switch {
		case mode&fs.ModeSymlink != 0:
			return nil, refusef("the archive holds a symbolic link: %s", name)
		case isDir && !mode.IsDir(), !isDir && mode.Type() != 0:
			return nil, refusef("the archive holds an entry that is not a regular file: %s", name)
		}
		if isDir {
			if zf.UncompressedSize64 != 0 {
				return nil, refusef("the archive holds a folder with data: %s", name)
			}
			continue
		}
		switch {
		case name == ManifestName, name == PlainDumpName, name == CustomDumpName:
		case strings.HasPrefix(name, FilestorePrefix) && len(name) > len(FilestorePrefix):
		case strings.HasPrefix(name, ConfigPrefix) && !strings.Contains(name[len(ConfigPrefix):], "/") && len(name) > len(ConfigPrefix):
		default:
			return nil, refusef("the archive holds an unexpected entry: %s", name)
		}
		if zf.Method != zip.Store && zf.Method != zip.Deflate {
			return nil, refusef("the archive's entry %s uses an unsupported compression method %d", name, zf.Method)
		}
		total += zf.UncompressedSize64
		if total > uint64(lim.MaxTotal) {
			return nil, refusef("the archive expands to more than %d bytes, the most allowed", lim.MaxTotal)
		}
		if zf.UncompressedSize64 >= ratioExempt {
			c := zf.CompressedSize64
			if c == 0 || zf.UncompressedSize64/c > uint64(lim.MaxRatio) {
				return nil, refusef("the archive's entry %s expands from %d to %d bytes, more than %d times (a zip bomb?)", name, c, zf.UncompressedSize64, lim.MaxRatio)
			}
		}
		a.entries[name] = zf
	}
	mf := a.entries[ManifestName]
	if mf == nil {
		return nil, refusef("the archive holds no manifest.json")
	}
	plain, custom := a.entries[PlainDumpName], a.entries[CustomDumpName]
	switch {
	case plain == nil && custom == nil:
		return nil, refusef("the archive holds no dump (dump.sql or dump.dump)")
	case plain != nil && custom != nil:
		return nil, refusef("the archive holds both dump.sql and dump.dump")
	case plain != nil:
		a.format, a.dump = FormatZip, plain
	default:
		a.format, a.dump = FormatDump, custom
	}
	data, err := a.readSmall(mf, maxManifestSize)
	if err != nil {
		return nil, err
	}
	if err := json.Unmarshal(data, &a.manifest); err != nil {
		return nil, refusef("the archive's manifest.json is not valid: %v", err)
	}
	m := a.manifest
	for _, k := range []struct{ key, v string }{
		{"odoo_dump", m.OdooDump}, {"db_name", m.DBName}, {"major_version", m.MajorVersion}, {"pg_version", m.PGVersion},
	} {
		if strings.TrimSpace(k.v) == "" {
			return nil, refusef("the archive's manifest.json has no %s", k.key)
		}
	}
	if m.Pgdeck != nil && m.Pgdeck.Format != "" && m.Pgdeck.Format != a.format {
		return nil, refusef("the manifest says format %q but the archive holds %s", m.Pgdeck.Format, a.dump.Name)
	}
	return a, nil
}

// checkName refuses an entry name that is not a clean relative path.
func checkName(name string) error {
	bad := func(why string) error {
		return refusef("the archive holds %s: %q", why, name)
	}
	switch {
	case name == "":
		return bad("an entry without a name")
	case strings.ContainsRune(name, 0):
		return bad("a name with a NUL byte")
	case strings.ContainsRune(name, '\\'):
		return bad("a path with a backslash")
	case strings.HasPrefix(name, "/"):
		return bad("an absolute path")
	}
	trimmed := strings.TrimSuffix(name, "/")
	for _, el := range strings.Split(trimmed, "/") {
		if el == ".." {
			return bad("a path that leaves its folder")
		}
		if el == "" || el == "." {
			return bad("a path that is not clean")
		}
	}
	if path.Clean(trimmed) != trimmed || len(name) > 4096 {
		return bad("a path that is not clean")
	}
	return nil
}

// Close closes the archive file.
func (a *Archive) Close() error { return a.f.Close() }

// Manifest returns the archive's manifest.
func (a *Archive) Manifest() Manifest { return a.manifest }

// Format returns the dump's format, from the dump entry present.
func (a *Archive) Format() Format { return a.format }

// Size returns the archive file's size.
func (a *Archive) Size() int64 { return a.size }

// listed returns what the manifest says of an entry; ok is false when the
// archive has no pgdeck manifest (an Odoo archive).
func (a *Archive) listed(name string) (p Part, has, ok bool) {
	if a.manifest.Pgdeck == nil {
		return Part{}, false, false
	}
	p, has = a.manifest.Pgdeck.Files[name]
	return p, has, true
}

// open opens an entry for reading, checked against the manifest (size and
// SHA-256) when it lists entries; zip's own CRC and declared size are
// checked in every case.
func (a *Archive) open(zf *zip.File) (io.ReadCloser, error) {
	want, has, checked := a.listed(zf.Name)
	if checked && !has {
		return nil, refusef("the archive holds %s, which its manifest does not list", zf.Name)
	}
	if checked && uint64(want.Size) != zf.UncompressedSize64 {
		return nil, refusef("the archive's entry %s has %d bytes, its manifest says %d", zf.Name, zf.UncompressedSize64, want.Size)
	}
	rc, err := zf.Open()
	if err != nil {
		return nil, refusef("the archive's entry %s cannot be read: %v", zf.Name, err)
	}
	cr := &checkedReader{rc: rc, name: zf.Name, h: sha256.New(), size: int64(zf.UncompressedSize64)}
	if checked {
		cr.want = want.SHA256
	}
	return cr, nil
}

// checkedReader reads an entry, refusing more bytes than its declared size
// and, at the end, a SHA-256 other than the manifest's.
type checkedReader struct {
	rc   io.ReadCloser
	name string
	h    hash.Hash
	n    int64
	size int64
	want string
	err  error
}

func (c *checkedReader) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.rc.Read(p)
	c.h.Write(p[:n])
	c.n += int64(n)
	if c.n > c.size {
		c.err = refusef("the archive's entry %s holds more data than its header says (a zip bomb?)", c.name)
		return 0, c.err
	}
	if err == io.EOF {
		if c.n != c.size {
			c.err = refusef("the archive's entry %s holds %d bytes, its header says %d", c.name, c.n, c.size)
			return n, c.err
		}
		if sum := hex.EncodeToString(c.h.Sum(nil)); c.want != "" && sum != c.want {
			c.err = refusef("the archive's entry %s does not match its checksum in the manifest", c.name)
			return n, c.err
		}
		c.err = io.EOF
		return n, io.EOF
	}
	switch {
	case errors.Is(err, zip.ErrFormat):
		// archive/zip reports more data than the header declares so.
		c.err = refusef("the archive's entry %s holds more data than its header says (a zip bomb?)", c.name)
		return n, c.err
	case errors.Is(err, zip.ErrChecksum):
		c.err = refusef("the archive's entry %s is damaged: its CRC does not match", c.name)
		return n, c.err
	case err != nil:
		c.err = refusef("the archive's entry %s is damaged: %v", c.name, err)
		return n, c.err
	}
	return n, nil
}

func (c *checkedReader) Close() error { return c.rc.Close() }

// readSmall reads a whole entry that must be at most max bytes.
func (a *Archive) readSmall(zf *zip.File, max int64) ([]byte, error) {
	if zf.UncompressedSize64 > uint64(max) {
		return nil, refusef("the archive's entry %s is larger than %d bytes", zf.Name, max)
	}
	var rc io.ReadCloser
	var err error
	if zf.Name == ManifestName {
		// The manifest lists the others, not itself.
		rc, err = zf.Open()
		if err == nil {
			rc = &checkedReader{rc: rc, name: zf.Name, h: sha256.New(), size: int64(zf.UncompressedSize64)}
		}
	} else {
		rc, err = a.open(zf)
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return nil, err
		}
		return nil, refusef("the archive's entry %s cannot be read: %v", zf.Name, err)
	}
	defer rc.Close()
	return io.ReadAll(rc)
}

// Dump opens the dump entry for reading, checking its size and SHA-256 as
// it is read: the last Read returns an *Error instead of io.EOF on a
// mismatch.
func (a *Archive) Dump() (io.ReadCloser, error) {
	return a.open(a.dump)
}

// Config returns the config/ entries, each at most MaxConfigSize bytes.
func (a *Archive) Config() (map[string][]byte, error) {
	out := map[string][]byte{}
	for name, zf := range a.entries {
		if !strings.HasPrefix(name, ConfigPrefix) {
			continue
		}
		data, err := a.readSmall(zf, MaxConfigSize)
		if err != nil {
			return nil, err
		}
		out[strings.TrimPrefix(name, ConfigPrefix)] = data
	}
	return out, nil
}

// Verify reads every entry (bounded by the declared sizes), checks each
// size and SHA-256 against the manifest's pgdeck.files when there are any
// (an entry not listed, or listed but missing, is refused), and proves the
// dump readable: a plain dump passes ScanPlain, a custom dump's table of
// contents is listed by pg_restore --list (the path pgRestore), which reads
// it from standard input: nothing is staged on disk, and tmpDir is not
// used. Returns an *Error on any mismatch.
func (a *Archive) Verify(ctx context.Context, pgRestore string, tmpDir string) error {
	if info := a.manifest.Pgdeck; info != nil {
		for name := range info.Files {
			if a.entries[name] == nil {
				return refusef("the manifest lists %s, which the archive does not hold", name)
			}
		}
		for name := range a.entries {
			if _, ok := info.Files[name]; !ok && name != ManifestName {
				return refusef("the archive holds %s, which its manifest does not list", name)
			}
		}
	}
	for _, zf := range a.zr.File {
		if err := ctx.Err(); err != nil {
			return err
		}
		if a.entries[zf.Name] != zf || zf.Name == ManifestName {
			continue // folders; the manifest was read by Open
		}
		rc, err := a.open(zf)
		if err != nil {
			return err
		}
		switch zf {
		case a.dump:
			if a.format == FormatZip {
				err = ScanPlain(rc)
			} else {
				err = listCustom(ctx, pgRestore, rc)
			}
			if err == nil {
				_, err = io.Copy(io.Discard, rc)
			}
		default:
			_, err = io.Copy(io.Discard, rc)
		}
		rc.Close()
		if err != nil {
			if _, ok := err.(*Error); ok || ctx.Err() != nil {
				return err
			}
			return fmt.Errorf("backup: verify %s: %w", zf.Name, err)
		}
	}
	return nil
}

// listCustom runs pg_restore --list on a custom-format dump read from r.
// pg_restore reads the table of contents from a pipe (it seeks only to
// restore data); the rest of r is left for the caller to drain and check.
func listCustom(ctx context.Context, pgRestore string, r io.Reader) error {
	if pgRestore == "" {
		return errors.New("backup: no pg_restore to verify a custom-format dump with")
	}
	cmd := exec.CommandContext(ctx, pgRestore, "--list")
	pr, pw := io.Pipe()
	cmd.Stdin = pr
	var stderr bytes.Buffer
	cmd.Stdout = io.Discard
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("backup: run %s: %w", pgRestore, err)
	}
	// Feed pg_restore until it stops reading (it exits after the TOC); the
	// unread rest of r stays for the caller.
	copyErr := make(chan error, 1)
	go func() {
		_, err := io.Copy(pw, r)
		pw.CloseWithError(err)
		copyErr <- err
	}()
	err := cmd.Wait()
	pr.CloseWithError(io.ErrClosedPipe)
	cerr := <-copyErr
	if e, ok := cerr.(*Error); ok {
		return e
	}
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if len(msg) > 500 {
			msg = msg[:500] + "…"
		}
		return refusef("the custom-format dump cannot be read by pg_restore: %s", msg)
	}
	return nil
}

// ExtractFilestore writes the filestore/ entries under dir, which it creates
// (its parent must exist, dir must not), with files 0640 and folders 0750;
// the caller hands them to their owner afterwards. Every file is created
// through an os.Root on dir with O_EXCL, so that nothing is written outside
// dir, even through a symbolic link made there meanwhile. It returns the
// files and bytes written.
func (a *Archive) ExtractFilestore(ctx context.Context, dir string) (files int, bytes int64, err error) {
	if err := os.Mkdir(dir, 0o750); err != nil {
		return 0, 0, fmt.Errorf("backup: extract filestore: %w", err)
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return 0, 0, fmt.Errorf("backup: extract filestore: %w", err)
	}
	defer root.Close()
	// dir is the folder just made, not something put in its place since.
	rfi, err1 := root.Stat(".")
	dfi, err2 := os.Lstat(dir)
	if err1 != nil || err2 != nil || !os.SameFile(rfi, dfi) {
		return 0, 0, refusef("the filestore folder %s was replaced while it was being extracted", dir)
	}
	made := map[string]bool{}
	for _, zf := range a.zr.File {
		if err := ctx.Err(); err != nil {
			return files, bytes, err
		}
		if a.entries[zf.Name] != zf || !strings.HasPrefix(zf.Name, FilestorePrefix) {
			continue
		}
		rel := strings.TrimPrefix(zf.Name, FilestorePrefix)
		if err := checkName(rel); err != nil {
			return files, bytes, err
		}
		if parent := path.Dir(rel); parent != "." && !made[parent] {
			if err := mkdirAll(root, parent, made); err != nil {
				return files, bytes, fmt.Errorf("backup: extract filestore: %w", err)
			}
		}
		n, err := a.extractOne(root, zf, rel)
		if err != nil {
			return files, bytes, err
		}
		files++
		bytes += n
	}
	return files, bytes, nil
}

func mkdirAll(root *os.Root, dir string, made map[string]bool) error {
	var p string
	for _, el := range strings.Split(dir, "/") {
		p = path.Join(p, el)
		if made[p] {
			continue
		}
		if err := root.Mkdir(p, 0o750); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		fi, err := root.Lstat(p)
		if err != nil {
			return err
		}
		if !fi.IsDir() {
			return refusef("the filestore path %s is not a folder", p)
		}
		if err := root.Chmod(p, 0o750); err != nil {
			return err
		}
		made[p] = true
	}
	return nil
}

func (a *Archive) extractOne(root *os.Root, zf *zip.File, rel string) (int64, error) {
	rc, err := a.open(zf)
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	out, err := root.OpenFile(rel, os.O_WRONLY|os.O_CREATE|os.O_EXCL|syscall.O_NOFOLLOW, 0o640)
	if err != nil {
		return 0, fmt.Errorf("backup: extract filestore: %w", err)
	}
	n, err := io.Copy(out, rc)
	if err == nil {
		err = out.Chmod(0o640)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		if _, ok := err.(*Error); ok {
			return n, err
		}
		return n, fmt.Errorf("backup: extract filestore %s: %w", rel, err)
	}
	return n, nil
}
