package provisioner

import (
	"strings"
	"testing"
)

func TestSummarizeError(t *testing.T) {
	initdb := "local runtime: create moved/primary: pgexec: initdb /tmp/x/pgdata: exit status 1: The files belonging to this database system will be owned by user \"postgres\".\n" +
		"This user must also own the server process.\n\nThe database cluster will be initialized with locale \"C.UTF-8\".\n" +
		"creating configuration files ... ok\nrunning bootstrap script ... 2026-11-25 19:30:36.521 UTC [26399] FATAL:  could not write to file \"pg_wal/xlogtemp.26399\": File too large\n" +
		"child process exited with exit code 1\ninitdb: removing contents of data directory \"/tmp/x/pgdata.initdb-1\""
	cases := []struct {
		name, in string
		want     []string
		notWant  []string
	}{
		{"one line stays", "the environment no longer exists", []string{"the environment no longer exists"}, nil},
		{"initdb banner dropped", initdb,
			[]string{"pgexec: initdb /tmp/x/pgdata: exit status 1", "FATAL:  could not write to file \"pg_wal/xlogtemp.26399\": File too large"},
			[]string{"The files belonging", "creating configuration files"}},
		{"no error line keeps all", "step: exit status 2: first\nsecond", []string{"first\nsecond"}, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := summarizeError(tc.in)
			for _, w := range tc.want {
				if !strings.Contains(got, w) {
					t.Errorf("summary lacks %q: %s", w, got)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(got, w) {
					t.Errorf("summary keeps %q: %s", w, got)
				}
			}
		})
	}
}
