package main

import (
	"go/build"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// forbiddenArrows are the imports DESIGN.md's layering rules out, as
// (importer prefix, imported prefix, allowed exceptions). Test-support
// packages (names ending in "test") may reach across layers.
var forbiddenArrows = []struct {
	from, to string
	except   []string
}{
	{"pgdeck/store", "pgdeck/provisioner", nil},
	{"pgdeck/store", "pgdeck/monitor", nil},
	{"pgdeck/store", "pgdeck/web", nil},
	{"pgdeck/monitor", "pgdeck/provisioner", []string{"pgdeck/provisioner/runtime", "pgdeck/provisioner/render"}},
	{"pgdeck/web", "pgdeck/provisioner/runtime", nil},
	{"pgdeck/views", "pgdeck/store", nil},
}

// under reports whether pkg is prefix or one of its subpackages.
func under(pkg, prefix string) bool {
	return pkg == prefix || strings.HasPrefix(pkg, prefix+"/")
}

// TestLayering reads the production imports of every package and fails on
// an arrow the design forbids (store → provisioner/monitor/web, monitor →
// provisioner except its runtime interface and the pure render package,
// web → runtime, views → store).
func TestLayering(t *testing.T) {
	imports := map[string][]string{}
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			return nil
		}
		if name := d.Name(); path != "." && (strings.HasPrefix(name, ".") || name == "node_modules" || name == "testdata") {
			return filepath.SkipDir
		}
		pkg, err := build.ImportDir(path, 0)
		if _, ok := err.(*build.NoGoError); ok {
			return nil
		}
		if err != nil {
			return err
		}
		ip := "pgdeck"
		if path != "." {
			ip += "/" + filepath.ToSlash(path)
		}
		imports[ip] = pkg.Imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, pkg := range []string{"pgdeck/store", "pgdeck/monitor", "pgdeck/web", "pgdeck/views", "pgdeck/provisioner"} {
		if _, ok := imports[pkg]; !ok {
			t.Fatalf("package %s not found: the walk is broken", pkg)
		}
	}
	for pkg, imps := range imports {
		if strings.HasSuffix(pkg, "test") {
			continue
		}
		// Test support is for tests: production code never imports it.
		if pkg != "pgdeck/internal/testkit" && slices.Contains(imps, "pgdeck/internal/testkit") {
			t.Errorf("%s imports pgdeck/internal/testkit, which only tests and test-support packages may use", pkg)
		}
		for _, rule := range forbiddenArrows {
			if !under(pkg, rule.from) {
				continue
			}
			for _, imp := range imps {
				if !under(imp, rule.to) {
					continue
				}
				allowed := false
				for _, ex := range rule.except {
					allowed = allowed || imp == ex
				}
				if !allowed {
					t.Errorf("%s imports %s: %s must not depend on %s", pkg, imp, rule.from, rule.to)
				}
			}
		}
	}
}
