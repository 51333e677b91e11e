package provisioner

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"pgdeck/provisioner/backup"
	"pgdeck/store"
)

// ImportDir is the folder, in the backup folder, where an operator puts
// archives to import from the server itself (copied by scp, say).
const ImportDir = "import"

// ImportFiles lists the archives waiting in the import folder, by name.
func (p *Provisioner) ImportFiles() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(p.cfg.BackupDir, ImportDir))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []string
	for _, e := range entries {
		if e.Type().IsRegular() && !strings.HasPrefix(e.Name(), ".") {
			out = append(out, e.Name())
		}
	}
	slices.Sort(out)
	return out, nil
}

// ImportFilePath returns the path of an archive in the import folder, or
// an error when name is not a plain file name there.
func (p *Provisioner) ImportFilePath(name string) (string, error) {
	files, err := p.ImportFiles()
	if err != nil {
		return "", err
	}
	if !slices.Contains(files, name) {
		return "", &backup.Error{Reason: fmt.Sprintf("there is no file %q in %s", name, filepath.Join(p.cfg.BackupDir, ImportDir))}
	}
	return filepath.Join(p.cfg.BackupDir, ImportDir, name), nil
}

// UploadFile creates the file an upload for env is streamed into, in env's
// backup folder (the same file system as the archives, so that the import
// is a rename), with a name no listing takes for a backup.
func (p *Provisioner) UploadFile(env string) (*os.File, error) {
	dir := filepath.Join(p.cfg.BackupDir, env)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return os.CreateTemp(dir, ".upload-*.zip")
}

// ImportBackup records the archive at path as an imported backup of env,
// once it has been opened and checked (structure, manifest, versions
// against env): the refusal is a *backup.Error saying why, and nothing is
// recorded. With move the file is renamed into env's backup folder (an
// upload), otherwise copied (a file the operator keeps).
func (p *Provisioner) ImportBackup(ctx context.Context, env store.Environment, path string, move bool, by string) (store.Backup, error) {
	a, err := backup.Open(path, p.cfg.BackupLimits)
	if err != nil {
		return store.Backup{}, err
	}
	man, format := a.Manifest(), a.Format()
	a.Close()
	major := 0
	if env.Deployed() && env.DesiredState == "running" {
		if major, err = p.serverMajor(ctx, env); err != nil {
			return store.Backup{}, err
		}
	}
	if major > 0 {
		if err := backup.CheckCompatible(man, major, env.OdooVersion); err != nil {
			return store.Backup{}, err
		}
	}
	raw, err := json.Marshal(man)
	if err != nil {
		return store.Backup{}, err
	}
	b, err := p.recordBackup(ctx, env, store.BackupImported, format, nil, by)
	if err != nil {
		return store.Backup{}, err
	}
	size, sum, err := p.placeArchive(path, p.BackupPath(b), move)
	if err != nil {
		p.store.FailBackup(context.WithoutCancel(ctx), b.ID, "import: "+err.Error())
		return store.Backup{}, err
	}
	if err := p.store.FinishBackup(ctx, b.ID, size, sum, raw); err != nil {
		return store.Backup{}, err
	}
	return p.store.BackupByID(ctx, b.ID)
}

// placeArchive moves or copies src to dst (through a temporary file, synced
// before it takes its name) and returns its size and SHA-256.
func (p *Provisioner) placeArchive(src, dst string, move bool) (int64, string, error) {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return 0, "", err
	}
	in, err := os.Open(src)
	if err != nil {
		return 0, "", err
	}
	defer in.Close()
	h := sha256.New()
	if move {
		n, err := io.Copy(h, in)
		if err != nil {
			return 0, "", err
		}
		if err := os.Rename(src, dst); err != nil {
			return 0, "", err
		}
		syncDir(filepath.Dir(dst))
		return n, hex.EncodeToString(h.Sum(nil)), nil
	}
	tmp := dst + ".part"
	out, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return 0, "", err
	}
	n, err := io.Copy(io.MultiWriter(out, h), in)
	if err == nil {
		err = out.Sync()
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, dst)
	}
	if err != nil {
		os.Remove(tmp)
		return 0, "", err
	}
	syncDir(filepath.Dir(dst))
	return n, hex.EncodeToString(h.Sum(nil)), nil
}
