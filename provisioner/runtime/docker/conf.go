package docker

import (
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"pgdeck/provisioner/runtime/local/pgexec"
)

var (
	roleName = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)
	slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)
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

// renderConf renders pgdeck.conf (see pgexec.RenderConf): spec.Conf, then
// what the runtime manages (every address inside the container, the port,
// the socket), then a standby's settings.
func renderConf(extra map[string]string, port int, sb *standby) (string, error) {
	s := pgexec.ServerConf{
		// The container's own network namespace: '*' is its env network
		// address (and loopback); the host reaches it through the published
		// port only.
		ListenAddresses: "*",
		Port:            port,
		SocketDir:       socketDir,
	}
	if sb != nil {
		s.PrimaryConninfo, s.PrimarySlot = sb.conninfo(), sb.slot
	}
	return pgexec.RenderConf(extra, s)
}
