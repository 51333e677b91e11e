package store_test

import (
	"testing"

	"pgdeck/store/storetest"
)

// TestMain runs the package's tests against one embedded control-plane
// cluster, stopped when they end.
func TestMain(m *testing.M) { storetest.Main(m) }
