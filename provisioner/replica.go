package provisioner

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"pgdeck/provisioner/render"
	"pgdeck/store"
)

// The replica's kinds of job (job_replica.go).
const (
	KindDeployReplica  Kind = "deploy_replica"
	KindRebuildReplica Kind = "rebuild_replica"
	KindRemoveReplica  Kind = "remove_replica"
)

// ErrRequirement is returned (wrapped) for a replica an environment may not
// have: its plan, its Odoo version or the capacity left says no.
var ErrRequirement = errors.New("requirement not met")

// Requirement is one thing a read replica needs, met or not, with why.
type Requirement struct {
	// Name is plan, odoo_version or quota.
	Name   string
	Met    bool
	Reason string
}

// ReplicaRequirements says what a read replica of env needs and whether each
// holds: a plan that includes replicas, Odoo 18.0 or newer (Odoo reads
// db_replica_host from 18.0 on), and room for the replica's resources (as
// much as its primary's) in the plan's quota and in what the server has
// left (Config.Capacity less what every deployed environment's instances
// take).
func (p *Provisioner) ReplicaRequirements(ctx context.Context, env store.Environment) ([]Requirement, error) {
	plan, planErr := render.LookupPlan(env.Plan)
	var out []Requirement
	if ok, reason := render.PlanAllowsReplica(env.Plan); ok {
		out = append(out, Requirement{Name: "plan", Met: true, Reason: "The " + plan.Title + " plan includes read replicas."})
	} else {
		out = append(out, Requirement{Name: "plan", Reason: reason})
	}
	if major, _ := strconv.ParseFloat(env.OdooVersion, 64); major >= 18 {
		out = append(out, Requirement{Name: "odoo_version", Met: true, Reason: "Odoo " + env.OdooVersion + " sends read-only queries to db_replica_host."})
	} else {
		out = append(out, Requirement{Name: "odoo_version", Reason: "Odoo " + env.OdooVersion + " cannot use a replica: db_replica_host came with Odoo 18.0."})
	}
	quota := Requirement{Name: "quota"}
	switch {
	case planErr != nil:
		quota.Reason = planErr.Error()
	case plan.Replicas == 0:
		quota.Reason = "The " + plan.Title + " plan allows no replicas."
	default:
		need := render.ReplicaResources(plan.Resources)
		free, err := p.freeCapacity(ctx, env)
		if err != nil {
			return nil, err
		}
		if ok, why := need.FitsIn(free); ok {
			quota.Met = true
			quota.Reason = fmt.Sprintf("The %s plan allows %d; the replica takes %s, which server %s has room for.", plan.Title, plan.Replicas, need, env.Server)
		} else {
			quota.Reason = "Server " + env.Server + " cannot hold the replica: " + why
		}
	}
	out = append(out, quota)
	return out, nil
}

// RequirementsMet returns nil when every requirement holds, else an error
// wrapping ErrRequirement with the first unmet one's reason.
func RequirementsMet(reqs []Requirement) error {
	for _, r := range reqs {
		if !r.Met {
			return fmt.Errorf("%w: %s", ErrRequirement, r.Reason)
		}
	}
	return nil
}

// freeCapacity is what env's server has left (see ServerLoads), env's own
// replica excepted (a rebuild replaces it).
func (p *Provisioner) freeCapacity(ctx context.Context, env store.Environment) (render.Resources, error) {
	loads, err := p.ServerLoads(ctx)
	if err != nil {
		return render.Resources{}, err
	}
	for _, l := range loads {
		if l.Name != env.Server {
			continue
		}
		used := l.Used
		if res, err := render.PlanResources(env.Plan); err == nil && env.ReplicaPort != nil {
			r := render.ReplicaResources(res)
			used = render.Resources{Memory: used.Memory - r.Memory, CPUs: used.CPUs - r.CPUs, Storage: used.Storage - r.Storage}
		}
		return freeOf(l.Capacity(), used), nil
	}
	return render.Resources{}, fmt.Errorf("provisioner: %s lives on server %q, which does not exist", env.Name, env.Server)
}
