package store

import "encoding/json"

// The shapes of Health.Details, written by the monitor and read by the web
// layer: the store holds the one definition both sides use.

// PrimaryDetails are the primary's figures beyond the common ones.
type PrimaryDetails struct {
	// Settings are the running server's pg_settings rows of the
	// parameters pgdeck tunes, by name: what is applied, read back.
	Settings map[string]ServerSetting `json:"settings,omitempty"`
}

// ServerSetting is one pg_settings row as the running server reports it.
type ServerSetting struct {
	// Value is current_setting(name): the value as SHOW prints it (128MB).
	Value          string   `json:"value"`
	Setting        string   `json:"setting"`
	Unit           string   `json:"unit,omitempty"`
	VarType        string   `json:"vartype"`
	MinVal         string   `json:"min_val,omitempty"`
	MaxVal         string   `json:"max_val,omitempty"`
	EnumVals       []string `json:"enumvals,omitempty"`
	Context        string   `json:"context"`
	PendingRestart bool     `json:"pending_restart,omitempty"`
}

// PoolerDetails are the pooler's figures from PgBouncer's console, for the
// environment's database (SHOW POOLS, SHOW STATS, SHOW CONFIG).
type PoolerDetails struct {
	Database      string `json:"database"`
	PoolMode      string `json:"pool_mode"`
	PoolSize      int    `json:"pool_size"`
	MaxClientConn int    `json:"max_client_conn"`
	ClActive      int    `json:"cl_active"`
	ClWaiting     int    `json:"cl_waiting"`
	SvActive      int    `json:"sv_active"`
	SvIdle        int    `json:"sv_idle"`
	// MaxWaitSeconds is how long the oldest waiting client has waited.
	MaxWaitSeconds float64 `json:"maxwait_seconds"`
	// AvgQueryMicros and AvgXactMicros are SHOW STATS's averages.
	AvgQueryMicros int64 `json:"avg_query_us"`
	AvgXactMicros  int64 `json:"avg_xact_us"`
	// TotalXacts is SHOW STATS's total_xact_count.
	TotalXacts int64 `json:"total_xact_count"`
}

// ReplicaDetails are the replica's figures beyond its lag (Health.LagBytes,
// LagSeconds) and severity (Health.Severity).
type ReplicaDetails struct {
	// SafeWALBytes is pg_replication_slots.safe_wal_size of the replica's
	// slot on the primary: WAL the primary may still write before the
	// replica would be lost; nil when unlimited or unknown.
	SafeWALBytes *int64 `json:"safe_wal_bytes,omitempty"`
	// WALStatus is the slot's wal_status (reserved, extended, unreserved,
	// lost).
	WALStatus string `json:"wal_status,omitempty"`
	// ReceiverStatus is pg_stat_wal_receiver.status on the replica
	// (streaming, …), empty when no WAL receiver runs.
	ReceiverStatus string `json:"receiver_status,omitempty"`
	// Detail is what an Error or Offline status comes from, in words, and
	// LogLine the replica's relevant server log line.
	Detail  string `json:"detail,omitempty"`
	LogLine string `json:"log_line,omitempty"`
}

// DecodeDetails reads a Health.Details object into v (a *PrimaryDetails or
// *PoolerDetails); an empty or unreadable object leaves v as it was and
// reports false.
func DecodeDetails(raw json.RawMessage, v any) bool {
	if len(raw) == 0 {
		return false
	}
	return json.Unmarshal(raw, v) == nil
}
