package render

import (
	"reflect"
	"strings"
	"testing"
)

func TestRecommend(t *testing.T) {
	names := TunedParameters()
	for _, tc := range []struct {
		name string
		res  Resources
		want map[string]string // every tuned parameter
	}{
		{"starter", Resources{Memory: 1 * GiB, CPUs: 1, Storage: 10 * GiB}, map[string]string{
			"shared_buffers": "256MB", "effective_cache_size": "768MB",
			"work_mem":             "4MB", // formula gives 2427kB; floor 4MB
			"maintenance_work_mem": "64MB", "max_connections": "100",
			"wal_buffers": "7864kB", "min_wal_size": "256MB", "max_wal_size": "1GB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "1",
			"max_parallel_workers_per_gather": "0",
		}},
		{"pro", Resources{Memory: 4 * GiB, CPUs: 2, Storage: 50 * GiB}, map[string]string{
			"shared_buffers": "1GB", "effective_cache_size": "3GB",
			"work_mem":             "5041kB", // 3GB / ((200 + 8) x 3)
			"maintenance_work_mem": "256MB", "max_connections": "200",
			"wal_buffers": "16MB", "min_wal_size": "1280MB", "max_wal_size": "5GB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "2",
			"max_parallel_workers_per_gather": "1",
		}},
		// PGTune's worked example (oltp, 16GB, 8 CPUs, SSD, Linux): the same
		// values but for the WAL sizes, which pgdeck bounds by storage.
		{"enterprise", Resources{Memory: 16 * GiB, CPUs: 8, Storage: 200 * GiB}, map[string]string{
			"shared_buffers": "4GB", "effective_cache_size": "12GB", "work_mem": "13617kB",
			"maintenance_work_mem": "1GB", "max_connections": "300",
			"wal_buffers": "16MB", "min_wal_size": "2GB", "max_wal_size": "8GB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "8",
			"max_parallel_workers_per_gather": "4",
		}},
		{"big host", Resources{Memory: 128 * GiB, CPUs: 32, Storage: 2048 * GiB}, map[string]string{
			"shared_buffers": "32GB", "effective_cache_size": "96GB",
			"work_mem":             "101067kB", // 96GB / ((300 + 32) x 3)
			"maintenance_work_mem": "2GB",      // capped
			"max_connections":      "300",
			"wal_buffers":          "16MB", "min_wal_size": "2GB", "max_wal_size": "8GB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "32", "max_parallel_workers": "32",
			"max_parallel_workers_per_gather": "4",
		}},
		{"odd sizes", Resources{Memory: 1536 * MiB, CPUs: 3, Storage: 15 * GiB}, map[string]string{
			"shared_buffers": "384MB", "effective_cache_size": "1152MB",
			"work_mem":             "4MB", // 1152MB / ((100 + 8) x 3) = 3640kB
			"maintenance_work_mem": "96MB", "max_connections": "100",
			"wal_buffers":  "11792kB", // 3% of 384MB = 11796kB, down to 8kB pages
			"min_wal_size": "384MB", "max_wal_size": "1536MB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "3",
			"max_parallel_workers_per_gather": "2",
		}},
		// Below the bounds the rules are meant for: tuned as 256MB, 1 CPU, 1GB.
		{"zero", Resources{}, map[string]string{
			"shared_buffers": "64MB", "effective_cache_size": "192MB", "work_mem": "4MB",
			"maintenance_work_mem": "16MB", "max_connections": "100",
			"wal_buffers": "1960kB", "min_wal_size": "80MB", "max_wal_size": "256MB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "1",
			"max_parallel_workers_per_gather": "0",
		}},
		{"wal_buffers between 14MB and 16MB rounds up to 16MB", Resources{Memory: 2000 * MiB, CPUs: 4, Storage: 100 * GiB}, map[string]string{
			"shared_buffers": "500MB", "effective_cache_size": "1500MB", "work_mem": "4740kB",
			"maintenance_work_mem": "125MB", "max_connections": "100",
			"wal_buffers": "16MB", "min_wal_size": "2GB", "max_wal_size": "8GB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "4",
			"max_parallel_workers_per_gather": "2",
		}},
		{"wal_buffers just under 14MB", Resources{Memory: 1843 * MiB, CPUs: 4, Storage: 100 * GiB}, map[string]string{
			"shared_buffers": "471808kB", "effective_cache_size": "1415424kB", "work_mem": "4368kB",
			"maintenance_work_mem": "117952kB", "max_connections": "100",
			"wal_buffers": "14152kB", "min_wal_size": "2GB", "max_wal_size": "8GB",
			"checkpoint_completion_target": "0.9", "random_page_cost": "1.1", "effective_io_concurrency": "200",
			"default_statistics_target": "100", "max_worker_processes": "8", "max_parallel_workers": "4",
			"max_parallel_workers_per_gather": "2",
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := Recommend(tc.res)
			var gotNames []string
			for _, p := range got {
				gotNames = append(gotNames, p.Name)
				if want, ok := tc.want[p.Name]; !ok || p.Value != want {
					t.Errorf("%s = %s, want %s (%s)", p.Name, p.Value, want, p.Rule)
				}
				s, ok := StaticSetting(p.Name)
				if !ok || p.Context != s.Context {
					t.Errorf("%s: context %q, want PostgreSQL 15's %q", p.Name, p.Context, s.Context)
				}
				// Every recommendation is a value PostgreSQL takes.
				if _, _, err := ParseValue(s, p.Value); err != nil {
					t.Errorf("%s = %s does not parse: %v", p.Name, p.Value, err)
				}
				if p.Rule == "" {
					t.Errorf("%s has no rule", p.Name)
				}
			}
			if !reflect.DeepEqual(gotNames, names) {
				t.Errorf("names %v, want %v", gotNames, names)
			}
			// The recommendation fits its own plan.
			if errs := CheckPlanMemory(tc.res, nil); len(errs) != 0 && tc.name != "zero" {
				t.Errorf("CheckPlanMemory(recommendation) = %v", errs)
			}
		})
	}
}

