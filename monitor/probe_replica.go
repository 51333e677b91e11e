package monitor

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"

	"pgdeck/provisioner/runtime"
	"pgdeck/store"
	"pgdeck/store/secret"
)

// replicaLogLines is how much of the replica's server log is read to tell
// why it does not stream.
const replicaLogLines = 50

// logTailer is implemented by runtimes that can show an instance's server
// log (the local one). Without it, a replica that does not stream is
// explained from what the servers report alone.
type logTailer interface {
	LogTail(id runtime.InstanceID, n int) (string, error)
}

// replicaProbe checks an environment's streaming replica: one connection
// to the primary (its WAL position, the replica's pg_stat_replication row
// and slot) and one to the replica (recovery, WAL receiver, replay), each
// one round trip, as the monitoring role; ReplicaHealth makes the status.
// When the replica does not answer, the runtime says why, and its log why
// it does not stream. Environments without a replica instance are Absent.
type replicaProbe struct {
	rt       runtime.Runtime
	box      *secret.Box
	th       ReplicaThresholds
	conns    *conns
	connBase *pgx.ConnConfig
	connErr  error
}

func newReplicaProbe(rt runtime.Runtime, box *secret.Box, th ReplicaThresholds, cs *conns) *replicaProbe {
	p := &replicaProbe{rt: rt, box: box, th: th.withDefaults(), conns: cs}
	p.connBase, p.connErr = newConnBase()
	return p
}

// Component implements Probe.
func (p *replicaProbe) Component() string { return store.ComponentReplica }

// Present reports whether the environment has a replica instance.
func (p *replicaProbe) Present(e store.Environment) bool { return e.ReplicaPort != nil }

// Check implements Probe.
func (p *replicaProbe) Check(ctx context.Context, e store.Environment) Result {
	if !p.Present(e) {
		return Result{Absent: true}
	}
	if p.connErr != nil {
		return Result{Status: store.HealthError, Reason: fmt.Sprintf("connection settings: %v", p.connErr)}
	}
	if e.MonitorUser == "" || e.MonitorPassword == nil {
		return Result{Status: store.HealthError, Reason: "no monitoring role recorded to read the replica: redeploy the environment"}
	}
	me := login{user: e.MonitorUser, sealed: e.MonitorPassword, db: "postgres"}
	o := ReplicaObservation{EnvStopped: e.DesiredState == desiredStopped, Slot: runtime.ReplicaSlot}
	f := &Figures{}

	// The primary first, and at most half the time: its current WAL
	// position must not be read after the replica's replay position (WAL
	// written in between would count as lag), and a hung primary must
	// leave time to read the replica.
	pctx, cancel := halfTime(ctx)
	pr, perr := p.readPrimary(pctx, e, me)
	cancel()
	if perr == nil {
		o.PrimaryRead, o.PrimaryTLI = true, pr.tli
		o.Sender, o.SenderState, o.ReplayLagSeconds = pr.sender, pr.senderState, pr.replayLag
		o.SlotFound, o.SlotActive, o.WALStatus, o.SafeWALBytes = pr.slotFound, pr.slotActive, pr.walStatus, pr.safeWAL
	} else {
		o.PrimaryDown = perr.Error()
	}

	id := runtime.InstanceID{Env: e.Name, Role: runtime.RoleReplica}
	rr, rerr := p.readReplica(ctx, e, id, me)
	if ctx.Err() != nil {
		// Out of time: the monitor records it as such.
		err := rerr
		if err == nil {
			err = perr
		}
		return Result{Status: store.HealthError, Reason: fmt.Sprint(err)}
	}
	var replay *int64
	if rerr == nil {
		o.Reachable, o.InRecovery = true, rr.inRecovery
		o.ReceiverStatus, o.ReceivedTLI, o.PauseState = rr.receiverStatus, rr.receivedTLI, rr.pauseState
		o.ReplayBehindReceive = rr.receiveLSN != nil && rr.replayLSN != nil && *rr.receiveLSN > *rr.replayLSN
		o.ReplayAgeSeconds = rr.replayAge
		f.PGVersion, f.ServerStartedAt = rr.version, rr.startedAt
		replay = rr.replayLSN
	} else {
		o.Down, o.DownRunning = p.whyDown(ctx, id, rerr)
	}
	if perr == nil && pr.currentLSN != nil {
		// The replica's own replay position is fresher than the one it
		// last reported to the primary (every wal_receiver_status_interval
		// when idle): an idle primary then reads 0.
		if replay == nil {
			replay = pr.senderReplayLSN
		}
		if replay != nil {
			o.LagBytes = ptr(max(*pr.currentLSN-*replay, 0))
		}
	}
	if !(o.Reachable && o.ReceiverStatus == "streaming") {
		if lt, ok := p.rt.(logTailer); ok {
			if tail, err := lt.LogTail(id, replicaLogLines); err == nil {
				o.LogLine = relevantLogLine(tail)
			}
		}
	}

	v := ReplicaHealth(o, p.th)
	f.LagBytes, f.LagSeconds = v.LagBytes, v.LagSeconds
	details, err := json.Marshal(store.ReplicaDetails{SafeWALBytes: o.SafeWALBytes, WALStatus: o.WALStatus,
		ReceiverStatus: o.ReceiverStatus, Detail: v.Detail, LogLine: o.LogLine})
	if err != nil {
		return Result{Status: store.HealthError, Reason: fmt.Sprintf("details: %v", err)}
	}
	f.Details = details
	r := Result{Status: v.Status, Severity: v.Severity, Figures: f}
	if v.Status != store.HealthOnline {
		r.Reason = v.Detail
	}
	return r
}

