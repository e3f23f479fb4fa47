package failover

import (
	"testing"

	"github.com/zkvstore/zkv/internal/leakcheck"
)

// TestMain fails the package if a goroutine outlives the tests.
func TestMain(m *testing.M) { leakcheck.Main(m) }
