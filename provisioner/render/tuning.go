package render

import (
	"fmt"
	"strconv"
)

// Parameter contexts as pg_settings.context spells them: what it takes for a
// changed value to reach the server.
const (
	ContextPostmaster = "postmaster" // restart
	ContextSighup     = "sighup"     // reload
	ContextSuperuser  = "superuser"  // reload (or SET by a superuser)
	ContextUser       = "user"       // reload (or SET by anyone)
)

// NeedsRestart says whether a change to a parameter of this context takes a
// restart of the postmaster; every other context takes a reload.
func NeedsRestart(context string) bool {
	return context == ContextPostmaster
}

// Parameter is one recommended postgresql.conf value: Value is written with
// PostgreSQL's own units; Context is PostgreSQL 15's (the running server's
// pg_settings.context is authoritative once there is one); Rule says how
// the value was reached.
type Parameter struct {
	Name    string
	Value   string
	Context string
	Rule    string
}

// staticSettings are PostgreSQL 15's pg_settings rows (vartype, unit,
// min_val, max_val, context; read from a 15.18 server) for the parameters
// pgdeck tunes, in the order the panel lists them.
var staticSettings = []Setting{
	{Name: "shared_buffers", VarType: "integer", Unit: "8kB", MinVal: "16", MaxVal: "1073741823", Context: ContextPostmaster},
	{Name: "effective_cache_size", VarType: "integer", Unit: "8kB", MinVal: "1", MaxVal: "2147483647", Context: ContextUser},
	{Name: "work_mem", VarType: "integer", Unit: "kB", MinVal: "64", MaxVal: "2147483647", Context: ContextUser},
	{Name: "maintenance_work_mem", VarType: "integer", Unit: "kB", MinVal: "1024", MaxVal: "2147483647", Context: ContextUser},
	{Name: "max_connections", VarType: "integer", MinVal: "1", MaxVal: "262143", Context: ContextPostmaster},
	{Name: "wal_buffers", VarType: "integer", Unit: "8kB", MinVal: "-1", MaxVal: "262143", Context: ContextPostmaster},
	{Name: "min_wal_size", VarType: "integer", Unit: "MB", MinVal: "2", MaxVal: "2147483647", Context: ContextSighup},
	{Name: "max_wal_size", VarType: "integer", Unit: "MB", MinVal: "2", MaxVal: "2147483647", Context: ContextSighup},
	{Name: "checkpoint_completion_target", VarType: "real", MinVal: "0", MaxVal: "1", Context: ContextSighup},
	{Name: "random_page_cost", VarType: "real", MinVal: "0", MaxVal: "1.79769e+308", Context: ContextUser},
	{Name: "effective_io_concurrency", VarType: "integer", MinVal: "0", MaxVal: "1000", Context: ContextUser},
	{Name: "default_statistics_target", VarType: "integer", MinVal: "1", MaxVal: "10000", Context: ContextUser},
	{Name: "max_worker_processes", VarType: "integer", MinVal: "0", MaxVal: "262143", Context: ContextPostmaster},
	{Name: "max_parallel_workers", VarType: "integer", MinVal: "0", MaxVal: "1024", Context: ContextUser},
	{Name: "max_parallel_workers_per_gather", VarType: "integer", MinVal: "0", MaxVal: "1024", Context: ContextUser},
}

// TunedParameters returns the names of the parameters pgdeck recommends, in
// the order the panel lists them.
func TunedParameters() []string {
	names := make([]string, len(staticSettings))
	for i, s := range staticSettings {
		names[i] = s.Name
	}
	return names
}

// StaticSetting returns PostgreSQL 15's pg_settings row for a parameter
// pgdeck tunes, for validating an override before the server exists.
func StaticSetting(name string) (Setting, bool) {
	for _, s := range staticSettings {
		if s.Name == name {
			s.EnumVals = append([]string(nil), s.EnumVals...)
			return s, true
		}
	}
	return Setting{}, false
}

