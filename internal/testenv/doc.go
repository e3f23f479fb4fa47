// Package testenv wraps internal/harness for Go tests: each function starts a
// real part (ZooKeeper, an ensemble, NATS, kvserver nodes), registers its
// shutdown with t.Cleanup, fails the test with t.Fatal when the part cannot
// start, and prints the tail of the part's log with t.Log when the test
// fails.
//
// Nothing here skips a test: a missing ZooKeeper installation is a failure
// whose message says how to install it (apt-get install -y zookeeper).
//
// The zkv binaries are built once per test binary (with -race when the test
// binary has it) into a directory under os.TempDir. A package that calls
// Binaries, StartNode or StartCluster should remove that directory at exit
// with a TestMain of its own:
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }
//
// Without it the directory (zkv-bin-<pid>-*) stays after the test binary
// exits, until the next test binary that builds the binaries sees that its
// owner is gone and removes it.
package testenv
