package monitor

import (
	"fmt"
	"strings"
	"time"

	"pgdeck/store"
)

// Default replica lag thresholds (DESIGN.md, Statuses): warning over 50 MB
// or 15 s, critical over 100 MB or 30 s.
const (
	DefaultReplicaWarnBytes = 50_000_000
	DefaultReplicaWarnLag   = 15 * time.Second
	DefaultReplicaCritBytes = 100_000_000
	DefaultReplicaCritLag   = 30 * time.Second
)

// ReplicaThresholds grade a streaming replica's lag: over a warning figure
// it is Lagging with severity warning, over a critical one critical. A
// figure equal to its threshold is not over it.
type ReplicaThresholds struct {
	WarnBytes int64
	WarnLag   time.Duration
	CritBytes int64
	CritLag   time.Duration
}

func (t ReplicaThresholds) withDefaults() ReplicaThresholds {
	if t.WarnBytes <= 0 {
		t.WarnBytes = DefaultReplicaWarnBytes
	}
	if t.WarnLag <= 0 {
		t.WarnLag = DefaultReplicaWarnLag
	}
	if t.CritBytes <= 0 {
		t.CritBytes = DefaultReplicaCritBytes
	}
	if t.CritLag <= 0 {
		t.CritLag = DefaultReplicaCritLag
	}
	return t
}

// ReplicaObservation is what one check saw of a replica and of its
// primary: the input of ReplicaHealth. The probe fills it; the rule is a
// pure function of it.
type ReplicaObservation struct {
	// EnvStopped: the operator stopped the environment, so a replica that
	// does not run is expected.
	EnvStopped bool

	// Reachable: the replica answered the monitoring queries. When not,
	// Down says why (the connection error, or what the runtime reports:
	// stopped, broken with the server's last log), and DownRunning that
	// the runtime sees its server running all the same.
	Reachable   bool
	Down        string
	DownRunning bool
	// InRecovery is pg_is_in_recovery() on the replica.
	InRecovery bool
	// ReceiverStatus is pg_stat_wal_receiver.status, "" when no WAL
	// receiver runs; ReceivedTLI its received_tli (0 unknown).
	ReceiverStatus string
	ReceivedTLI    int64
	// PauseState is pg_get_wal_replay_pause_state(): "not paused",
	// "pause requested" or "paused".
	PauseState string
	// ReplayBehindReceive: pg_last_wal_receive_lsn() > pg_last_wal_replay_lsn(),
	// the replica holds WAL it has not replayed yet; ReplayAgeSeconds is
	// then now() − pg_last_xact_replay_timestamp() (nil when unknown).
	ReplayBehindReceive bool
	ReplayAgeSeconds    *float64

	// PrimaryRead: the primary answered; when not, PrimaryDown says why.
	PrimaryRead bool
	PrimaryDown string
	// PrimaryTLI is the primary's timeline (0 unknown).
	PrimaryTLI int64
	// Sender: the primary's pg_stat_replication has the replica's row
	// (application_name <env>_replica); SenderState its state and
	// ReplayLagSeconds its replay_lag (nil when NULL).
	Sender           bool
	SenderState      string
	ReplayLagSeconds *float64
	// LagBytes is the primary's pg_current_wal_lsn() minus the replica's
	// replay LSN, nil when either could not be read.
	LagBytes *int64
	// Slot is the replica's slot name; SlotFound whether the primary has
	// it, with its active flag, wal_status and safe_wal_size.
	Slot         string
	SlotFound    bool
	SlotActive   bool
	WALStatus    string
	SafeWALBytes *int64

	// LogLine is the replica's latest server log line that tells why it
	// does not stream (see relevantLogLine), "" when there is none.
	LogLine string
}

// ReplicaVerdict is what ReplicaHealth makes of an observation.
type ReplicaVerdict struct {
	// Status is store.HealthOnline, HealthLagging, HealthOffline or
	// HealthError; Severity store.SeverityOK, SeverityWarning or
	// SeverityCritical.
	Status   string
	Severity string
	// Detail says what the status comes from, in words ("" when online
	// with nothing to add).
	Detail string
	// LagBytes and LagSeconds are the lag to show; nil when unknown. A
	// replica that does not stream has no time lag (never a false 0).
	LagBytes   *int64
	LagSeconds *float64
}

