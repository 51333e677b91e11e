// Package dockertest starts private Docker Engines for tests (one dockerd
// per test binary, with its own socket, data root, exec root and address
// pool under a short folder) and loads pgdeck's test image into them: Debian
// 12 with PostgreSQL 15 and PgBouncer, built with debootstrap once and
// cached as a tarball. Only tests import it.
package dockertest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/client"
)

// startTimeout bounds how long a dockerd may take to answer its socket.
const startTimeout = 90 * time.Second

// stopTimeout bounds how long a dockerd may take to stop its containers
// and exit after SIGTERM before it is killed.
const stopTimeout = 60 * time.Second

// poolFirst and poolLast bound the second octet of the 10.X.0.0/16 address
// pools handed to private engines, one pool per running engine.
const (
	poolFirst = 200
	poolLast  = 250
)

// Daemon is a private dockerd.
type Daemon struct {
	// Dir holds the socket, data root, exec root, pid file and log.
	Dir string
	// Host is the daemon's address for client.WithHost ("unix://…").
	Host string
	// Pool is the address pool its networks take subnets from
	// (10.X.0.0/16, /24 each).
	Pool string
	// TCP is the daemon's TLS endpoint ("tcp://127.0.0.1:port", client
	// certificates required) when it was started by EngineTLS, and TLS
	// what a client of it holds; empty otherwise.
	TCP string
	TLS TLSFiles
	// tlsArgs are dockerd's arguments for the TLS endpoint.
	tlsArgs []string

	poolLock *os.File
	// holds says the daemon counts in the machine lock until Close.
	holds bool
	mu    sync.Mutex
	cmd   *exec.Cmd
	done  chan struct{}
}

// Engine starts a private dockerd for the test (and the tests under it)
// and stops it, removing its folder, when the test ends.
func Engine(t testing.TB) *Daemon {
	t.Helper()
	return engine(t, false)
}

// EngineTLS is Engine with a second endpoint on 127.0.0.1 over TLS that
// requires a client certificate (dockerd --tlsverify), as a remote Docker
// host is reached: Daemon.TCP and Daemon.TLS say where and with what. The
// unix socket (Host) stays, for the test's own client.
func EngineTLS(t testing.TB) *Daemon {
	t.Helper()
	return engine(t, true)
}

func engine(t testing.TB, withTLS bool) *Daemon {
	t.Helper()
	d, err := start(withTLS)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := d.Close(); err != nil {
			t.Errorf("dockertest: %v", err)
		}
	})
	return d
}

// Start starts a private dockerd in a new folder under /tmp (short, for
// the unix socket paths below it) on an address pool no other private
// engine on this machine uses, and waits until it answers. Close stops it.
// For TestMain, where there is no testing.T.
func Start() (*Daemon, error) { return start(false) }

func start(withTLS bool) (*Daemon, error) {
	if err := EnsureTools(); err != nil {
		return nil, err
	}
	if err := holdMachine(); err != nil {
		return nil, err
	}
	sweep()
	dir, err := os.MkdirTemp("", "pgdeck-dkr-")
	if err != nil {
		return nil, fmt.Errorf("dockertest: %w", err)
	}
	d := &Daemon{Dir: dir, Host: "unix://" + filepath.Join(dir, "d.sock"), holds: true}
	if d.Pool, d.poolLock, err = takePool(); err != nil {
		os.RemoveAll(dir)
		releaseMachine()
		return nil, err
	}
	if withTLS {
		if d.TLS, d.TCP, d.tlsArgs, err = setupTLS(dir); err != nil {
			d.Close()
			return nil, err
		}
	}
	if err := d.start(); err != nil {
		d.Close()
		return nil, err
	}
	return d, nil
}

// Client returns a client of the daemon (API version negotiated); the
// caller closes it.
func (d *Daemon) Client() (*client.Client, error) {
	return client.NewClientWithOpts(client.WithHost(d.Host), client.WithAPIVersionNegotiation())
}

