package pgexec

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// ConfFileName is the file pgdeck owns inside a data directory; the
// generated postgresql.conf includes it at its end so that its values win
// over initdb's (ALTER SYSTEM, in postgresql.auto.conf, still wins over it).
const ConfFileName = "pgdeck.conf"

// includeLine is appended once to postgresql.conf.
const includeLine = "include_if_exists = '" + ConfFileName + "'\t# added by pgdeck"

// managedSettings are set from ServerConf and may not come from the
// caller's settings (InitOptions.Conf, a runtime Spec's Conf).
var managedSettings = map[string]bool{
	"listen_addresses":        true,
	"port":                    true,
	"unix_socket_directories": true,
	"unix_socket_permissions": true,
	"data_directory":          true,
	"config_file":             true,
	"hba_file":                true,
	"ident_file":              true,
	// A standby's (see StandbyOptions).
	"primary_conninfo":  true,
	"primary_slot_name": true,
	"hot_standby":       true,
}

var settingName = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

var roleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// quoteConfValue renders a postgresql.conf value as a single-quoted string,
// which PostgreSQL accepts for settings of every type.
func quoteConfValue(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

// ServerConf is what the runtime itself sets in pgdeck.conf: where the
// server listens and, for a standby, what it streams from.
type ServerConf struct {
	ListenAddresses string
	Port            int
	SocketDir       string
	// PrimaryConninfo, when set, makes the server a hot standby streaming
	// through PrimarySlot; it holds no password.
	PrimaryConninfo string
	PrimarySlot     string
}

// RenderConf renders pgdeck.conf: the settings from extra first (sorted),
// then the ones s manages, then a standby's when s has PrimaryConninfo. A
// setting name PostgreSQL would not read, a managed setting in extra or a
// value with a line break is an error.
func RenderConf(extra map[string]string, s ServerConf) (string, error) {
	keys := make([]string, 0, len(extra))
	for k := range extra {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	b.WriteString("# Written by pgdeck from its stored settings; edits here are overwritten.\n")
	for _, k := range keys {
		v := extra[k]
		name := strings.ToLower(k)
		if !settingName.MatchString(name) {
			return "", fmt.Errorf("invalid setting name %q", k)
		}
		if managedSettings[name] {
			return "", fmt.Errorf("setting %q is managed by pgdeck and cannot be overridden", k)
		}
		if strings.ContainsAny(v, "\n\r\x00") {
			return "", fmt.Errorf("setting %q: value contains a line break", k)
		}
		fmt.Fprintf(&b, "%s = %s\n", name, quoteConfValue(v))
	}
	sockDir := s.SocketDir
	if strings.ContainsAny(sockDir, ", \t\"") {
		// unix_socket_directories is a comma-separated list whose items
		// may be double-quoted.
		sockDir = `"` + sockDir + `"`
	}
	fmt.Fprintf(&b, "listen_addresses = %s\n", quoteConfValue(s.ListenAddresses))
	fmt.Fprintf(&b, "port = %d\n", s.Port)
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", quoteConfValue(sockDir))
	b.WriteString("unix_socket_permissions = 0700\n")
	if s.PrimaryConninfo != "" {
		fmt.Fprintf(&b, "primary_conninfo = %s\n", quoteConfValue(s.PrimaryConninfo))
		fmt.Fprintf(&b, "primary_slot_name = %s\n", quoteConfValue(s.PrimarySlot))
		b.WriteString("hot_standby = on\n")
	}
	return b.String(), nil
}

// RenderHBA renders pg_hba.conf: local trust for superuser over the socket
// (which only the server's OS user can open), then the caller's lines.
func RenderHBA(superuser string, lines []string) (string, error) {
	var b strings.Builder
	b.WriteString("# Written by pgdeck; edits here are overwritten.\n")
	b.WriteString("# TYPE  DATABASE     USER  ADDRESS  METHOD\n")
	fmt.Fprintf(&b, "local   all          %s  trust\n", superuser)
	fmt.Fprintf(&b, "local   replication  %s  trust\n", superuser)
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\r\x00") {
			return "", fmt.Errorf("pg_hba line %q contains a line break", l)
		}
		b.WriteString(strings.TrimSpace(l))
		b.WriteByte('\n')
	}
	return b.String(), nil
}