// replicaBreak is a replica log message that means replication is broken
// until someone acts, and what it means in words (capabilities §5.5).
type replicaBreak struct {
	match func(line string) bool
	what  string
}

func contains(subs ...string) func(string) bool {
	return func(line string) bool {
		for _, s := range subs {
			if !strings.Contains(line, s) {
				return false
			}
		}
		return true
	}
}

var replicaBreaks = []replicaBreak{
	{contains("requested WAL segment", "has already been removed"),
		"the primary removed WAL the replica still needs: rebuild the replica"},
	{contains("replication slot", "does not exist"),
		"the replica's replication slot does not exist on the primary: rebuild the replica"},
	{contains("is not in this server's history"),
		"timeline mismatch: the replica's history forked from the primary's (after a promotion or failover): rebuild the replica"},
	{contains("forked off current database system timeline"),
		"timeline mismatch: the replica's history forked from the primary's (after a promotion or failover): rebuild the replica"},
	{contains("insufficient parameter settings"),
		"recovery paused: the replica's settings (max_connections, max_worker_processes, …) are lower than the primary's"},
	{contains("password authentication failed"),
		"the primary refuses the replication role's password"},
	{contains("no pg_hba.conf entry for replication connection"),
		"the primary's pg_hba.conf has no replication line for the replica"},
}

// classifyReplicaLog says what a replica log line means when it is one of
// the messages of broken replication.
func classifyReplicaLog(line string) (string, bool) {
	if line == "" {
		return "", false
	}
	for _, b := range replicaBreaks {
		if b.match(line) {
			return b.what, true
		}
	}
	return "", false
}

// relevantLogLine picks from the tail of a replica's server log the line
// that tells why it does not stream: the last walreceiver failure or known
// break since the server last started, unless streaming started after it.
// "recovery has paused" alone is not one: an operator's pause logs it too.
func relevantLogLine(tail string) string {
	lines := strings.Split(tail, "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if strings.Contains(lines[i], "starting PostgreSQL") {
			lines = lines[i:]
			break
		}
	}
	found := ""
	for _, l := range lines {
		l = strings.TrimSpace(l)
		switch {
		case strings.Contains(l, "started streaming WAL"):
			found = ""
		case strings.Contains(l, "could not connect to the primary server"),
			strings.Contains(l, "could not receive data from WAL stream"),
			strings.Contains(l, "could not start WAL streaming"):
			found = l
		default:
			if _, ok := classifyReplicaLog(l); ok {
				found = l
			}
		}
	}
	return found
}

