package pgexec

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// confFileName is the file pgdeck owns inside the data directory; the
// generated postgresql.conf includes it at its end so that its values win
// over initdb's (ALTER SYSTEM, in postgresql.auto.conf, still wins over it).
const confFileName = "pgdeck.conf"

// includeLine is appended once to postgresql.conf.
const includeLine = "include_if_exists = '" + confFileName + "'\t# added by pgdeck"

// managedSettings are set from Cluster fields and may not come from
// InitOptions.Conf.
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

// renderConf renders pgdeck.conf: the settings from extra first (sorted),
// then the ones the cluster manages, then a standby's when standby is set.
func (c *Cluster) renderConf(extra map[string]string, standby *StandbyOptions) (string, error) {
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
	sockDir := c.SocketDir
	if strings.ContainsAny(sockDir, ", \t\"") {
		// unix_socket_directories is a comma-separated list whose items
		// may be double-quoted.
		sockDir = `"` + sockDir + `"`
	}
	fmt.Fprintf(&b, "listen_addresses = %s\n", quoteConfValue(c.ListenAddress))
	fmt.Fprintf(&b, "port = %d\n", c.Port)
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", quoteConfValue(sockDir))
	b.WriteString("unix_socket_permissions = 0700\n")
	if standby != nil {
		fmt.Fprintf(&b, "primary_conninfo = %s\n", quoteConfValue(standby.conninfo()))
		fmt.Fprintf(&b, "primary_slot_name = %s\n", quoteConfValue(standby.Slot))
		b.WriteString("hot_standby = on\n")
	}
	return b.String(), nil
}

// renderHBA renders pg_hba.conf: local trust for the superuser over the
// socket (which only the run-as user can open), then the caller's lines.
func (c *Cluster) renderHBA(lines []string) (string, error) {
	su := c.superuser()
	var b strings.Builder
	b.WriteString("# Written by pgdeck; edits here are overwritten.\n")
	b.WriteString("# TYPE  DATABASE     USER  ADDRESS  METHOD\n")
	fmt.Fprintf(&b, "local   all          %s  trust\n", su)
	fmt.Fprintf(&b, "local   replication  %s  trust\n", su)
	for _, l := range lines {
		if strings.ContainsAny(l, "\n\r\x00") {
			return "", fmt.Errorf("pg_hba line %q contains a line break", l)
		}
		b.WriteString(strings.TrimSpace(l))
		b.WriteByte('\n')
	}
	return b.String(), nil
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
	if err := c.writeFile(filepath.Join(dir, confFileName), []byte(conf), 0o600); err != nil {
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
	if strings.Contains(string(cur), includeLine) {
		return nil
	}
	if len(cur) > 0 && cur[len(cur)-1] != '\n' {
		cur = append(cur, '\n')
	}
	cur = append(cur, []byte("\n"+includeLine+"\n")...)
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
	b, err := os.ReadFile(filepath.Join(dataDir, confFileName))
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", confFileName, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, "=")
		if !ok || strings.TrimSpace(k) != "port" {
			continue
		}
		port, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil || port < 1 || port > 65535 {
			return 0, fmt.Errorf("%s: invalid port %q", confFileName, strings.TrimSpace(v))
		}
		return port, nil
	}
	return 0, fmt.Errorf("%s: no port", confFileName)
}