// IncludeConf returns postgresql.conf's content cur with the line that
// includes pgdeck.conf appended, and false when cur already has it.
func IncludeConf(cur []byte) ([]byte, bool) {
	if bytes.Contains(cur, []byte(includeLine)) {
		return cur, false
	}
	if len(cur) > 0 && cur[len(cur)-1] != '\n' {
		cur = append(cur, '\n')
	}
	return append(cur, []byte("\n"+includeLine+"\n")...), true
}

// renderConf renders the cluster's pgdeck.conf (see RenderConf).
func (c *Cluster) renderConf(extra map[string]string, standby *StandbyOptions) (string, error) {
	s := ServerConf{ListenAddresses: c.ListenAddress, Port: c.Port, SocketDir: c.SocketDir}
	if standby != nil {
		s.PrimaryConninfo, s.PrimarySlot = standby.conninfo(), standby.Slot
	}
	return RenderConf(extra, s)
}

// renderHBA renders the cluster's pg_hba.conf (see RenderHBA).
func (c *Cluster) renderHBA(lines []string) (string, error) {
	return RenderHBA(c.superuser(), lines)
}

// writeSettings writes pgdeck.conf and pg_hba.conf into the data directory
// dir (DataDir, or a base backup before it becomes DataDir) and makes sure
// postgresql.conf includes pgdeck.conf; a standby also gets standby.signal
// and its passfile.
func (c *Cluster) writeSettings(dir string, opt InitOptions) error {
	conf, err := c.renderConf(opt.Conf, opt.Standby)
	if err != nil {
		return err
	}
	hba, err := c.renderHBA(opt.HBA)
	if err != nil {
		return err
	}
	if s := opt.Standby; s != nil {
		if err := c.writeFile(s.PassFile, []byte(s.passfileLine()), 0o600); err != nil {
			return err
		}
		if err := c.writeFile(filepath.Join(dir, standbySignal), nil, 0o600); err != nil {
			return err
		}
	}
	if err := c.writeFile(filepath.Join(dir, ConfFileName), []byte(conf), 0o600); err != nil {
		return err
	}
	if err := c.writeFile(filepath.Join(dir, "pg_hba.conf"), []byte(hba), 0o600); err != nil {
		return err
	}
	main := filepath.Join(dir, "postgresql.conf")
	cur, err := os.ReadFile(main)
	if err != nil {
		return err
	}
	cur, changed := IncludeConf(cur)
	if !changed {
		return nil
	}
	return c.writeFile(main, cur, 0o600)
}

// writeFile replaces path atomically with data, owned by the run-as user.
func (c *Cluster) writeFile(path string, data []byte, mode os.FileMode) error {
	return WriteFileAs(c.User, path, data, mode)
}

// WriteFileAs replaces path atomically (temporary file, then rename) with
// data, owned by the user.
func WriteFileAs(u RunAs, path string, data []byte, mode os.FileMode) error {
	tmp := path + ".pgdeck-tmp"
	// O_EXCL after removing a leftover: never write through a symlink that
	// the run-as user could have planted in its own folder.
	os.Remove(tmp)
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return fmt.Errorf("pgexec: write %s: %w", path, err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pgexec: write %s: %w", path, err)
	}
	// The umask may have narrowed the mode.
	if err := os.Chmod(tmp, mode); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pgexec: write %s: %w", path, err)
	}
	if err := u.chownOne(tmp); err != nil {
		os.Remove(tmp)
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("pgexec: write %s: %w", path, err)
	}
	return nil
}

// ReadPort returns the port written in dataDir's pgdeck.conf, the one
// record of where a local instance listens.
func ReadPort(dataDir string) (int, error) {
	b, err := os.ReadFile(filepath.Join(dataDir, ConfFileName))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", ConfFileName, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "port" {
			continue
		}
		port, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || port < 1 || port > 65535 {
			return 0, fmt.Errorf("%s: invalid port %q", ConfFileName, strings.TrimSpace(v))
		}
		return port, nil
	}
	return 0, fmt.Errorf("%s: no port", ConfFileName)
}
