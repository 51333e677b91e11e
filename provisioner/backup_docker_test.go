package provisioner_test

import (
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"pgdeck/internal/dockertest"
	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime/docker"
	"pgdeck/provisioner/runtime/local/pgexec"
)

// TestBackupAndRestoreOnDocker runs the provisioner's jobs on the Docker
// runtime (a private dockerd, the test image): deploy, a backup of rows and
// files, changes, a restore that brings them back, then the environment's
// delete with its pre-delete backup.
func TestBackupAndRestoreOnDocker(t *testing.T) {
	engine := dockertest.Engine(t)
	image := dockertest.Image(t, engine)
	root := filepath.Join(testkit.TempDir(t), "envs")
	log := slog.New(slog.NewTextHandler(t.Output(), &slog.HandlerOptions{Level: slog.LevelInfo}))
	rt, err := docker.New(docker.Config{Host: engine.Host, Image: image, Root: root, Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rt.Close() })
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("the PostgreSQL binaries are required (apt-get install -y postgresql): %v", err)
	}
	h := newHarnessWith(t, root, rt, bin, log)
	e := h.deploy("shop")
	h.seedOdooish(e, "https://shop.example.com")
	h.writeFiles(e, map[string]string{"ab/ab12cd": "an invoice", "cd/cd34": strings.Repeat("image ", 4000)})
	wantRows, wantFiles := h.tableSums(e), h.fileHashes(e)

	for _, format := range []string{"zip", "dump"} {
		b := h.backup("shop", format)
		if _, err := h.connectAs(e).Exec(t.Context(), "DELETE FROM res_partner WHERE id % 2 = 0"); err != nil {
			t.Fatal(err)
		}
		h.writeFiles(e, map[string]string{"ab/ab12cd": "changed"})
		h.wantSucceeded(h.restore(b, "shop", false))
		if got := h.tableSums(e); !mapsEqual(got, wantRows) {
			t.Errorf("%s: rows after the restore on docker: %v, want %v", format, got, wantRows)
		}
		if got := h.fileHashes(e); !mapsEqual(got, wantFiles) {
			t.Errorf("%s: files after the restore on docker: %v, want %v", format, got, wantFiles)
		}
	}
	h.succeed("shop", "delete")
	bs, err := h.st.ListBackups(t.Context(), "shop", 1)
	if err != nil || len(bs) != 1 || bs[0].Kind != "pre-delete" || bs[0].State != "succeeded" {
		t.Errorf("after the delete on docker: %+v, %v; want a succeeded pre-delete backup", bs, err)
	}
}
