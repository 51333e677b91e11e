package docker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/docker/docker/api/types/container"
	"github.com/docker/docker/pkg/stdcopy"

	"pgdeck/provisioner/runtime"
)

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if over := len(t.buf) - t.max; over > 0 {
		t.buf = append(t.buf[:0], t.buf[over:]...)
	}
	return len(p), nil
}

// execStream runs argv in a running container as postgres (its environment:
// PGHOST is the socket folder, PATH has the binaries), feeding it in (nil:
// no input) and writing its standard output to stdout and its standard
// error to stderr. A non-zero exit is an error.
func (r *Runtime) execStream(ctx context.Context, ctrID string, in io.Reader, stdout, stderr io.Writer, argv ...string) error {
	ex, err := r.cli.ContainerExecCreate(ctx, ctrID, container.ExecOptions{
		User:         runAsUser,
		Cmd:          argv,
		AttachStdin:  in != nil,
		AttachStdout: true,
		AttachStderr: true,
		WorkingDir:   "/",
	})
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	hj, err := r.cli.ContainerExecAttach(ctx, ex.ID, container.ExecAttachOptions{})
	if err != nil {
		return fmt.Errorf("exec %s: %w", argv[0], err)
	}
	defer hj.Close()
	// Ending ctx ends the connection (and with it the copies below).
	stop := context.AfterFunc(ctx, func() { hj.Conn.Close() })
	defer stop()
	inErr := make(chan error, 1)
	if in != nil {
		go func() {
			_, err := io.Copy(hj.Conn, in)
			if cerr := hj.CloseWrite(); err == nil {
				err = cerr
			}
			inErr <- err
		}()
	} else {
		inErr <- nil
	}
	_, err = stdcopy.StdCopy(stdout, stderr, hj.Reader)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err != nil {
		return fmt.Errorf("exec %s: output: %w", argv[0], err)
	}
	// The output ends before the exec's state says so: look a few times.
	for i := 0; ; i++ {
		st, err := r.cli.ContainerExecInspect(ctx, ex.ID)
		if err != nil {
			return fmt.Errorf("exec %s: %w", argv[0], err)
		}
		if !st.Running {
			if st.ExitCode != 0 {
				return fmt.Errorf("%s exited with code %d", argv[0], st.ExitCode)
			}
			break
		}
		if i > 200 {
			return fmt.Errorf("exec %s: still running after its output ended", argv[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	if in != nil {
		select {
		case err := <-inErr:
			// The program may exit before reading all its input (psql
			// after an error): that is its exit code's business.
			_ = err
		default:
		}
	}
	return nil
}

// exec runs argv with stdin and returns its combined output.
func (r *Runtime) exec(ctx context.Context, ctrID string, stdin []byte, argv ...string) ([]byte, error) {
	var out bytes.Buffer
	var in io.Reader
	if stdin != nil {
		in = bytes.NewReader(stdin)
	}
	err := r.execStream(ctx, ctrID, in, &out, &out, argv...)
	return out.Bytes(), err
}

// running returns the container of an instance whose server can run
// commands: it exists (else an error wrapping runtime.ErrMissing), is not
// a pooler, and runs.
func (r *Runtime) running(ctx context.Context, what string, id runtime.InstanceID) (string, error) {
	c, err := r.inspect(ctx, id)
	if err != nil {
		return "", fmt.Errorf("docker runtime: %s: %w", what, err)
	}
	if isPooler(id) {
		return "", fmt.Errorf("docker runtime: %s in %s: not supported for pgbouncer instances", what, id)
	}
	if !c.State.Running || c.State.Restarting {
		return "", fmt.Errorf("docker runtime: %s in %s: the instance is not running (%s)", what, id, c.State.Status)
	}
	return c.ID, nil
}

// Exec runs a program of the image (argv[0], e.g. "psql") in the instance's
// container as postgres, the superuser over the local socket, and returns
// its combined output; a pooler runs none.
func (r *Runtime) Exec(ctx context.Context, id runtime.InstanceID, stdin []byte, argv ...string) ([]byte, error) {
	if len(argv) == 0 {
		return nil, errors.New("docker runtime: exec: no command")
	}
	ctrID, err := r.running(ctx, "exec", id)
	if err != nil {
		return nil, err
	}
	out, err := r.exec(ctx, ctrID, stdin, argv...)
	if err != nil {
		return out, fmt.Errorf("docker runtime: exec in %s: %w: %s", id, err, strings.TrimSpace(string(out)))
	}
	return out, nil
}

// Stream runs a program like Exec with its input read from in and its
// output written to out as it comes; its standard error's tail is in the
// error when it fails.
func (r *Runtime) Stream(ctx context.Context, id runtime.InstanceID, in io.Reader, out io.Writer, argv ...string) error {
	if len(argv) == 0 {
		return errors.New("docker runtime: stream: no command")
	}
	ctrID, err := r.running(ctx, "stream", id)
	if err != nil {
		return err
	}
	stderr := &tailBuffer{max: runtime.StreamErrTail}
	if err := r.execStream(ctx, ctrID, in, out, stderr, argv...); err != nil {
		return fmt.Errorf("docker runtime: stream in %s: %w: %s", id, err, strings.TrimSpace(string(stderr.buf)))
	}
	return nil
}

// WriteFile writes data at rel in the instance's volume (folders on the
// way are made), owned by postgres with mode.
func (r *Runtime) WriteFile(ctx context.Context, id runtime.InstanceID, rel string, data []byte, mode os.FileMode) error {
	if err := id.Validate(); err != nil {
		return err
	}
	clean, err := runtime.CleanRel(rel)
	if err != nil {
		return err
	}
	p, err := r.probeFor(ctx, id)
	if err != nil {
		return fmt.Errorf("docker runtime: write %s in %s: %w", rel, id, err)
	}
	defer r.lock(id.String())()
	c, err := r.inspect(ctx, id)
	if err != nil {
		return fmt.Errorf("docker runtime: write %s: %w", rel, err)
	}
	if err := r.copyIn(ctx, c.ID, p, volumeDir, []tarFile{{name: clean, data: data, mode: mode}}); err != nil {
		return fmt.Errorf("docker runtime: write %s in %s: %w", rel, id, err)
	}
	return nil
}
