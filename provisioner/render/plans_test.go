package render

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

func TestPlans(t *testing.T) {
	for _, tc := range []struct {
		plan string
		want Resources
	}{
		{PlanStarter, Resources{Memory: 1 * GiB, CPUs: 1, Storage: 10 * GiB}},
		{PlanPro, Resources{Memory: 4 * GiB, CPUs: 2, Storage: 50 * GiB}},
		{PlanEnterprise, Resources{Memory: 16 * GiB, CPUs: 8, Storage: 200 * GiB}},
	} {
		t.Run(tc.plan, func(t *testing.T) {
			got, err := PlanResources(tc.plan)
			if err != nil || got != tc.want {
				t.Fatalf("PlanResources(%q) = %+v, %v; want %+v", tc.plan, got, err, tc.want)
			}
		})
	}
	if _, err := PlanResources("gold"); err == nil || !strings.Contains(err.Error(), "starter, pro, enterprise") {
		t.Errorf("unknown plan: err = %v, want one naming the plans", err)
	}
	// Plans returns a fresh table: changing it changes nothing for the next caller.
	p := Plans()
	p[0].Resources.Memory = 1
	if r, _ := PlanResources(PlanStarter); r.Memory != GiB {
		t.Error("Plans() shares its table")
	}
}

func TestPlanGates(t *testing.T) {
	for _, tc := range []struct {
		plan      string
		allowed   bool
		reasonHas []string
		gate      func(string) (bool, string)
		gateName  string
	}{
		{PlanStarter, false, []string{"PgBouncer", "requires the Pro plan", "on Starter", "Upgrade to Pro"}, PlanAllowsPooler, "pooler"},
		{PlanPro, true, nil, PlanAllowsPooler, "pooler"},
		{PlanEnterprise, true, nil, PlanAllowsPooler, "pooler"},
		{"", false, []string{"unknown plan"}, PlanAllowsPooler, "pooler"},
		{"Pro", false, []string{"unknown plan"}, PlanAllowsPooler, "pooler"}, // plan names are lower case
		{PlanStarter, false, []string{"read replica", "requires the Pro plan"}, PlanAllowsReplica, "replica"},
		{PlanPro, true, nil, PlanAllowsReplica, "replica"},
		{PlanEnterprise, true, nil, PlanAllowsReplica, "replica"},
		{"gold", false, []string{"unknown plan"}, PlanAllowsReplica, "replica"},
	} {
		t.Run(tc.gateName+"/"+tc.plan, func(t *testing.T) {
			ok, reason := tc.gate(tc.plan)
			if ok != tc.allowed {
				t.Fatalf("allowed = %v, want %v (%s)", ok, tc.allowed, reason)
			}
			if ok && reason != "" {
				t.Errorf("allowed with a reason %q", reason)
			}
			for _, w := range tc.reasonHas {
				if !strings.Contains(reason, w) {
					t.Errorf("reason %q lacks %q", reason, w)
				}
			}
		})
	}
}

func TestReplicaQuota(t *testing.T) {
	pro, _ := PlanResources(PlanPro)
	if ReplicaResources(pro) != pro {
		t.Fatal("a replica takes its primary's resources")
	}
	for _, tc := range []struct {
		name  string
		free  Resources
		ok    bool
		short []string
	}{
		{"exactly enough", pro, true, nil},
		{"plenty", Resources{Memory: 64 * GiB, CPUs: 32, Storage: 1024 * GiB}, true, nil},
		{"memory short", Resources{Memory: 3 * GiB, CPUs: 2, Storage: 50 * GiB}, false, []string{"memory (needs 4GB, 3GB free)"}},
		{"cpu and storage short", Resources{Memory: 4 * GiB, CPUs: 1, Storage: 10 * GiB}, false,
			[]string{"CPUs (needs 2, 1 free)", "storage (needs 50GB, 10GB free)"}},
		{"overcommitted server", Resources{Memory: -GiB, CPUs: -1, Storage: 0}, false,
			[]string{"memory (needs 4GB, 0B free)", "CPUs (needs 2, 0 free)", "storage (needs 50GB, 0B free)"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ok, why := ReplicaResources(pro).FitsIn(tc.free)
			if ok != tc.ok {
				t.Fatalf("FitsIn = %v (%s), want %v", ok, why, tc.ok)
			}
			for _, w := range tc.short {
				if !strings.Contains(why, w) {
					t.Errorf("reason %q lacks %q", why, w)
				}
			}
		})
	}
	if got := pro.String(); got != "4GB memory, 2 CPUs, 50GB storage" {
		t.Errorf("String() = %q", got)
	}
	used := pro.Plus(ReplicaResources(pro))
	if used != (Resources{Memory: 8 * GiB, CPUs: 4, Storage: 100 * GiB}) {
		t.Errorf("primary + replica = %+v", used)
	}
}

// The README lists every plan's resources; it must say what Plans says.
func TestReadmeListsPlans(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range Plans() {
		row := "| " + p.Name + " | " + FormatBytes(p.Resources.Memory) + " | " + strconv.Itoa(p.Resources.CPUs) + " | " +
			FormatBytes(p.Resources.Storage) + " | " + yesNo(p.Name) + " | " + strconv.Itoa(p.Replicas) + " |"
		if !strings.Contains(string(readme), row) {
			t.Errorf("README lacks the row %q", row)
		}
	}
}

func yesNo(plan string) string {
	if ok, _ := PlanAllowsPooler(plan); ok {
		return "yes"
	}
	return "no"
}
