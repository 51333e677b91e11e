package web

import "strings"

// Explanation is a health reason as a person would say it: what happened,
// what to do, and the technical detail for whoever digs further.
type Explanation struct {
	// Headline says what happened, in words ("The database stopped
	// unexpectedly").
	Headline string
	// Advice says what to do; empty when there is nothing to do.
	Advice string
	// Detail is the technical cause as the probe and the runtime reported
	// it, with the server's last log lines each on a line of its own; empty
	// when the headline is all there is.
	Detail string
}

// Explain turns a primary's stored status and reason (the monitor's probe and the
// runtime's words, which the store and the history keep as they are) into
// an Explanation. A reason of any other status, or of no known cause, keeps
// its words as the headline.
func Explain(status, reason string) Explanation {
	reason = strings.TrimSpace(reason)
	if status != "error" || reason == "" {
		return Explanation{Headline: reason}
	}
	e := Explanation{Detail: detail(reason)}
	// The probe prefixes what the runtime found with this when the operator
	// wants the database running; without it the operator stopped it.
	wanted := strings.HasPrefix(reason, "should be running but is not")
	again := "Restart the environment; if it fails again, read the log below."
	if !wanted {
		again = "Start the environment; if it fails again, read the log below."
	}
	switch {
	case strings.HasPrefix(reason, "server ") && strings.Contains(reason, " is offline: "):
		// The monitor's words for every component of an environment whose
		// server's engine does not answer.
		server, _, _ := strings.Cut(strings.TrimPrefix(reason, "server "), " ")
		e.Headline = "Server " + server + ", where this environment lives, is offline"
		e.Advice = "pgdeck cannot reach its Docker engine. Check that the engine runs and answers; the Servers page shows the server's status."
	case strings.HasPrefix(reason, "health check timed out"):
		e.Headline = "The database is too slow to answer"
		e.Advice = "It may be overloaded or stuck. If this lasts, restart the environment."
	case strings.Contains(reason, "stale postmaster.pid"):
		e.Headline = "The database stopped unexpectedly"
		e.Advice = again
	case strings.Contains(reason, "postmaster (pid") && strings.Contains(reason, "runs but"):
		e.Headline = "The database is running but does not answer"
		e.Advice = again
	case wanted && strings.HasSuffix(reason, "it is stopped"):
		e.Headline = "The database is stopped but should be running"
		e.Advice = "Restart the environment; if it stops again, read the log of its last job."
	case strings.Contains(reason, "instance does not exist"):
		e.Headline = "The database's files are missing"
		e.Advice = "Redeploy the environment to create it again, then restore a backup if data was lost."
	case strings.Contains(reason, "cannot open the stored password"):
		e.Headline = "pgdeck cannot read the database's password"
		e.Advice = "Check that pgdeck runs with the secret key it had when the environment was deployed."
	case isAuthText(reason):
		e.Headline = "pgdeck cannot log in to the database"
		e.Advice = "Redeploy the environment to reset its roles and access rules."
	case strings.Contains(reason, "SQLSTATE 53300") || strings.Contains(reason, "too many clients"):
		e.Headline = "The database accepts no more connections"
		e.Advice = "Close idle connections or raise max_connections; restarting the environment frees them."
	case strings.HasPrefix(reason, "runs but does not answer"):
		e.Headline = "The database is running but does not answer"
		e.Advice = "Restart the environment; if it fails again, read the detail below."
	case strings.Contains(reason, "the runtime cannot tell why"), strings.Contains(reason, "no address for it"):
		e.Headline = "pgdeck cannot reach the database"
		e.Advice = "Check that the host the database runs on is up; the detail below says what failed."
	case strings.Contains(reason, "cannot connect"):
		e.Headline = "pgdeck cannot connect to the database"
		e.Advice = "Restart the environment; if it fails again, read the detail below."
	case wanted:
		e.Headline = "The database is not running"
		e.Advice = again
	default:
		e.Headline = "The database has a problem"
		e.Advice = "Read the detail below; restarting the environment often helps."
	}
	return e
}

// isAuthText reports whether a connection error is the server refusing the
// role: a wrong password (28P01) or no pg_hba line for it (28000).
func isAuthText(reason string) bool {
	for _, s := range []string{"SQLSTATE 28P01", "SQLSTATE 28000", "password authentication failed", "no pg_hba.conf entry"} {
		if strings.Contains(reason, s) {
			return true
		}
	}
	return false
}

// detail puts the server's last log lines (which the runtime joins with
// " | " after "last log: ") each on a line of its own under the cause.
func detail(reason string) string {
	i := strings.Index(reason, "last log: ")
	if i < 0 {
		return reason
	}
	cause := strings.TrimRight(reason[:i], " ,;(")
	log := strings.TrimSpace(reason[i+len("last log: "):])
	// "(stale postmaster.pid, last log: …)": the parenthesis closes after the log.
	if strings.Count(cause, "(") > strings.Count(cause, ")") {
		log = strings.TrimSuffix(log, ")")
		cause += ")"
	}
	if log == "" || log == "empty" {
		return cause + "\nThe server log is empty."
	}
	return cause + "\nLast lines of the server log:\n" + strings.Join(strings.Split(log, " | "), "\n")
}
