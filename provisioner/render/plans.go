package render

import (
	"fmt"
	"strings"
)

// Plan names, as the store and the API spell them.
const (
	PlanStarter    = "starter"
	PlanPro        = "pro"
	PlanEnterprise = "enterprise"
)

// Resources is what a database instance may use: memory and storage in
// bytes, whole CPUs. A plan gives them to its primary; a replica takes the
// same again (see ReplicaResources).
type Resources struct {
	Memory  int64
	CPUs    int
	Storage int64
}

// PlanSpec is one plan: its resources, the replicas it may run and its rank
// (plans gate features by rank).
type PlanSpec struct {
	Name      string
	Title     string
	Resources Resources
	// Replicas is how many read replicas an environment on this plan may run.
	Replicas int
	rank     int
}

// Plans returns every plan, cheapest first. This table is the one place the
// plans' resources are set; the README lists them.
func Plans() []PlanSpec {
	return []PlanSpec{
		{Name: PlanStarter, Title: "Starter", Resources: Resources{Memory: 1 * GiB, CPUs: 1, Storage: 10 * GiB}, Replicas: 0, rank: 0},
		{Name: PlanPro, Title: "Pro", Resources: Resources{Memory: 4 * GiB, CPUs: 2, Storage: 50 * GiB}, Replicas: 1, rank: 1},
		{Name: PlanEnterprise, Title: "Enterprise", Resources: Resources{Memory: 16 * GiB, CPUs: 8, Storage: 200 * GiB}, Replicas: 1, rank: 2},
	}
}

// LookupPlan returns the named plan, or an error naming the plans there are.
func LookupPlan(name string) (PlanSpec, error) {
	var names []string
	for _, p := range Plans() {
		if p.Name == name {
			return p, nil
		}
		names = append(names, p.Name)
	}
	return PlanSpec{}, fmt.Errorf("unknown plan %q (plans: %s)", name, strings.Join(names, ", "))
}

// PlanResources returns the resources of the named plan's primary.
func PlanResources(name string) (Resources, error) {
	p, err := LookupPlan(name)
	return p.Resources, err
}

// PlanAllowsPooler says whether an environment on the plan may run PgBouncer,
// and if not, why, in words for the page and the API's 403.
func PlanAllowsPooler(plan string) (bool, string) {
	return planAtLeast(plan, PlanPro, "PgBouncer connection pooling")
}

// PlanAllowsReplica says whether an environment on the plan may run a read
// replica, and if not, why.
func PlanAllowsReplica(plan string) (bool, string) {
	return planAtLeast(plan, PlanPro, "A read replica")
}

func planAtLeast(plan, minimum, feature string) (bool, string) {
	p, err := LookupPlan(plan)
	if err != nil {
		return false, err.Error()
	}
	m, err := LookupPlan(minimum)
	if err != nil {
		return false, err.Error()
	}
	if p.rank >= m.rank {
		return true, ""
	}
	return false, fmt.Sprintf("%s requires the %s plan or above; this environment is on %s. Upgrade to %s to turn it on.",
		feature, m.Title, p.Title, m.Title)
}

// ReplicaResources is the quota rule for a read replica: it takes the same
// memory, CPUs and storage as its primary (it replays every write and must
// be able to take over the primary's reads, so it gets the same tuning).
func ReplicaResources(primary Resources) Resources {
	return primary
}

// Plus returns r and o added together.
func (r Resources) Plus(o Resources) Resources {
	return Resources{Memory: r.Memory + o.Memory, CPUs: r.CPUs + o.CPUs, Storage: r.Storage + o.Storage}
}

// FitsIn says whether r fits in free (what a server has left), and if not,
// which resource is short, in words.
func (r Resources) FitsIn(free Resources) (bool, string) {
	var short []string
	if r.Memory > free.Memory {
		short = append(short, fmt.Sprintf("memory (needs %s, %s free)", FormatBytes(r.Memory), FormatBytes(max(free.Memory, 0))))
	}
	if r.CPUs > free.CPUs {
		short = append(short, fmt.Sprintf("CPUs (needs %d, %d free)", r.CPUs, max(free.CPUs, 0)))
	}
	if r.Storage > free.Storage {
		short = append(short, fmt.Sprintf("storage (needs %s, %s free)", FormatBytes(r.Storage), FormatBytes(max(free.Storage, 0))))
	}
	if len(short) == 0 {
		return true, ""
	}
	return false, "not enough " + strings.Join(short, ", ")
}

// String renders resources the way the README lists them: "4GB, 2 CPUs, 50GB".
func (r Resources) String() string {
	cpus := "CPUs"
	if r.CPUs == 1 {
		cpus = "CPU"
	}
	return fmt.Sprintf("%s memory, %d %s, %s storage", FormatBytes(r.Memory), r.CPUs, cpus, FormatBytes(r.Storage))
}
