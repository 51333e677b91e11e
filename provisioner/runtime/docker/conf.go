package docker

import (
	"errors"
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// confFileName is the file pgdeck owns inside the data folder; the
// generated postgresql.conf includes it at its end so that its values win
// over initdb's (ALTER SYSTEM still wins over it).
const confFileName = "pgdeck.conf"

// includeLine is appended once to postgresql.conf.
const includeLine = "include_if_exists = '" + confFileName + "'\t# added by pgdeck"

// managedSettings are set by the runtime and may not come from spec.Conf.
var managedSettings = map[string]bool{
	"listen_addresses": true, "port": true, "unix_socket_directories": true,
	"unix_socket_permissions": true, "data_directory": true, "config_file": true,
	"hba_file": true, "ident_file": true,
	"primary_conninfo": true, "primary_slot_name": true, "hot_standby": true,
}

var (
	settingName = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)
	roleName    = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	slotName    = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
)

// standby is what a replica streams from, through the environment's
// network.
type standby struct {
	host           string
	port           int
	user, password string
	slot           string
	appName        string
}

func quoteConfValue(v string) string {
	return "'" + strings.ReplaceAll(strings.ReplaceAll(v, `\`, `\\`), "'", "''") + "'"
}

// dsnQuote quotes a libpq connection string value.
func dsnQuote(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

// conninfo is primary_conninfo: the password stays in the passfile.
func (s *standby) conninfo() string {
	return fmt.Sprintf("host=%s port=%d user=%s passfile=%s application_name=%s",
		dsnQuote(s.host), s.port, dsnQuote(s.user), dsnQuote(passFile), dsnQuote(s.appName))
}

// passfileLine is the passfile's content in libpq's format
// host:port:database:user:password (any database, replication included).
func (s *standby) passfileLine() string {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace
	return esc(s.host) + ":" + strconv.Itoa(s.port) + ":*:" + esc(s.user) + ":" + esc(s.password) + "\n"
}

func (s *standby) validate() error {
	switch {
	case !roleName.MatchString(s.user) || len(s.user) > 63:
		return fmt.Errorf("invalid replication user %q", s.user)
	case strings.ContainsAny(s.password, "\r\n\x00"):
		return errors.New("the replication password contains a line break")
	case !slotName.MatchString(s.slot):
		return fmt.Errorf("invalid replication slot name %q: use lower-case letters, digits and underscores", s.slot)
	}
	return nil
}

// renderConf renders pgdeck.conf: spec.Conf (sorted), then what the runtime
// manages (every address inside the container, the port, the socket), then
// a standby's settings.
func renderConf(extra map[string]string, port int, sb *standby) (string, error) {
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
	// The container's own network namespace: '*' is its env network
	// address (and loopback); the host reaches it through the published
	// port only.
	b.WriteString("listen_addresses = '*'\n")
	fmt.Fprintf(&b, "port = %d\n", port)
	fmt.Fprintf(&b, "unix_socket_directories = %s\n", quoteConfValue(socketDir))
	b.WriteString("unix_socket_permissions = 0700\n")
	if sb != nil {
		fmt.Fprintf(&b, "primary_conninfo = %s\n", quoteConfValue(sb.conninfo()))
		fmt.Fprintf(&b, "primary_slot_name = %s\n", quoteConfValue(sb.slot))
		b.WriteString("hot_standby = on\n")
	}
	return b.String(), nil
}

// renderHBA renders pg_hba.conf: local trust for the superuser over the
// socket (which only the postgres user in the container can open), then
// the caller's lines.
func renderHBA(lines []string) (string, error) {
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
