package web

import (
	"context"
	"errors"
	"time"

	"pgdeck/store"
	"pgdeck/views"
)

// envState is what the pages and the API need to know about one environment
// besides its row: its latest health and its newest job. A loader reads only
// the parts its view needs; the others stay nil.
type envState struct {
	health *store.Health
	job    *store.Job
}

// need says which parts of an envState a loader reads.
type need int

const (
	needHealth need = 1 << iota // the primary's latest health (deployed environments only)
	needJob                     // the newest job
	needAll    = needHealth | needJob
)

// badgeNeeds is what the health badge of e needs: the monitor's verdict once
// the database is deployed, else the state of its deploy.
func badgeNeeds(e store.Environment) need {
	if e.Deployed() {
		return needHealth
	}
	return needJob
}

// loadState reads the parts n names of one environment's state: one store
// query each.
func (s *Server) loadState(ctx context.Context, e store.Environment, n need) (envState, error) {
	var st envState
	if n&needHealth != 0 && e.Deployed() {
		h, err := s.store.HealthOf(ctx, e.ID)
		switch {
		case err == nil:
			st.health = &h
		case !errors.Is(err, store.ErrNotFound):
			return st, err
		}
	}
	if n&needJob != 0 {
		j, err := s.store.LastJob(ctx, e.Name)
		switch {
		case err == nil:
			st.job = &j
		case !errors.Is(err, store.ErrNotFound):
			return st, err
		}
	}
	return st, nil
}

// loadStates reads the health and newest job of every environment at once.
func (s *Server) loadStates(ctx context.Context) (map[int64]store.Health, map[string]store.Job, error) {
	hs, err := s.store.HealthAll(ctx)
	if err != nil {
		return nil, nil, err
	}
	js, err := s.store.LatestJobs(ctx)
	if err != nil {
		return nil, nil, err
	}
	return hs, js, nil
}

// healthOf derives the health badge: the monitor's verdict once the database
// is deployed, else what its deploy is doing (or why it failed).
func healthOf(e store.Environment, st envState) views.Health {
	if e.Deployed() {
		if st.health == nil {
			return views.Health{Status: "checking", Reason: "waiting for the first health check"}
		}
		h := st.health
		x := Explain(h.Status, h.Reason)
		return views.Health{Status: h.Status, Reason: x.Headline, Advice: x.Advice, Detail: x.Detail,
			CheckedAt: h.CheckedAt, Stale: h.Stale}
	}
	if st.job != nil && st.job.Active() {
		return views.Health{Status: "deploying", Reason: st.job.Step}
	}
	if st.job != nil && st.job.State == store.JobFailed && st.job.Kind == "deploy" {
		return views.Health{Status: "error", Reason: "Deploy failed: " + st.job.Error, CheckedAt: derefTime(st.job.FinishedAt)}
	}
	return views.Health{Status: "not_deployed"}
}

func derefTime(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return *t
}

// environmentView builds the view model of an environment.
func environmentView(e store.Environment, st envState) views.Environment {
	return views.Environment{
		Name:         e.Name,
		OdooVersion:  e.OdooVersion,
		Stage:        e.Stage,
		Plan:         e.Plan,
		CreatedAt:    e.CreatedAt,
		Health:       healthOf(e, st),
		Deployed:     e.Deployed(),
		DesiredState: e.DesiredState,
		Server:       e.Server,
	}
}

// jobView builds the view model of a job.
func jobView(j store.Job, log []store.JobLine) views.Job {
	v := views.Job{ID: j.ID, EnvName: j.EnvName, Kind: j.Kind, State: j.State, Step: j.Step, Progress: j.Progress,
		Error: j.Error, RequestedBy: j.RequestedBy, CreatedAt: j.CreatedAt, StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
	for _, l := range log {
		v.Log = append(v.Log, views.JobLine{At: l.At, Line: l.Line})
	}
	return v
}

// stateFrom picks one environment's state out of loadStates' maps.
func stateFrom(e store.Environment, hs map[int64]store.Health, js map[string]store.Job) envState {
	var st envState
	if h, ok := hs[e.ID]; ok {
		st.health = &h
	}
	if j, ok := js[e.Name]; ok {
		st.job = &j
	}
	return st
}
