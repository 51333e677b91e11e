package provisioner

import (
	"context"
	"errors"
	"fmt"
	"math"
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
			quota.Reason = fmt.Sprintf("The %s plan allows %d; the replica takes %s, which this server has room for.", plan.Title, plan.Replicas, need)
		} else {
			quota.Reason = "This server cannot hold the replica: " + why
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

// freeCapacity is the server's capacity less the resources of every
// deployed environment's primary and replica, env's own replica excepted
// (a rebuild replaces it).
func (p *Provisioner) freeCapacity(ctx context.Context, env store.Environment) (render.Resources, error) {
	envs, err := p.store.ListEnvironments(ctx)
	if err != nil {
		return render.Resources{}, err
	}
	used := render.Resources{}
	for _, e := range envs {
		if !e.Deployed() {
			continue
		}
		res, err := render.PlanResources(e.Plan)
		if err != nil {
			continue
		}
		used = used.Plus(res)
		if e.ReplicaPort != nil && e.ID != env.ID {
			used = used.Plus(render.ReplicaResources(res))
		}
	}
	c := p.cfg.Capacity
	free := render.Resources{Memory: c.Memory - used.Memory, CPUs: c.CPUs - used.CPUs, Storage: c.Storage - used.Storage}
	// A resource the operator set no capacity for is not counted.
	if c.Memory == 0 {
		free.Memory = math.MaxInt64
	}
	if c.CPUs == 0 {
		free.CPUs = math.MaxInt
	}
	if c.Storage == 0 {
		free.Storage = math.MaxInt64
	}
	return free, nil
}
