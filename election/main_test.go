package election

import (
	"testing"

	"github.com/zkvstore/zkv/internal/leakcheck"
)

// TestMain fails the package if a goroutine the electors start outlives
// the tests.
func TestMain(m *testing.M) { leakcheck.Main(m) }