// start runs dockerd and waits for its socket to answer.
func (d *Daemon) start() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd != nil {
		return nil
	}
	logf, err := os.OpenFile(filepath.Join(d.Dir, "dockerd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o644)
	if err != nil {
		return fmt.Errorf("dockertest: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command("dockerd",
		"--host", d.Host,
		"--data-root", filepath.Join(d.Dir, "root"),
		"--exec-root", filepath.Join(d.Dir, "x"),
		"--pidfile", filepath.Join(d.Dir, "d.pid"),
		// No default bridge (docker0 would collide between daemons): only
		// user-defined networks, with subnets from this daemon's own pool.
		"--bridge", "none",
		"--default-address-pool", "base="+d.Pool+",size=24",
		"--shutdown-timeout", "10",
		"--log-level", "warn",
	)
	cmd.Args = append(cmd.Args, d.tlsArgs...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// The daemon dies with the test binary, even when it is killed.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGTERM, Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("dockertest: start dockerd: %w", err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	d.cmd, d.done = cmd, done

	c, err := d.Client()
	if err != nil {
		return fmt.Errorf("dockertest: %w", err)
	}
	defer c.Close()
	deadline := time.Now().Add(startTimeout)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		_, err := c.Ping(ctx)
		cancel()
		if err == nil {
			return nil
		}
		select {
		case <-done:
			return fmt.Errorf("dockertest: dockerd exited at start: %s", d.LogTail(20))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("dockertest: dockerd did not answer on %s within %s: %v; log: %s", d.Host, startTimeout, err, d.LogTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop stops the daemon (SIGTERM: it stops its containers first), killing
// it when it takes longer than stopTimeout. Its folder stays, so that
// Restart brings back the same containers.
func (d *Daemon) Stop() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.cmd == nil {
		return nil
	}
	cmd, done := d.cmd, d.done
	d.cmd, d.done = nil, nil
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		return nil
	case <-time.After(stopTimeout):
		syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		<-done
		return fmt.Errorf("dockertest: dockerd did not stop within %s; killed", stopTimeout)
	}
}

// StartAgain starts a daemon that Stop stopped, on the same folder:
// containers with a restart policy come back.
func (d *Daemon) StartAgain() error { return d.start() }

// Restart stops the daemon and starts it again on the same folder:
// containers with a restart policy come back.
func (d *Daemon) Restart() error {
	if err := d.Stop(); err != nil {
		return err
	}
	return d.start()
}

// Close stops the daemon and removes its folder.
func (d *Daemon) Close() error {
	err := d.Stop()
	d.mu.Lock()
	holds := d.holds
	d.holds = false
	d.mu.Unlock()
	if holds {
		defer releaseMachine()
	}
	if rerr := removeTree(d.Dir); rerr != nil && err == nil {
		err = rerr
	}
	if d.poolLock != nil {
		// The lock file stays: removing it could split one pool's lock
		// between a process that opened the old file and one that makes
		// a new one.
		d.poolLock.Close()
		d.poolLock = nil
	}
	return err
}

// LogTail returns the last n lines of the daemon's log.
func (d *Daemon) LogTail(n int) string {
	b, _ := os.ReadFile(filepath.Join(d.Dir, "dockerd.log"))
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// takePool locks the first free 10.X.0.0/16 pool: a lock file per pool,
// held while the daemon runs (and released by the kernel when the test
// binary dies).
func takePool() (string, *os.File, error) {
	for x := poolFirst; x <= poolLast; x++ {
		f, err := os.OpenFile(filepath.Join(os.TempDir(), "pgdeck-dkr-pool-"+strconv.Itoa(x)+".lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return "", nil, fmt.Errorf("dockertest: %w", err)
		}
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
			f.Close()
			continue
		}
		return fmt.Sprintf("10.%d.0.0/16", x), f, nil
	}
	return "", nil, fmt.Errorf("dockertest: every address pool 10.%d-%d.0.0/16 is taken by another private engine", poolFirst, poolLast)
}

// sweep removes the folders of private engines whose test binary died
// without cleaning up (their dockerd is gone).
func sweep() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), "pgdeck-dkr-*"))
	for _, dir := range dirs {
		if strings.HasSuffix(dir, ".lock") {
			continue
		}
		fi, err := os.Stat(dir)
		if err != nil || !fi.IsDir() || time.Since(fi.ModTime()) < time.Minute {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, "d.pid"))
		if err == nil {
			if pid, _ := strconv.Atoi(strings.TrimSpace(string(b))); pid > 0 && syscall.Kill(pid, 0) == nil {
				continue
			}
		} else if !errors.Is(err, os.ErrNotExist) {
			continue
		}
		removeTree(dir)
	}
}

