// Package neutralize holds what Odoo's `odoo-bin neutralize` runs on a
// database copied from production, so that the copy never mails customers,
// charges cards or calls webhooks: each installed module's
// data/neutralize.sql, in Odoo's order (odoo/modules/neutralize.py).
//
// The scripts are Odoo's own, copied unchanged from Odoo 18.0
// (odoo-18.0-20250506, odoo/addons/*/data/neutralize.sql; LGPL-3, as Odoo):
// pgdeck runs them itself because Odoo's command needs Odoo installed where
// pgdeck runs.
package neutralize

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"strings"
)

//go:embed odoo18/*.sql
var scripts embed.FS

// folders maps an Odoo major version to its scripts' folder.
var folders = map[string]string{"18.0": "odoo18"}

// ErrUnsupported is returned for an Odoo version pgdeck has no scripts of.
var ErrUnsupported = errors.New("neutralize: no neutralization scripts for this Odoo version")

// Script returns the SQL that neutralizes a database of Odoo odooVersion
// with modules installed (in the order Odoo lists them): each one's
// script, under a comment naming it. Modules without a script are skipped.
func Script(odooVersion string, modules []string) (string, error) {
	dir, ok := folders[odooVersion]
	if !ok {
		return "", fmt.Errorf("%w: %s (pgdeck carries Odoo 18.0's)", ErrUnsupported, odooVersion)
	}
	var b strings.Builder
	for _, m := range modules {
		data, err := fs.ReadFile(scripts, dir+"/"+m+".sql")
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "-- %s/data/neutralize.sql\n%s\n", m, data)
	}
	return b.String(), nil
}
