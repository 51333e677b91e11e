package dockertest

import (
	"context"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/docker/docker/api/types/image"
	"github.com/docker/docker/client"
	"github.com/docker/docker/pkg/jsonmessage"
)

// ImageTag is the test image's tag: Debian 12 with PostgreSQL 15 (binaries
// in /usr/lib/postgresql/15/bin) and PgBouncer, user postgres.
const ImageTag = "pgdeck-test/postgres:15"

// imageScript builds the image's root file system; its hash names the
// cached tarball, so a changed recipe builds a new one.
//
//go:embed image.sh
var imageScript []byte

// Measured on a 2-core test machine: building the tarball (debootstrap
// from deb.debian.org, then trimming to 200 MB) took 1.5 to 2 minutes on a
// quiet machine and 5 minutes on a loaded one, once per recipe; importing it
// into a fresh private engine takes 3 to 6 s.

// Image makes sure the daemon has ImageTag, building the cached tarball
// first if needed, and returns the tag.
func Image(t testing.TB, d *Daemon) string {
	t.Helper()
	if err := LoadImage(context.Background(), d.Host); err != nil {
		t.Fatal(err)
	}
	return ImageTag
}

// LoadImage imports the cached image tarball into the daemon at host when
// it does not have ImageTag yet (building the tarball first when it is not
// cached; concurrent test binaries wait for one build).
func LoadImage(ctx context.Context, host string) error {
	c, err := client.NewClientWithOpts(client.WithHost(host), client.WithAPIVersionNegotiation())
	if err != nil {
		return fmt.Errorf("dockertest: %w", err)
	}
	defer c.Close()
	if _, err := c.ImageInspect(ctx, ImageTag); err == nil {
		return nil
	}
	tarball, err := ImageTarball()
	if err != nil {
		return err
	}
	f, err := os.Open(tarball)
	if err != nil {
		return fmt.Errorf("dockertest: %w", err)
	}
	defer f.Close()
	start := time.Now()
	rc, err := c.ImageImport(ctx, image.ImportSource{Source: f, SourceName: "-"}, ImageTag, image.ImportOptions{})
	if err != nil {
		return fmt.Errorf("dockertest: import %s: %w", tarball, err)
	}
	defer rc.Close()
	if err := jsonmessage.DisplayJSONMessagesStream(rc, io.Discard, 0, false, nil); err != nil {
		return fmt.Errorf("dockertest: import %s: %w", tarball, err)
	}
	if flag.Parsed() && testing.Verbose() {
		fmt.Fprintf(os.Stderr, "dockertest: imported %s from %s in %s\n", ImageTag, tarball, time.Since(start).Round(time.Millisecond))
	}
	return nil
}

// cacheDir is where built image tarballs are kept.
func cacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/pgdeck/docker"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "pgdeck", "docker")
}

// ImageTarball returns the cached root file system tarball of the test
// image, building it with debootstrap (image.sh) when the recipe's tarball
// is not there; a file lock makes concurrent callers wait for one build.
func ImageTarball() (string, error) {
	sum := sha256.Sum256(imageScript)
	dir := cacheDir()
	path := filepath.Join(dir, "postgres-"+hex.EncodeToString(sum[:])[:16]+".tar")
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	if err := EnsureTools(); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("dockertest: %w", err)
	}
	lock, err := os.OpenFile(filepath.Join(dir, ".lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return "", fmt.Errorf("dockertest: %w", err)
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return "", fmt.Errorf("dockertest: lock %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(path); err == nil {
		return path, nil
	}
	script := filepath.Join(dir, ".image.sh")
	if err := os.WriteFile(script, imageScript, 0o755); err != nil {
		return "", fmt.Errorf("dockertest: %w", err)
	}
	start := time.Now()
	fmt.Fprintf(os.Stderr, "dockertest: building the test image %s with debootstrap (2 to 5 minutes, once)\n", path)
	out, err := exec.Command("bash", script, path).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("dockertest: build the test image (%s): %v: %s", script, err, tail(string(out), 30))
	}
	fmt.Fprintf(os.Stderr, "dockertest: built %s in %s\n", path, time.Since(start).Round(time.Second))
	return path, nil
}
