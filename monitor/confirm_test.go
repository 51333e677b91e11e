package monitor

import (
	"testing"
	"time"

	"pgdeck/store"
)

// TestConfirm runs the confirmation rule over sequences of checks, without
// any cluster: each step is one check's observation and what must be stored.
func TestConfirm(t *testing.T) {
	t0 := time.Date(2025, 5, 6, 12, 0, 0, 0, time.UTC)
	started := t0.Add(-time.Hour)
	figs := func(size int64) *Figures {
		return &Figures{PGVersion: "15.9", DBSizeBytes: size, Connections: 3, MaxConnections: 25, ServerStartedAt: &started}
	}
	lag := func(b int64, s float64) *Figures { return &Figures{LagBytes: &b, LagSeconds: &s} }
	running := func(size int64) Result { return Result{Status: store.HealthRunning, Figures: figs(size)} }
	failed := func(reason string) Result { return Result{Status: store.HealthError, Reason: reason} }

	type step struct {
		obs      Result
		status   string
		reason   string
		severity string
		// size is the stored database size (the figures kept), stale
		// whether they are marked so, figuresFrom the step that read them
		// (-1: none).
		size        int64
		stale       bool
		figuresFrom int
	}
	tests := []struct {
		name    string
		need    int
		initial *store.Health
		steps   []step
	}{
		{
			name: "first check is stored at once, even a failure",
			need: 3,
			steps: []step{
				{obs: failed("connection refused"), status: store.HealthError, reason: "connection refused", figuresFrom: -1},
				{obs: running(10), status: store.HealthError, reason: "connection refused", size: 10, figuresFrom: 1},
			},
		},
		{
			name: "flapping never changes the status",
			need: 2,
			steps: []step{
				{obs: running(10), status: store.HealthRunning, size: 10, figuresFrom: 0},
				{obs: failed("down"), status: store.HealthRunning, size: 10, stale: true, figuresFrom: 0},
				{obs: running(11), status: store.HealthRunning, size: 11, figuresFrom: 2},
				{obs: failed("down"), status: store.HealthRunning, size: 11, stale: true, figuresFrom: 2},
				{obs: running(12), status: store.HealthRunning, size: 12, figuresFrom: 4},
			},
		},
		{
			name: "Confirm agreeing checks change it, then back",
			need: 2,
			steps: []step{
				{obs: running(10), status: store.HealthRunning, size: 10, figuresFrom: 0},
				{obs: failed("down"), status: store.HealthRunning, size: 10, stale: true, figuresFrom: 0},
				{obs: failed("still down"), status: store.HealthError, reason: "still down", size: 10, stale: true, figuresFrom: 0},
				{obs: failed("down again"), status: store.HealthError, reason: "down again", size: 10, stale: true, figuresFrom: 0},
				{obs: running(13), status: store.HealthError, reason: "down again", size: 13, figuresFrom: 4},
				{obs: running(14), status: store.HealthRunning, size: 14, figuresFrom: 5},
			},
		},
		{
			name: "a different new status starts the count again",
			need: 2,
			steps: []step{
				{obs: running(10), status: store.HealthRunning, size: 10, figuresFrom: 0},
				{obs: failed("down"), status: store.HealthRunning, size: 10, stale: true, figuresFrom: 0},
				{obs: Result{Status: store.HealthStopped}, status: store.HealthRunning, size: 10, stale: true, figuresFrom: 0},
				{obs: Result{Status: store.HealthStopped}, status: store.HealthStopped, size: 10, stale: true, figuresFrom: 0},
			},
		},
		{
			name: "Confirm 1 follows every check",
			need: 1,
			steps: []step{
				{obs: running(10), status: store.HealthRunning, size: 10, figuresFrom: 0},
				{obs: failed("down"), status: store.HealthError, reason: "down", size: 10, stale: true, figuresFrom: 0},
				{obs: running(11), status: store.HealthRunning, size: 11, figuresFrom: 2},
			},
		},
		{
			name: "seeded from the store: timed out keeps its figures, stale",
			need: 1,
			initial: &store.Health{Status: store.HealthRunning, CheckedAt: t0.Add(-time.Minute), FiguresAt: ptr(t0.Add(-time.Minute)),
				PGVersion: "15.9", DBSizeBytes: 99, MaxConnections: 25, ServerStartedAt: &started},
			steps: []step{
				{obs: failed("health check timed out after 2s"), status: store.HealthError, reason: "health check timed out after 2s", size: 99, stale: true, figuresFrom: -2},
			},
		},
		{
			name:    "seeded without figures: a failure is not stale",
			need:    2,
			initial: &store.Health{Status: store.HealthStopped, CheckedAt: t0.Add(-time.Minute)},
			steps: []step{
				{obs: failed("down"), status: store.HealthStopped, figuresFrom: -1},
			},
		},
		{
			name: "a replica's severity moves with its status, once confirmed",
			need: 2,
			steps: []step{
				{obs: Result{Status: store.HealthOnline, Severity: store.SeverityOK, Figures: lag(0, 0)}, status: store.HealthOnline, severity: store.SeverityOK, figuresFrom: 0},
				{obs: Result{Status: store.HealthLagging, Severity: store.SeverityWarning, Reason: "60 MB behind", Figures: lag(60<<20, 3)}, status: store.HealthOnline, severity: store.SeverityOK, figuresFrom: 1},
				{obs: Result{Status: store.HealthLagging, Severity: store.SeverityCritical, Reason: "120 MB behind", Figures: lag(120<<20, 3)}, status: store.HealthLagging, severity: store.SeverityCritical, reason: "120 MB behind", figuresFrom: 2},
				{obs: Result{Status: store.HealthOffline, Reason: "not streaming"}, status: store.HealthLagging, severity: store.SeverityCritical, reason: "120 MB behind", stale: true, figuresFrom: 2},
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			prev, p := tt.initial, pending{}
			for i, s := range tt.steps {
				at := t0.Add(time.Duration(i) * 5 * time.Second)
				h, next := confirm(prev, p, s.obs, tt.need, at, 7*time.Millisecond)
				if h.Status != s.status || h.Reason != s.reason || h.Severity != s.severity {
					t.Errorf("check %d: stored %s %q %q, want %s %q %q", i, h.Status, h.Reason, h.Severity, s.status, s.reason, s.severity)
				}
				if !h.CheckedAt.Equal(at) || h.DurationMS != 7 {
					t.Errorf("check %d: checked_at %v duration %d, want every check's", i, h.CheckedAt, h.DurationMS)
				}
				if h.Stale != s.stale || h.DBSizeBytes != s.size {
					t.Errorf("check %d: stale %v size %d, want stale %v size %d", i, h.Stale, h.DBSizeBytes, s.stale, s.size)
				}
				switch {
				case s.figuresFrom == -1 && h.FiguresAt != nil:
					t.Errorf("check %d: figures_at %v, want none", i, h.FiguresAt)
				case s.figuresFrom == -2 && (h.FiguresAt == nil || !h.FiguresAt.Equal(*tt.initial.FiguresAt)):
					t.Errorf("check %d: figures_at %v, want the seeded ones", i, h.FiguresAt)
				case s.figuresFrom >= 0 && (h.FiguresAt == nil || !h.FiguresAt.Equal(t0.Add(time.Duration(s.figuresFrom)*5*time.Second))):
					t.Errorf("check %d: figures_at %v, want those of check %d", i, h.FiguresAt, s.figuresFrom)
				}
				if s.obs.Figures != nil && s.obs.Figures.LagBytes != nil && (h.LagBytes == nil || *h.LagBytes != *s.obs.Figures.LagBytes) {
					t.Errorf("check %d: lag bytes %v, want the observed %d", i, h.LagBytes, *s.obs.Figures.LagBytes)
				}
				prev, p = &h, next
			}
		})
	}
}