// Bounds of the recommendation.
const (
	// minTunedMemory is the least memory the rules are meant for (PGTune
	// warns below 256 MB); smaller plans are tuned as if they had it.
	minTunedMemory = 256 * MiB
	// minWorkMem is PostgreSQL's default work_mem and the floor PGTune uses
	// since 2026.
	minWorkMem = 4 * MiB
	// OdooMinConnections keeps room for one Odoo process's whole pool: Odoo's
	// default db_maxconn of 64, the superuser's 3 reserved slots and pgdeck's
	// 5 (see OdooMaxConn); it is also PostgreSQL's default max_connections.
	OdooMinConnections = 100
	// connectionsPerGiB and pgtuneOLTPConnections size max_connections to the
	// memory that has to back each backend (see Recommend).
	connectionsPerGiB     = 50
	pgtuneOLTPConnections = 300
	// autovacuumWorkers is PostgreSQL's default autovacuum_max_workers; each
	// may take maintenance_work_mem (autovacuum_work_mem is -1).
	autovacuumWorkers = 3
)

// Recommend returns postgresql.conf values for an Odoo database (OLTP, SSD,
// Linux, PostgreSQL 15) with the given resources, one per TunedParameters
// name, in that order. The rules are PGTune's "oltp" profile
// (le0pard/pgtune, classic formulas up to e2c7f39) except where a comment
// says otherwise:
//
//   - shared_buffers = RAM/4.
//   - effective_cache_size = 3·RAM/4.
//   - max_connections: PGTune's OLTP default is 300. pgdeck gives 50 per GiB
//     of memory, at least 100 and at most 300 (starter 100, pro 200,
//     enterprise 300). Each Odoo backend caches the catalog of a database
//     with ~1000 relations (several MB per backend) and the work_mem formula
//     divides by max_connections, so 300 on 1 GiB would leave work_mem under
//     1 MB; 100 is PostgreSQL's default, what pgdeck ran before tuning, and
//     keeps room for one Odoo process's default db_maxconn of 64 beside the
//     reserved slots (OdooMaxConn). Behind PgBouncer fewer are used, which
//     costs nothing but a few shared-memory slots.
//   - max_worker_processes: PGTune sets CPUs, and only with 4 CPUs or more.
//     pgdeck sets max(8, CPUs): never below PostgreSQL's default 8 (a slot
//     costs almost nothing, lowering it takes a restart, and a standby must
//     have at least the primary's value).
//   - work_mem = (RAM − shared_buffers) / ((max_connections +
//     max_worker_processes) × 3), at least 4MB (PGTune 2026's floor and
//     PostgreSQL's default; the classic floor of 64kB would give the
//     starter plan's Odoo list views, sorts and group-bys about 2MB).
//   - maintenance_work_mem = RAM/16, at most 2GB.
//   - wal_buffers = 3% of shared_buffers, at least 32kB, at most 16MB, and
//     16MB from 14MB up; rounded down to PostgreSQL's 8kB pages.
//   - max_wal_size: PGTune's OLTP 8GB would fill most of the starter plan's
//     10GB disk, so pgdeck takes storage/10 between 256MB and 8GB (starter
//     1GB, PostgreSQL's default; pro 5GB; enterprise 8GB). min_wal_size is
//     max_wal_size/4 between 80MB and 2GB (PGTune: 2GB).
//   - checkpoint_completion_target 0.9, random_page_cost 1.1 (SSD),
//     effective_io_concurrency 200 (SSD, Linux), default_statistics_target
//     100: PGTune's constants.
//   - max_parallel_workers = CPUs; max_parallel_workers_per_gather =
//     ceil(CPUs/2), at most 4. PGTune leaves both at PostgreSQL's defaults
//     (8 and 2) below 4 CPUs; pgdeck sets them on every plan, and 0 per
//     gather on one CPU, where a parallel worker only competes with its
//     leader for the CPU.
//
// Memory below 256MB is tuned as 256MB, fewer than 1 CPU as 1, storage
// below 1GB as 1GB.
func Recommend(res Resources) []Parameter {
	mem := max(res.Memory, minTunedMemory)
	cpus := max(res.CPUs, 1)
	storage := max(res.Storage, GiB)

	sharedBuffers := floorTo(mem/4, 8*KiB)
	effectiveCache := floorTo(mem*3/4, 8*KiB)

	maxConnections := int(mem * connectionsPerGiB / GiB)
	maxConnections = min(max(maxConnections, OdooMinConnections), pgtuneOLTPConnections)

	maxWorkers := max(8, cpus)

	workMem := floorTo((mem-sharedBuffers)/int64((maxConnections+maxWorkers)*3), KiB)
	workMem = max(workMem, minWorkMem)

	maintenance := min(floorTo(mem/16, KiB), 2*GiB)

	walBuffers := sharedBuffers * 3 / 100
	if walBuffers >= 14*MiB {
		walBuffers = 16 * MiB
	}
	walBuffers = floorTo(max(walBuffers, 32*KiB), 8*KiB)

	maxWal := min(max(floorTo(storage/10, MiB), 256*MiB), 8*GiB)
	minWal := min(max(floorTo(maxWal/4, MiB), 80*MiB), 2*GiB)

	perGather := min((cpus+1)/2, 4)
	if cpus == 1 {
		perGather = 0
	}

	values := map[string][2]string{
		"shared_buffers":       {FormatBytes(sharedBuffers), "RAM/4"},
		"effective_cache_size": {FormatBytes(effectiveCache), "3/4 of RAM"},
		"work_mem": {FormatBytes(workMem),
			"(RAM - shared_buffers) / ((max_connections + max_worker_processes) x 3), at least 4MB"},
		"maintenance_work_mem": {FormatBytes(maintenance), "RAM/16, at most 2GB"},
		"max_connections": {strconv.Itoa(maxConnections),
			"50 per GB of RAM, between 100 (one Odoo pool of 64 + reserved) and 300 (PGTune OLTP)"},
		"wal_buffers":                     {FormatBytes(walBuffers), "3% of shared_buffers, at most 16MB"},
		"min_wal_size":                    {FormatBytes(minWal), "max_wal_size/4, between 80MB and 2GB"},
		"max_wal_size":                    {FormatBytes(maxWal), "storage/10, between 256MB and 8GB"},
		"checkpoint_completion_target":    {"0.9", "PGTune constant"},
		"random_page_cost":                {"1.1", "SSD"},
		"effective_io_concurrency":        {"200", "SSD on Linux"},
		"default_statistics_target":       {"100", "OLTP"},
		"max_worker_processes":            {strconv.Itoa(maxWorkers), "CPUs, at least PostgreSQL's default 8"},
		"max_parallel_workers":            {strconv.Itoa(cpus), "CPUs"},
		"max_parallel_workers_per_gather": {strconv.Itoa(perGather), "CPUs/2 rounded up, at most 4; 0 on one CPU"},
	}
	out := make([]Parameter, 0, len(staticSettings))
	for _, s := range staticSettings {
		v := values[s.Name]
		out = append(out, Parameter{Name: s.Name, Value: v[0], Context: s.Context, Rule: v[1]})
	}
	return out
}