// halfTime returns ctx bounded to half of the time it has left.
func halfTime(ctx context.Context) (context.Context, context.CancelFunc) {
	deadline, ok := ctx.Deadline()
	if !ok {
		return context.WithCancel(ctx)
	}
	return context.WithTimeout(ctx, time.Until(deadline)/2)
}

// whyDown asks the runtime why the replica did not answer: stopped,
// missing, broken (with its reason), or running all the same.
func (p *replicaProbe) whyDown(ctx context.Context, id runtime.InstanceID, err error) (string, bool) {
	st, serr := p.rt.Status(ctx, id)
	if serr != nil {
		return fmt.Sprintf("%v; the runtime cannot tell why: %v", err, serr), false
	}
	switch st.State {
	case runtime.StateStopped:
		return "it is stopped", false
	case runtime.StateMissing:
		return "its instance does not exist", false
	case runtime.StateBroken:
		return st.Reason, false
	default:
		return err.Error(), true
	}
}

// on runs fn on a connection to the instance as l: the kept one, or a new
// one.
func (p *replicaProbe) on(ctx context.Context, e store.Environment, id runtime.InstanceID, l login, fn func(*pgx.Conn) error) error {
	host, port := p.rt.Address(id)
	if port == 0 {
		return errors.New("the runtime knows no address for it")
	}
	dial := func(ctx context.Context) (*pgx.Conn, error) {
		conn, err := dial(ctx, p.connBase, p.box, host, port, l)
		if err != nil {
			return nil, fmt.Errorf("connect to %s at %s: %s", id.Role, net.JoinHostPort(host, strconv.Itoa(port)), cause(err))
		}
		return conn, nil
	}
	return p.conns.use(ctx, l.key(e.ID, host, port), dial, fn)
}

// primaryView is what the primary says of its replica. LSNs are bytes
// from 0/0.
type primaryView struct {
	currentLSN *int64
	tli        int64
	// The replica's pg_stat_replication row.
	sender          bool
	senderState     string
	senderReplayLSN *int64
	replayLag       *float64
	// Its slot.
	slotFound, slotActive bool
	walStatus             string
	safeWAL               *int64
}

