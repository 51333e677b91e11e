package local

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// WriteFile writes data at rel inside the instance folder (creating the
// folders on the way), owned by the run-as user.
func (r *Runtime) WriteFile(ctx context.Context, id runtime.InstanceID, rel string, data []byte, mode os.FileMode) error {
	if err := id.Validate(); err != nil {
		return err
	}
	clean, err := runtime.CleanRel(rel)
	if err != nil {
		return err
	}
	defer r.lock(id)()
	dir := r.InstanceDir(id)
	target := filepath.Join(dir, filepath.FromSlash(clean))
	if err := r.mkdirs(dir, filepath.Dir(target)); err != nil {
		return fmt.Errorf("local runtime: write %s in %s: %w", rel, id, err)
	}
	if err := pgexec.WriteFileAs(r.user, target, data, mode); err != nil {
		return fmt.Errorf("local runtime: write %s in %s: %w", rel, id, err)
	}
	return nil
}

// mkdirs creates the folders from the instance folder down to leaf, owned by
// the run-as user, refusing to follow symlinks out of the instance folder.
func (r *Runtime) mkdirs(instanceDir, leaf string) error {
	if err := os.MkdirAll(filepath.Dir(instanceDir), 0o755); err != nil {
		return err
	}
	rel, err := filepath.Rel(instanceDir, leaf)
	if err != nil {
		return err
	}
	cur := instanceDir
	parts := []string{"."}
	if rel != "." {
		parts = append(parts, strings.Split(rel, string(filepath.Separator))...)
	}
	for _, p := range parts {
		cur = filepath.Join(cur, p)
		fi, err := os.Lstat(cur)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			if err := os.Mkdir(cur, 0o755); err != nil {
				return err
			}
			if err := r.user.Chown(cur); err != nil {
				return err
			}
		case err != nil:
			return err
		case !fi.IsDir():
			return fmt.Errorf("%s is not a folder", cur)
		}
	}
	return nil
}

// Exec runs a PostgreSQL program (argv[0], e.g. "psql") from the binary
// folder as the superuser over the instance's socket; a pooler runs none.
func (r *Runtime) Exec(ctx context.Context, id runtime.InstanceID, stdin []byte, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("local runtime: exec: no command")
	}
	if isPooler(id) {
		if _, err := r.loadPooler(id); errors.Is(err, runtime.ErrMissing) {
			return nil, fmt.Errorf("local runtime: exec: %w", err)
		}
		return nil, fmt.Errorf("local runtime: exec in %s: not supported for pgbouncer instances", id)
	}
	c, err := r.load(id)
	if err != nil {
		return nil, fmt.Errorf("local runtime: exec: %w", err)
	}
	out, err := c.Exec(ctx, stdin, argv[0], argv[1:]...)
	if err != nil {
		return out, fmt.Errorf("local runtime: exec in %s: %w", id, err)
	}
	return out, nil
}

// Stream runs a PostgreSQL program like Exec, streaming its input and output.
func (r *Runtime) Stream(ctx context.Context, id runtime.InstanceID, in io.Reader, out io.Writer, argv ...string) error {
	if len(argv) == 0 {
		return errors.New("local runtime: stream: no command")
	}
	if isPooler(id) {
		return fmt.Errorf("local runtime: stream in %s: not supported for pgbouncer instances", id)
	}
	c, err := r.load(id)
	if err != nil {
		return fmt.Errorf("local runtime: stream: %w", err)
	}
	if err := c.Stream(ctx, in, out, runtime.StreamErrTail, argv[0], argv[1:]...); err != nil {
		return fmt.Errorf("local runtime: stream in %s: %w", id, err)
	}
	return nil
}