func floorTo(n, unit int64) int64 {
	return n / unit * unit
}

// CheckPlanMemory checks the values a redeploy would apply (Recommend's,
// with the operator's overrides on top) against the plan's resources. It
// names the fields at fault: the overridden ones among those a rule adds up,
// or work_mem when the recommendation alone breaks the rule. Overrides that
// do not parse are left to ValidateOverride.
//
// Rules: shared_buffers at most half the memory (PostgreSQL also needs memory
// for every backend and the OS cache); effective_cache_size at most the
// memory; shared_buffers + max_connections × work_mem + 3 autovacuum workers
// × maintenance_work_mem at most twice the memory (work_mem is per sort or
// hash, and most connections are idle, so the sum is a worst case; past
// twice the memory, a busy hour ends with the OOM killer); max_wal_size at
// most half the storage; min_wal_size at most max_wal_size.
func CheckPlanMemory(res Resources, overrides map[string]string) []FieldError {
	rec := map[string]string{}
	for _, p := range Recommend(res) {
		rec[p.Name] = p.Value
	}
	// bytes returns a parameter's value in bytes (or as a plain number).
	num := func(name string) float64 {
		s, _ := StaticSetting(name)
		_, size, _ := baseUnit(s.Unit)
		if v, ok := overrides[name]; ok {
			if _, n, err := ParseValue(s, v); err == nil {
				return n * float64(size)
			}
		}
		_, n, _ := ParseValue(s, rec[name])
		return n * float64(size)
	}
	var errs []FieldError
	seen := map[string]bool{}
	add := func(field, msg string) {
		if !seen[field] {
			seen[field] = true
			errs = append(errs, FieldError{Field: field, Message: msg})
		}
	}
	blame := func(fields []string, msg string) {
		named := false
		for _, f := range fields {
			if _, ok := overrides[f]; ok {
				add(f, msg)
				named = true
			}
		}
		if !named {
			add("work_mem", msg)
		}
	}
	mem := float64(res.Memory)
	memText := FormatBytes(res.Memory)

	sb := num("shared_buffers")
	if sb > mem/2 {
		add("shared_buffers", fmt.Sprintf("%s is more than half the plan's %s of memory; PostgreSQL also needs memory for every connection and for the OS cache (recommended: %s)",
			human(sb), memText, rec["shared_buffers"]))
	}
	if ecs := num("effective_cache_size"); ecs > mem {
		add("effective_cache_size", fmt.Sprintf("%s is more than the plan's %s of memory; it tells the planner how much the OS caches, which cannot exceed the memory (recommended: %s)",
			human(ecs), memText, rec["effective_cache_size"]))
	}
	conns, wm, mwm := num("max_connections"), num("work_mem"), num("maintenance_work_mem")
	if total := sb + conns*wm + autovacuumWorkers*mwm; total > 2*mem {
		blame([]string{"work_mem", "max_connections", "maintenance_work_mem", "shared_buffers"},
			fmt.Sprintf("shared_buffers %s + max_connections %d x work_mem %s + %d autovacuum workers x maintenance_work_mem %s = %s, more than twice the plan's %s of memory; lower work_mem or max_connections",
				human(sb), int(conns), human(wm), autovacuumWorkers, human(mwm), human(total), memText))
	}
	maxWal, minWal := num("max_wal_size"), num("min_wal_size")
	if maxWal > float64(res.Storage)/2 {
		add("max_wal_size", fmt.Sprintf("%s is more than half the plan's %s of storage; WAL can grow to it between checkpoints (recommended: %s)",
			human(maxWal), FormatBytes(res.Storage), rec["max_wal_size"]))
	}
	if minWal > maxWal {
		field := "min_wal_size"
		if _, ok := overrides["max_wal_size"]; ok {
			if _, ok := overrides["min_wal_size"]; !ok {
				field = "max_wal_size"
			}
		}
		add(field, fmt.Sprintf("min_wal_size %s is more than max_wal_size %s", human(minWal), human(maxWal)))
	}
	return errs
}

// human renders a byte count for a message in the largest unit it reaches:
// whole where exact, else with one decimal (6848MB is 6.7GB).
func human(b float64) string {
	for _, m := range memoryUnits {
		u := float64(m.size)
		if b >= u {
			if b == float64(int64(b/u))*u {
				return strconv.FormatInt(int64(b/u), 10) + m.name
			}
			return strconv.FormatFloat(b/u, 'f', 1, 64) + m.name
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}