// readPrimary reads the primary's WAL position and timeline, the
// replica's pg_stat_replication row and its slot, in one query.
func (p *replicaProbe) readPrimary(ctx context.Context, e store.Environment, l login) (primaryView, error) {
	var v primaryView
	err := p.on(ctx, e, runtime.InstanceID{Env: e.Name, Role: runtime.RolePrimary}, l, func(conn *pgx.Conn) error {
		v = primaryView{}
		if err := p.queryPrimary(ctx, conn, e, &v); err != nil {
			return fmt.Errorf("query the primary: %s", cause(err))
		}
		return nil
	})
	return v, err
}

// queryPrimary reads the primary's side of the replica into v.
func (p *replicaProbe) queryPrimary(ctx context.Context, conn *pgx.Conn, e store.Environment, v *primaryView) error {
	// pid, not state, says whether the row exists: a role without
	// pg_read_all_stats sees the row with every other column NULL.
	return conn.QueryRow(ctx, `SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::int8,
			(SELECT timeline_id FROM pg_control_checkpoint())::int8,
			r.pid IS NOT NULL, coalesce(r.state, ''),
			pg_wal_lsn_diff(r.replay_lsn, '0/0')::int8, extract(epoch FROM r.replay_lag)::float8,
			s.slot_name IS NOT NULL, coalesce(s.active, false), coalesce(s.wal_status, ''), s.safe_wal_size
		FROM (SELECT 1) AS one
		LEFT JOIN LATERAL (SELECT pid, state, replay_lsn, replay_lag FROM pg_stat_replication
			WHERE application_name = $1 ORDER BY backend_start DESC LIMIT 1) AS r ON true
		LEFT JOIN pg_replication_slots AS s ON s.slot_name = $2`,
		runtime.ReplicaApplicationName(e.Name), runtime.ReplicaSlot).
		Scan(&v.currentLSN, &v.tli, &v.sender, &v.senderState, &v.senderReplayLSN, &v.replayLag,
			&v.slotFound, &v.slotActive, &v.walStatus, &v.safeWAL)
}

// replicaView is what the replica says of itself. LSNs are bytes from 0/0.
type replicaView struct {
	inRecovery     bool
	version        string
	startedAt      *time.Time
	receiverStatus string
	receivedTLI    int64
	receiveLSN     *int64
	replayLSN      *int64
	replayAge      *float64
	pauseState     string
}

// readReplica reads the replica's recovery, WAL receiver and replay state
// in one query.
func (p *replicaProbe) readReplica(ctx context.Context, e store.Environment, id runtime.InstanceID, l login) (replicaView, error) {
	var v replicaView
	err := p.on(ctx, e, id, l, func(conn *pgx.Conn) error {
		v = replicaView{}
		if err := queryReplica(ctx, conn, &v); err != nil {
			return fmt.Errorf("query the replica: %s", cause(err))
		}
		return nil
	})
	return v, err
}

// queryReplica reads the replica's side into v.
func queryReplica(ctx context.Context, conn *pgx.Conn, v *replicaView) error {
	// pg_stat_wal_receiver has a row only while a WAL receiver runs.
	// pg_get_wal_replay_pause_state() fails outside recovery.
	v.startedAt = new(time.Time)
	return conn.QueryRow(ctx, `SELECT pg_is_in_recovery(), current_setting('server_version'), pg_postmaster_start_time(),
			coalesce(w.status, ''), coalesce(w.received_tli, 0)::int8,
			pg_wal_lsn_diff(pg_last_wal_receive_lsn(), '0/0')::int8,
			pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::int8,
			extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8,
			CASE WHEN pg_is_in_recovery() THEN pg_get_wal_replay_pause_state() ELSE '' END
		FROM (SELECT 1) AS one LEFT JOIN pg_stat_wal_receiver AS w ON true`).
		Scan(&v.inRecovery, &v.version, v.startedAt, &v.receiverStatus, &v.receivedTLI,
			&v.receiveLSN, &v.replayLSN, &v.replayAge, &v.pauseState)
}
