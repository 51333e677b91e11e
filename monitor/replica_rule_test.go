package monitor

import (
	"strings"
	"testing"
	"time"

	"pgdeck/store"
)

func TestReplicaHealth(t *testing.T) {
	const mb = 1_000_000
	th := ReplicaThresholds{WarnBytes: 50 * mb, WarnLag: 15 * time.Second, CritBytes: 100 * mb, CritLag: 30 * time.Second}
	// streaming is a replica in sync with an idle primary.
	streaming := func() ReplicaObservation {
		return ReplicaObservation{
			Reachable: true, InRecovery: true, ReceiverStatus: "streaming", ReceivedTLI: 1, PauseState: "not paused",
			PrimaryRead: true, PrimaryTLI: 1, Sender: true, SenderState: "streaming",
			LagBytes: ptr(int64(0)), Slot: "pgdeck_replica", SlotFound: true, SlotActive: true, WALStatus: "reserved",
		}
	}
	with := func(change func(*ReplicaObservation)) ReplicaObservation {
		o := streaming()
		change(&o)
		return o
	}
	cases := []struct {
		name     string
		obs      ReplicaObservation
		status   string
		severity string
		// detail is a part of the detail ("" wants none at all).
		detail string
		bytes  *int64
		secs   *float64
	}{
		{name: "in sync", obs: streaming(), status: store.HealthOnline, severity: store.SeverityOK, bytes: ptr(int64(0)), secs: ptr(0.0)},
		{name: "idle primary: the old replay timestamp and a lingering replay_lag do not count",
			obs: with(func(o *ReplicaObservation) {
				o.ReplayAgeSeconds, o.ReplayLagSeconds = ptr(3600.0), ptr(0.4)
			}),
			status: store.HealthOnline, severity: store.SeverityOK, bytes: ptr(int64(0)), secs: ptr(0.0)},
		{name: "a little behind", obs: with(func(o *ReplicaObservation) { o.LagBytes, o.ReplayLagSeconds = ptr(int64(4096)), ptr(0.2) }),
			status: store.HealthOnline, severity: store.SeverityOK, bytes: ptr(int64(4096)), secs: ptr(0.2)},
		{name: "exactly at the warning bytes is not over", obs: with(func(o *ReplicaObservation) { o.LagBytes = ptr(int64(50 * mb)) }),
			status: store.HealthOnline, severity: store.SeverityOK, bytes: ptr(int64(50 * mb)), secs: ptr(0.0)},
		{name: "over the warning bytes", obs: with(func(o *ReplicaObservation) { o.LagBytes = ptr(int64(60 * mb)) }),
			status: store.HealthLagging, severity: store.SeverityWarning, detail: "60 MB (0.0 s) behind: over the warning threshold of 50 MB",
			bytes: ptr(int64(60 * mb)), secs: ptr(0.0)},
		{name: "over the warning seconds (replay_lag)", obs: with(func(o *ReplicaObservation) { o.LagBytes, o.ReplayLagSeconds = ptr(int64(mb)), ptr(16.0) }),
			status: store.HealthLagging, severity: store.SeverityWarning, detail: "over the warning threshold of 15s", secs: ptr(16.0)},
		{name: "over the critical bytes", obs: with(func(o *ReplicaObservation) { o.LagBytes = ptr(int64(101 * mb)) }),
			status: store.HealthLagging, severity: store.SeverityCritical, detail: "over the critical threshold of 100 MB"},
		{name: "over the critical seconds, replay paused: age of the last replayed transaction",
			obs: with(func(o *ReplicaObservation) {
				o.LagBytes, o.PauseState, o.ReplayBehindReceive, o.ReplayAgeSeconds = ptr(int64(mb)), "paused", true, ptr(45.0)
			}),
			status: store.HealthLagging, severity: store.SeverityCritical, detail: "replay is paused on the replica", secs: ptr(45.0)},
		{name: "behind but everything received is replayed: WAL in flight", obs: with(func(o *ReplicaObservation) {
			o.LagBytes, o.ReplayAgeSeconds = ptr(int64(8192)), ptr(900.0)
		}),
			status: store.HealthOnline, severity: store.SeverityOK, secs: ptr(0.0)},
		{name: "negative byte lag (read race) is 0", obs: with(func(o *ReplicaObservation) { o.LagBytes = ptr(int64(-120)) }),
			status: store.HealthOnline, severity: store.SeverityOK, bytes: ptr(int64(0)), secs: ptr(0.0)},
		{name: "paused below the thresholds stays online, said in the detail", obs: with(func(o *ReplicaObservation) { o.PauseState = "paused" }),
			status: store.HealthOnline, severity: store.SeverityOK, detail: "replay is paused on the replica"},
		{name: "primary unreadable: streaming judged on the replica",
			obs: with(func(o *ReplicaObservation) {
				o.PrimaryRead, o.PrimaryDown, o.Sender, o.SlotFound, o.LagBytes = false, "timed out", false, false, nil
			}),
			status: store.HealthOnline, severity: store.SeverityOK, detail: "the byte lag is unknown", secs: ptr(0.0)},

		{name: "killed replica", obs: with(func(o *ReplicaObservation) {
			o.Reachable, o.Down, o.Sender, o.SlotActive = false, "postmaster is not running (stale postmaster.pid)", false, false
			o.LagBytes = ptr(int64(0))
		}),
			status: store.HealthOffline, severity: store.SeverityCritical, detail: "not running: postmaster is not running"},
		{name: "stopped with its environment", obs: with(func(o *ReplicaObservation) {
			o.Reachable, o.Down, o.EnvStopped, o.Sender = false, "it is stopped", true, false
		}),
			status: store.HealthOffline, severity: store.SeverityOK, detail: "not running: it is stopped"},
		{name: "runs but refuses the monitor", obs: with(func(o *ReplicaObservation) {
			o.Reachable, o.DownRunning, o.Down = false, true, "password authentication failed"
		}),
			status: store.HealthError, severity: store.SeverityCritical, detail: "runs but does not answer: password authentication failed"},
		{name: "no WAL receiver, primary down (log says so)", obs: with(func(o *ReplicaObservation) {
			o.ReceiverStatus, o.Sender, o.PrimaryRead = "", false, false
			o.LogLine = `FATAL:  could not connect to the primary server: connection refused`
		}),
			status: store.HealthOffline, severity: store.SeverityCritical, detail: "no WAL receiver runs on the replica; its log: FATAL:  could not connect"},
		{name: "no sender on the primary: disconnected, no time lag", obs: with(func(o *ReplicaObservation) {
			o.Sender, o.LagBytes = false, ptr(int64(0))
		}),
			status: store.HealthOffline, severity: store.SeverityCritical, detail: "the primary shows no connection", bytes: ptr(int64(0))},
		{name: "receiver restarting", obs: with(func(o *ReplicaObservation) { o.ReceiverStatus = "waiting" }),
			status: store.HealthOffline, severity: store.SeverityCritical, detail: "its WAL receiver is waiting"},

		{name: "slot lost", obs: with(func(o *ReplicaObservation) { o.WALStatus, o.ReceiverStatus = "lost", "" }),
			status: store.HealthError, severity: store.SeverityCritical, detail: `replication slot "pgdeck_replica" is lost`},
		{name: "slot dropped", obs: with(func(o *ReplicaObservation) { o.SlotFound, o.WALStatus, o.ReceiverStatus = false, "", "" }),
			status: store.HealthError, severity: store.SeverityCritical, detail: `the primary has no replication slot "pgdeck_replica"`},
		{name: "WAL removed (log)", obs: with(func(o *ReplicaObservation) {
			o.ReceiverStatus = ""
			o.LogLine = "FATAL:  could not receive data from WAL stream: ERROR:  requested WAL segment 000000010000000000000003 has already been removed"
		}),
			status: store.HealthError, severity: store.SeverityCritical, detail: "the primary removed WAL the replica still needs"},
		{name: "timeline mismatch (log)", obs: with(func(o *ReplicaObservation) {
			o.ReceiverStatus = ""
			o.LogLine = "FATAL:  could not start WAL streaming: ERROR:  requested starting point 0/5000000 on timeline 1 is not in this server's history"
		}),
			status: store.HealthError, severity: store.SeverityCritical, detail: "timeline mismatch"},
		{name: "timeline mismatch (received_tli)", obs: with(func(o *ReplicaObservation) { o.ReceivedTLI, o.PrimaryTLI = 1, 2 }),
			status: store.HealthError, severity: store.SeverityCritical, detail: "receives timeline 1, the primary is on 2"},
		{name: "insufficient parameter settings (log)", obs: with(func(o *ReplicaObservation) {
			o.PauseState, o.ReceiverStatus = "paused", "stopping"
			o.LogLine = "WARNING:  hot standby is not possible because of insufficient parameter settings"
		}),
			status: store.HealthError, severity: store.SeverityCritical, detail: "recovery paused: the replica's settings"},
		{name: "an old break in the log does not matter while streaming", obs: with(func(o *ReplicaObservation) {
			o.LogLine = `FATAL:  could not start WAL streaming: ERROR:  replication slot "pgdeck_replica" does not exist`
		}),
			status: store.HealthOnline, severity: store.SeverityOK},
		{name: "promoted", obs: with(func(o *ReplicaObservation) { o.InRecovery, o.ReceiverStatus = false, "" }),
			status: store.HealthError, severity: store.SeverityCritical, detail: "not in recovery"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			v := ReplicaHealth(tc.obs, th)
			if v.Status != tc.status || v.Severity != tc.severity {
				t.Errorf("status %s/%s, want %s/%s (detail %q)", v.Status, v.Severity, tc.status, tc.severity, v.Detail)
			}
			if tc.detail == "" && tc.status == store.HealthOnline && tc.obs.PrimaryRead && tc.obs.PauseState != "paused" && v.Detail != "" {
				t.Errorf("detail %q, want none", v.Detail)
			}
			if !strings.Contains(v.Detail, tc.detail) {
				t.Errorf("detail %q does not contain %q", v.Detail, tc.detail)
			}
			if tc.bytes != nil && (v.LagBytes == nil || *v.LagBytes != *tc.bytes) {
				t.Errorf("lag bytes %v, want %d", deref(v.LagBytes), *tc.bytes)
			}
			if tc.secs != nil && (v.LagSeconds == nil || *v.LagSeconds != *tc.secs) {
				t.Errorf("lag seconds %v, want %v", deref(v.LagSeconds), *tc.secs)
			}
			streams := v.Status == store.HealthOnline || v.Status == store.HealthLagging
			if !streams && v.LagSeconds != nil {
				t.Errorf("a replica that does not stream has lag seconds %v, want none", *v.LagSeconds)
			}
			if streams && v.LagSeconds == nil {
				t.Error("a streaming replica has no lag seconds")
			}
		})
	}
}