// removeTree removes dir after unmounting whatever a dead daemon left
// mounted below it (overlay layers, volumes, network namespaces).
func removeTree(dir string) error {
	if err := os.RemoveAll(dir); err == nil {
		return nil
	}
	b, _ := os.ReadFile("/proc/self/mountinfo")
	var mounts []string
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && (f[4] == dir || strings.HasPrefix(f[4], dir+"/")) {
			mounts = append(mounts, f[4])
		}
	}
	// Deepest first.
	for i := len(mounts) - 1; i >= 0; i-- {
		syscall.Unmount(mounts[i], syscall.MNT_DETACH)
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("dockertest: remove %s: %w", dir, err)
	}
	return nil
}

// EnsureTools checks that dockerd and debootstrap are installed; as root it
// installs what is missing, otherwise it says how.
func EnsureTools() error {
	var missing []string
	for bin, pkg := range map[string]string{"dockerd": "docker.io", "debootstrap": "debootstrap"} {
		if _, err := exec.LookPath(bin); err != nil {
			missing = append(missing, pkg)
		}
	}
	if len(missing) == 0 {
		if os.Geteuid() != 0 {
			return errors.New("dockertest: a private dockerd and debootstrap need root; run the tests as root (e.g. sudo make test)")
		}
		return nil
	}
	install := "apt-get install -y " + strings.Join(missing, " ")
	if os.Geteuid() != 0 {
		return fmt.Errorf("dockertest: %s missing; run: sudo %s", strings.Join(missing, " and "), install)
	}
	installMu.Lock()
	defer installMu.Unlock()
	cmd := exec.Command("sh", "-c", "apt-get update -q && DEBIAN_FRONTEND=noninteractive "+install+" -q")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("dockertest: %s: %v: %s", install, err, tail(string(out), 20))
	}
	return nil
}

var installMu sync.Mutex

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// The private engines of one test binary at a time: every dockerd on the
// machine shares the host's iptables, and one starting or stopping
// rewrites the chains (NAT of published ports, isolation between
// networks) the engines of another binary rely on. A binary takes the
// machine lock when its first engine starts and leaves it when its last
// one is closed; go test's parallel packages then take turns.
const machineLockPath = "/tmp/pgdeck-dockertest.lock"

var machine struct {
	mu      sync.Mutex
	engines int
	lock    *os.File
}

func holdMachine() error {
	machine.mu.Lock()
	defer machine.mu.Unlock()
	if machine.engines > 0 {
		machine.engines++
		return nil
	}
	f, err := os.OpenFile(machineLockPath, os.O_CREATE|os.O_RDWR, 0o666)
	if err != nil {
		return fmt.Errorf("dockertest: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		fmt.Fprintf(os.Stderr, "dockertest: waiting for another test binary's Docker engines to stop (they share the host's iptables; lock %s)\n", machineLockPath)
		start := time.Now()
		if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX); err != nil {
			f.Close()
			return fmt.Errorf("dockertest: lock %s: %w", machineLockPath, err)
		}
		fmt.Fprintf(os.Stderr, "dockertest: waited %s for the other engines\n", time.Since(start).Round(time.Second))
	}
	machine.lock, machine.engines = f, 1
	return nil
}

func releaseMachine() {
	machine.mu.Lock()
	defer machine.mu.Unlock()
	if machine.engines == 0 {
		return
	}
	machine.engines--
	if machine.engines == 0 {
		machine.lock.Close() // releases the flock
		machine.lock = nil
	}
}