func TestRecommendContexts(t *testing.T) {
	// PostgreSQL 15's contexts (guc.c; capabilities.md 1.3).
	want := map[string]string{
		"shared_buffers": "postmaster", "max_connections": "postmaster", "wal_buffers": "postmaster",
		"max_worker_processes": "postmaster",
		"min_wal_size":         "sighup", "max_wal_size": "sighup", "checkpoint_completion_target": "sighup",
		"effective_cache_size": "user", "work_mem": "user", "maintenance_work_mem": "user", "random_page_cost": "user",
		"effective_io_concurrency": "user", "default_statistics_target": "user", "max_parallel_workers": "user",
		"max_parallel_workers_per_gather": "user",
	}
	ps := Recommend(Resources{Memory: 4 * GiB, CPUs: 2, Storage: 50 * GiB})
	if len(ps) != len(want) {
		t.Fatalf("%d parameters, want %d", len(ps), len(want))
	}
	for _, p := range ps {
		if p.Context != want[p.Name] {
			t.Errorf("%s: context %q, want %q", p.Name, p.Context, want[p.Name])
		}
		if NeedsRestart(p.Context) != (want[p.Name] == "postmaster") {
			t.Errorf("%s: NeedsRestart wrong", p.Name)
		}
	}
	for c, restart := range map[string]bool{"postmaster": true, "sighup": false, "superuser": false, "user": false, "backend": false} {
		if NeedsRestart(c) != restart {
			t.Errorf("NeedsRestart(%q) != %v", c, restart)
		}
	}
	if _, ok := StaticSetting("fsync"); ok {
		t.Error("StaticSetting knows a parameter pgdeck does not tune")
	}
}

func TestRecommendMonotonic(t *testing.T) {
	// More resources never recommend less of a memory or worker setting.
	prev := map[string]float64{}
	for _, p := range Plans() {
		for _, r := range Recommend(p.Resources) {
			s, _ := StaticSetting(r.Name)
			_, n, err := ParseValue(s, r.Value)
			if err != nil {
				t.Fatal(err)
			}
			if n < prev[r.Name] {
				t.Errorf("%s: %s recommends %s, less than the plan below", r.Name, p.Name, r.Value)
			}
			prev[r.Name] = n
		}
	}
}