func TestReplicaThresholdDefaults(t *testing.T) {
	got := ReplicaThresholds{}.withDefaults()
	want := ReplicaThresholds{WarnBytes: 50_000_000, WarnLag: 15 * time.Second, CritBytes: 100_000_000, CritLag: 30 * time.Second}
	if got != want {
		t.Errorf("defaults %+v, want %+v", got, want)
	}
}

func TestRelevantLogLine(t *testing.T) {
	const (
		start   = "2024-05-01 10:00:00 UTC [10] LOG:  starting PostgreSQL 15.6 on x86_64"
		ready   = "2024-05-01 10:00:01 UTC [10] LOG:  database system is ready to accept read-only connections"
		streams = "2024-05-01 10:00:01 UTC [14] LOG:  started streaming WAL from primary at 0/3000000 on timeline 1"
		noSlot  = `2024-05-01 10:00:01 UTC [14] FATAL:  could not start WAL streaming: ERROR:  replication slot "pgdeck_replica" does not exist`
		refused = "2024-05-01 10:00:06 UTC [15] FATAL:  could not connect to the primary server: connection to server at \"127.0.0.1\", port 5432 failed: Connection refused"
	)
	cases := []struct {
		name, tail, want string
	}{
		{"empty", "", ""},
		{"streaming", strings.Join([]string{start, ready, streams}, "\n"), ""},
		{"slot missing", strings.Join([]string{start, ready, noSlot}, "\n"), noSlot},
		{"the last failure wins", strings.Join([]string{start, noSlot, refused}, "\n"), refused},
		{"streaming again after a failure", strings.Join([]string{start, refused, streams}, "\n"), ""},
		{"an operator's pause is no failure", strings.Join([]string{start, streams,
			"2024-05-01 10:00:09 UTC [12] LOG:  recovery has paused"}, "\n"), ""},
		{"a failure before the last start is forgotten", strings.Join([]string{start, noSlot, start, ready}, "\n"), ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := relevantLogLine(tc.tail); got != tc.want {
				t.Errorf("got %q, want %q", got, tc.want)
			}
		})
	}
}

func TestFormatBytes(t *testing.T) {
	for n, want := range map[int64]string{0: "0 B", 999: "999 B", 1000: "1 kB", 1500: "1.5 kB", 50_000_000: "50 MB", 3_000_000_000: "3 GB"} {
		if got := formatBytes(n); got != want {
			t.Errorf("formatBytes(%d) = %q, want %q", n, got, want)
		}
	}
}

func deref[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}
