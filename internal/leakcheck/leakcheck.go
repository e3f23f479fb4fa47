// Package leakcheck fails a test binary whose goroutines outlive its
// tests, with go.uber.org/goleak: every goroutine a package starts must be
// stopped by the time its tests end. A package opts in with
//
//	func TestMain(m *testing.M) { leakcheck.Main(m) }
package leakcheck

import (
	"testing"

	"go.uber.org/goleak"

	"github.com/zkvstore/zkv/internal/testenv"
)

// Main runs the tests as testenv.RunMain does, then, if they passed,
// checks for leaked goroutines and exits: with 1 if any were found.
func Main(m *testing.M, opts ...goleak.Option) { goleak.VerifyTestMain(testMain{m}, opts...) }

// testMain is m as goleak runs it.
type testMain struct{ m *testing.M }

func (t testMain) Run() int { return testenv.RunMain(t.m) }