func TestCheckPlanMemory(t *testing.T) {
	starter := Resources{Memory: 1 * GiB, CPUs: 1, Storage: 10 * GiB}
	pro := Resources{Memory: 4 * GiB, CPUs: 2, Storage: 50 * GiB}
	for _, tc := range []struct {
		name      string
		res       Resources
		overrides map[string]string
		want      map[string]string // field -> part of its message; empty: no error
	}{
		{"recommendation", starter, nil, nil},
		{"modest override", starter, map[string]string{"work_mem": "8MB", "shared_buffers": "384MB"}, nil},
		{"shared_buffers over the memory", starter, map[string]string{"shared_buffers": "2GB"},
			map[string]string{"shared_buffers": "2GB is more than half the plan's 1GB of memory"}},
		{"shared_buffers over half", starter, map[string]string{"shared_buffers": "768MB"},
			map[string]string{"shared_buffers": "768MB is more than half the plan's 1GB of memory; PostgreSQL also needs memory for every connection and for the OS cache (recommended: 256MB)"}},
		{"shared_buffers exactly half", starter, map[string]string{"shared_buffers": "512MB"}, nil},
		{"effective_cache_size over the memory", pro, map[string]string{"effective_cache_size": "8GB"},
			map[string]string{"effective_cache_size": "8GB is more than the plan's 4GB of memory"}},
		{"work_mem far beyond", starter, map[string]string{"work_mem": "64MB"},
			map[string]string{"work_mem": "shared_buffers 256MB + max_connections 100 x work_mem 64MB + 3 autovacuum workers x maintenance_work_mem 64MB = 6.7GB, more than twice the plan's 1GB of memory; lower work_mem or max_connections"}},
		{"work_mem just fits", starter, map[string]string{"work_mem": "16MB"}, nil},
		{"max_connections far beyond", starter, map[string]string{"max_connections": "1000"},
			map[string]string{"max_connections": "max_connections 1000 x work_mem 4MB"}},
		{"both named when both overridden", starter, map[string]string{"max_connections": "400", "work_mem": "8MB"},
			map[string]string{"max_connections": "x work_mem 8MB", "work_mem": "max_connections 400"}},
		{"maintenance_work_mem far beyond", starter, map[string]string{"maintenance_work_mem": "1GB"},
			map[string]string{"maintenance_work_mem": "3 autovacuum workers x maintenance_work_mem 1GB"}},
		{"max_wal_size over half the storage", starter, map[string]string{"max_wal_size": "8GB"},
			map[string]string{"max_wal_size": "8GB is more than half the plan's 10GB of storage; WAL can grow to it between checkpoints (recommended: 1GB)"}},
		{"min_wal_size over max_wal_size", starter, map[string]string{"min_wal_size": "2GB"},
			map[string]string{"min_wal_size": "min_wal_size 2GB is more than max_wal_size 1GB"}},
		{"max_wal_size lowered under min_wal_size", starter, map[string]string{"max_wal_size": "128MB"},
			map[string]string{"max_wal_size": "min_wal_size 256MB is more than max_wal_size 128MB"}},
		{"unparsable override left to ValidateOverride", starter, map[string]string{"work_mem": "lots"}, nil},
		{"unitless override in the base unit", starter, map[string]string{"work_mem": "0"}, nil},
		{"one message per field", starter, map[string]string{"shared_buffers": "4GB"},
			map[string]string{"shared_buffers": "more than half"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			errs := CheckPlanMemory(tc.res, tc.overrides)
			got := map[string]string{}
			for _, e := range errs {
				if _, dup := got[e.Field]; dup {
					t.Errorf("two messages for %s", e.Field)
				}
				got[e.Field] = e.Message
				if !strings.HasPrefix(e.Error(), e.Field+": ") {
					t.Errorf("Error() = %q", e.Error())
				}
			}
			if len(got) != len(tc.want) {
				t.Errorf("fields %v, want %v", got, tc.want)
			}
			for f, w := range tc.want {
				if !strings.Contains(got[f], w) {
					t.Errorf("%s: message %q lacks %q", f, got[f], w)
				}
			}
		})
	}
}
