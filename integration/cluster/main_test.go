//go:build !integration

package cluster

import (
	"testing"

	"go.uber.org/goleak"
)

// With the integration tag, the external tests' TestMain runs instead and
// does the same leak check after closing its cluster.
func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}
