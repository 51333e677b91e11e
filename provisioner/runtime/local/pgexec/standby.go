package pgexec

import (
	"errors"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// standbySignal is the file whose presence starts a server as a standby.
const standbySignal = "standby.signal"

// slotName is what PostgreSQL accepts as a replication slot name.
var slotName = regexp.MustCompile(`^[a-z0-9_]{1,63}$`)

// StandbyOptions make a cluster a streaming replica of a primary (see
// InitOptions.Standby).
type StandbyOptions struct {
	// Host and Port are where the primary accepts TCP replication
	// connections.
	Host string
	Port int
	// User is the primary's role with the REPLICATION attribute, and
	// Password its password; the password is written into PassFile only.
	User, Password string
	// Slot is the physical replication slot the caller made on the
	// primary; the base backup and then the standby stream through it.
	Slot string
	// ApplicationName names the standby in the primary's
	// pg_stat_replication.
	ApplicationName string
	// PassFile is the libpq password file (an absolute path outside the
	// data directory) that primary_conninfo names; it is written 0600,
	// owned by the run-as user.
	PassFile string
	// Progress, when set, is called while pg_basebackup copies, with the
	// bytes done and the total it expects.
	Progress func(done, total int64)
}

// validate checks the options before anything is written or run.
func (s *StandbyOptions) validate() error {
	switch {
	case s.Host == "" || strings.ContainsAny(s.Host, " '\\:\t\r\n\x00"):
		return fmt.Errorf("standby: invalid primary host %q", s.Host)
	case s.Port < 1 || s.Port > 65535:
		return fmt.Errorf("standby: primary port %d out of range 1-65535", s.Port)
	case !roleName.MatchString(s.User) || len(s.User) > 63:
		return fmt.Errorf("standby: invalid replication user %q", s.User)
	case s.Password == "":
		return errors.New("standby: the replication user has no password")
	case strings.ContainsAny(s.Password, "\r\n\x00"):
		return errors.New("standby: the replication password contains a line break")
	case !slotName.MatchString(s.Slot):
		return fmt.Errorf("standby: invalid replication slot name %q: use lower-case letters, digits and underscores", s.Slot)
	case strings.ContainsAny(s.ApplicationName, "\r\n\x00"):
		return fmt.Errorf("standby: invalid application name %q", s.ApplicationName)
	case !filepath.IsAbs(s.PassFile):
		return fmt.Errorf("standby: passfile %q must be an absolute path", s.PassFile)
	}
	return nil
}

// conninfo is primary_conninfo: the password stays in PassFile.
func (s *StandbyOptions) conninfo() string {
	ci := fmt.Sprintf("host=%s port=%d user=%s passfile=%s",
		dsnQuote(s.Host), s.Port, dsnQuote(s.User), dsnQuote(s.PassFile))
	if s.ApplicationName != "" {
		ci += " application_name=" + dsnQuote(s.ApplicationName)
	}
	return ci
}

// passfileLine is PassFile's content, in libpq's format
// host:port:database:user:password (any database, which includes the
// replication pseudo-database).
func (s *StandbyOptions) passfileLine() string {
	esc := strings.NewReplacer(`\`, `\\`, `:`, `\:`).Replace
	return esc(s.Host) + ":" + strconv.Itoa(s.Port) + ":*:" + esc(s.User) + ":" + esc(s.Password) + "\n"
}
