package provisioner

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"pgdeck/store"
)

// Kind is what a job does.
type Kind string

// The kinds of job.
const (
	KindDeploy   Kind = "deploy"
	KindRedeploy Kind = "redeploy"
	KindStop     Kind = "stop"
	KindStart    Kind = "start"
	KindRestart  Kind = "restart"
	KindDelete   Kind = "delete"
)

// JobKind is one kind of job: the registry's entry that says everything the
// provisioner needs to queue and run it.
type JobKind struct {
	// Kind names it (the jobs.kind column, the action word).
	Kind Kind
	// Lane is the queue it waits in (store.LaneOps, store.LaneBackup): one
	// active job per environment and lane.
	Lane string
	// Action reports whether users may start it by its action word
	// (ParseAction, POST …/actions/{kind}); delete has its own confirmation.
	Action bool
	// Timeout bounds one attempt of the job.
	Timeout time.Duration
	// Check refuses a job that makes no sense for env now, with an error
	// wrapping ErrInvalidAction that says why; nil accepts it always.
	Check func(env store.Environment) error
	// Params is the type of the job's parameters (a struct, not a
	// pointer); nil when the kind takes none.
	Params reflect.Type
	// Snapshot returns the parameters queued when the caller gives none
	// (a redeploy's snapshot of the settings it applies); nil: none.
	Snapshot func(ctx context.Context, p *Provisioner, env store.Environment) (any, error)
	// Run runs the job's steps on env; each step can run twice without harm.
	Run func(ctx context.Context, r *JobRun, env store.Environment) error
	// Gone finishes a job whose environment no longer exists (a delete cut
	// short after the row went); nil fails the job saying so.
	Gone func(ctx context.Context, r *JobRun) error
}

// builtinKinds are the kinds every provisioner knows, one file each
// (job_*.go). Read only: New copies it into the provisioner's registry.
var builtinKinds = []JobKind{deployKind, redeployKind, stopKind, startKind, restartKind, deleteKind,
	deployReplicaKind, rebuildReplicaKind, removeReplicaKind,
	backupKind, scheduledBackupKind, verifyBackupKind, restoreKind}

// ParseAction maps an action word from a URL to a job kind that users may
// start by it (delete has its own confirmation and is not an action).
func ParseAction(s string) (Kind, bool) {
	for _, k := range builtinKinds {
		if k.Action && string(k.Kind) == s {
			return k.Kind, true
		}
	}
	return "", false
}

// Option changes a provisioner as New builds it.
type Option func(*Provisioner)

// WithKind registers a kind of job (or replaces the built-in one of the
// same name): how backups and restores will be added, and how tests add
// kinds of their own.
func WithKind(k JobKind) Option {
	return func(p *Provisioner) { p.kinds[k.Kind] = k }
}

// encodeParams checks that params has the kind's type and encodes it.
func (k JobKind) encodeParams(params any) (json.RawMessage, error) {
	if params == nil {
		return nil, nil
	}
	t := reflect.TypeOf(params)
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if k.Params == nil || t != k.Params {
		return nil, fmt.Errorf("provisioner: %s job: parameters of type %s, want %v", k.Kind, t, k.Params)
	}
	raw, err := json.Marshal(params)
	if err != nil {
		return nil, fmt.Errorf("provisioner: %s job parameters: %w", k.Kind, err)
	}
	return raw, nil
}

// ParamsOf decodes the job's parameters into its kind's type (the zero
// value for a job queued without any).
func ParamsOf[T any](r *JobRun) (T, error) {
	var v T
	if len(r.job.Params) == 0 {
		return v, nil
	}
	if err := json.Unmarshal(r.job.Params, &v); err != nil {
		return v, fmt.Errorf("job %d parameters: %w", r.job.ID, err)
	}
	return v, nil
}
