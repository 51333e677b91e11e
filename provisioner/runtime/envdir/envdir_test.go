package envdir

import (
	"errors"
	"testing"

	"pgdeck/provisioner/runtime"
)

var errTaken = errors.New("taken")

func TestCheckPath(t *testing.T) {
	d := Dirs{Root: "/srv/envs", Runtime: "test runtime",
		Taken: func(env, rel string, role runtime.Role) error { return errTaken }}
	tests := []struct {
		env, rel string
		want     string
		taken    bool
	}{
		{"shop", "odoo.conf", "/srv/envs/shop/odoo.conf", false},
		{"shop", "filestore/a/b", "/srv/envs/shop/filestore/a/b", false},
		{"shop", "primary", "", true},
		{"shop", "replica_pooler/x", "", true},
		{"shop", "primary_notes", "/srv/envs/shop/primary_notes", false},
		{"shop", "../other", "", false},
		{"shop", "/etc/passwd", "", false},
		{"Bad Env", "odoo.conf", "", false},
	}
	for _, tt := range tests {
		t.Run(tt.env+"/"+tt.rel, func(t *testing.T) {
			got, err := d.CheckPath(tt.env, tt.rel)
			if got != tt.want || errors.Is(err, errTaken) != tt.taken || (tt.want == "") != (err != nil) {
				t.Fatalf("CheckPath(%q, %q) = %q, %v; want %q (taken %v)", tt.env, tt.rel, got, err, tt.want, tt.taken)
			}
		})
	}
}
