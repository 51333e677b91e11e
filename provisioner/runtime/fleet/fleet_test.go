package fleet_test

import (
	"context"
	"fmt"
	"hash/fnv"
	"os"
	"path/filepath"
	"testing"

	"pgdeck/internal/testkit"
	"pgdeck/provisioner/runtime"
	"pgdeck/provisioner/runtime/fleet"
	"pgdeck/provisioner/runtime/local"
	"pgdeck/provisioner/runtime/local/pgexec"
	"pgdeck/provisioner/runtime/runtimetest"
)

// twoServers places each environment on one of two local runtimes (two
// servers with their own roots) by a hash of its name.
type twoServers struct {
	rts map[string]runtime.Runtime
}

func (d twoServers) ServerOf(_ context.Context, env string) (string, error) {
	h := fnv.New32a()
	h.Write([]byte(env))
	return []string{"a", "b"}[h.Sum32()%2], nil
}

func (d twoServers) Runtime(_ context.Context, name string) (runtime.Runtime, error) {
	rt, ok := d.rts[name]
	if !ok {
		return nil, fmt.Errorf("no server %s", name)
	}
	return rt, nil
}

func (d twoServers) Servers(context.Context) ([]string, error) { return []string{"a", "b"}, nil }

func newFleet(t *testing.T) runtime.Runtime {
	t.Helper()
	bin, err := pgexec.FindBinDir(os.Getenv("PGDECK_PG_BIN_DIR"))
	if err != nil {
		t.Fatalf("the PostgreSQL binaries are required (apt-get install -y postgresql): %v", err)
	}
	d := twoServers{rts: map[string]runtime.Runtime{}}
	for _, name := range []string{"a", "b"} {
		rt, err := local.New(local.Config{Root: filepath.Join(testkit.TempDir(t), name), BinDir: bin})
		if err != nil {
			t.Fatal(err)
		}
		d.rts[name] = rt
	}
	return fleet.New(d, nil)
}

// TestConformance: the fleet, sending each call to the runtime of the
// environment's server, behaves as one runtime.
func TestConformance(t *testing.T) {
	runtimetest.Run(t, newFleet, func(t *testing.T) int { return testkit.FreePort(t) })
}
