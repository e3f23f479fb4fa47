package node

import (
	"testing"

	"github.com/zkvstore/zkv/internal/leakcheck"
)

// TestMain fails the package if a goroutine the servers start outlives
// the tests.
func TestMain(m *testing.M) { leakcheck.Main(m) }