// ReplicaHealth is the replica's status rule:
//
//   - Error when replication is broken: the primary has no slot for it or
//     the slot is lost, the replica left recovery (promoted) or another
//     timeline, or its log says why it cannot stream (WAL removed, slot
//     missing, timeline, insufficient parameters, authentication); also a
//     replica that runs but does not answer the monitor.
//   - Offline when it is not streaming otherwise (stopped, crashed, no WAL
//     receiver, no sender on the primary): no time lag is given, so a
//     disconnected replica never reads as 0 s behind.
//   - Online or Lagging when it streams, graded by its lag against t: bytes
//     the primary wrote that the replica has not replayed, and seconds —
//     0 when nothing is left to replay (an idle primary reads 0, not the
//     age of the last replayed transaction), else replay_lag, else the age
//     of the last replayed transaction while received WAL waits.
func ReplicaHealth(o ReplicaObservation, t ReplicaThresholds) ReplicaVerdict {
	t = t.withDefaults()
	v := ReplicaVerdict{LagBytes: o.LagBytes}
	if v.LagBytes != nil && *v.LagBytes < 0 {
		v.LagBytes = ptr(int64(0))
	}
	streaming := o.Reachable && o.InRecovery && o.ReceiverStatus == "streaming" && (!o.PrimaryRead || o.Sender)
	fail := func(detail string) ReplicaVerdict {
		v.Status, v.Severity, v.Detail = store.HealthError, store.SeverityCritical, detail
		return v
	}
	slot := o.Slot
	if slot == "" {
		slot = "(none)"
	}

	// Broken whether or not the replica answers.
	switch {
	case o.PrimaryRead && !o.SlotFound:
		return fail(fmt.Sprintf("the primary has no replication slot %q: the replica cannot stream; rebuild it", slot))
	case o.PrimaryRead && o.WALStatus == "lost":
		return fail(fmt.Sprintf("replication slot %q is lost: the primary removed WAL the replica still needs; rebuild the replica", slot))
	case o.Reachable && !o.InRecovery:
		return fail("the replica is not in recovery: it was promoted and no longer follows the primary")
	case o.Reachable && o.PrimaryTLI > 0 && o.ReceivedTLI > 0 && o.ReceivedTLI != o.PrimaryTLI:
		return fail(fmt.Sprintf("timeline mismatch: the replica receives timeline %d, the primary is on %d; rebuild the replica", o.ReceivedTLI, o.PrimaryTLI))
	}
	if !streaming {
		if what, ok := classifyReplicaLog(o.LogLine); ok {
			return fail(what)
		}
	}

	if !o.Reachable {
		if o.DownRunning {
			return fail("runs but does not answer: " + o.Down)
		}
		v.Status, v.Severity, v.LagBytes = store.HealthOffline, store.SeverityCritical, nil
		if o.EnvStopped {
			v.Severity = store.SeverityOK
		}
		v.Detail = "not running: " + o.Down
		return v
	}

	if !streaming {
		v.Status, v.Severity = store.HealthOffline, store.SeverityCritical
		if o.EnvStopped {
			v.Severity = store.SeverityOK
		}
		var why string
		switch {
		case o.ReceiverStatus == "":
			why = "not streaming: no WAL receiver runs on the replica"
		case o.ReceiverStatus != "streaming":
			why = fmt.Sprintf("not streaming: its WAL receiver is %s", o.ReceiverStatus)
		default:
			why = "not streaming: the primary shows no connection from it (pg_stat_replication)"
		}
		if o.LogLine != "" {
			why += "; its log: " + o.LogLine
		}
		v.Detail = why
		return v
	}

	// Streaming: how far behind.
	var secs float64
	switch {
	case v.LagBytes != nil && *v.LagBytes == 0:
		secs = 0
	case o.ReplayLagSeconds != nil:
		secs = *o.ReplayLagSeconds
	case o.ReplayBehindReceive && o.ReplayAgeSeconds != nil:
		secs = *o.ReplayAgeSeconds
	}
	secs = max(secs, 0)
	v.LagSeconds = &secs

	over := func(bytes int64, lag time.Duration) string {
		var parts []string
		if v.LagBytes != nil && *v.LagBytes > bytes {
			parts = append(parts, formatBytes(bytes))
		}
		if secs > lag.Seconds() {
			parts = append(parts, lag.String())
		}
		return strings.Join(parts, " and ")
	}
	v.Status, v.Severity = store.HealthOnline, store.SeverityOK
	if what := over(t.CritBytes, t.CritLag); what != "" {
		v.Status, v.Severity = store.HealthLagging, store.SeverityCritical
		v.Detail = fmt.Sprintf("%s behind: over the critical threshold of %s", behind(v.LagBytes, secs), what)
	} else if what := over(t.WarnBytes, t.WarnLag); what != "" {
		v.Status, v.Severity = store.HealthLagging, store.SeverityWarning
		v.Detail = fmt.Sprintf("%s behind: over the warning threshold of %s", behind(v.LagBytes, secs), what)
	}
	var notes []string
	if o.PauseState != "" && o.PauseState != "not paused" {
		notes = append(notes, "replay is "+o.PauseState+" on the replica")
	}
	if !o.PrimaryRead {
		notes = append(notes, "the primary did not answer the monitor ("+o.PrimaryDown+"): the byte lag is unknown")
	}
	if len(notes) > 0 {
		if v.Detail != "" {
			notes = append([]string{v.Detail}, notes...)
		}
		v.Detail = strings.Join(notes, "; ")
	}
	return v
}

// behind says how far behind the replica is, in bytes and seconds.
func behind(bytes *int64, secs float64) string {
	s := fmt.Sprintf("%.1f s", secs)
	if bytes != nil {
		s = formatBytes(*bytes) + " (" + s + ")"
	}
	return s
}

// formatBytes prints a byte count with a binary unit (1.5 MB).
func formatBytes(n int64) string {
	const unit = 1000 // decimal, as the page shows sizes
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	s := fmt.Sprintf("%.1f", v)
	s = strings.TrimSuffix(s, ".0")
	return s + " " + string("kMGTP"[exp]) + "B"
}

func ptr[T any](v T) *T { return &v }
