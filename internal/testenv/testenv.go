package testenv

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Timeouts of this package's functions. Each is further bounded by the
// test's own deadline (go test -timeout) when the test has one.
const (
	// StartTimeout bounds starting ZooKeeper, an ensemble or a node.
	StartTimeout = 90 * time.Second
	// StopTimeout bounds a node's clean exit after SIGTERM at cleanup.
	StopTimeout = 15 * time.Second
	// BuildTimeout bounds building the zkv binaries.
	BuildTimeout = 10 * time.Minute
	// TickTime is the ZooKeeper tick of StartZooKeeper and StartEnsemble.
	TickTime = 200 * time.Millisecond
	// tailLines is how many log lines are printed for a failed test.
	tailLines = 60
)

// deadliner is implemented by *testing.T.
type deadliner interface {
	Deadline() (time.Time, bool)
}

// timeoutContext returns a context that ends after d or a little before the
// test's deadline, whichever comes first.
func timeoutContext(t testing.TB, d time.Duration) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	if dl, ok := t.(deadliner); ok {
		if end, ok := dl.Deadline(); ok {
			ctx2, cancel2 := context.WithDeadline(ctx, end.Add(-5*time.Second))
			return ctx2, func() { cancel2(); cancel() }
		}
	}
	return ctx, cancel
}

// StartZooKeeper starts a standalone ZooKeeper (tick TickTime) in a
// directory of t.TempDir(), with its log in zookeeper.log there. Cleanup
// stops it; when the test failed, the tail of its log is logged first.
func StartZooKeeper(t testing.TB) *harness.ZooKeeper {
	t.Helper()
	ctx, cancel := timeoutContext(t, StartTimeout)
	defer cancel()
	z, err := harness.StartZooKeeper(ctx, harness.ZooKeeperOptions{Dir: t.TempDir(), TickTime: TickTime})
	if err != nil {
		t.Fatalf("start ZooKeeper: %v", err)
	}
	t.Logf("ZooKeeper %s (pid %d, log %s)", z.Addr(), z.PID(), z.LogPath())
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("ZooKeeper %s log tail:\n%s", z.Addr(), z.LogTail(tailLines))
		}
		if err := z.Stop(); err != nil {
			t.Errorf("stop ZooKeeper: %v", err)
		}
	})
	return z
}

// StartEnsemble starts a 3-member ZooKeeper ensemble (tick TickTime) in a
// directory of t.TempDir(), each member logging to zookeeper.log in its
// own subdirectory. Cleanup stops it; when the test failed, the tail of
// every member's log is logged first.
func StartEnsemble(t testing.TB) *harness.Ensemble {
	t.Helper()
	ctx, cancel := timeoutContext(t, StartTimeout)
	defer cancel()
	e, err := harness.StartEnsemble(ctx, 3, harness.ZooKeeperOptions{Dir: t.TempDir(), TickTime: TickTime})
	if err != nil {
		t.Fatalf("start ZooKeeper ensemble: %v", err)
	}
	t.Logf("ZooKeeper ensemble %s", e.Connect())
	t.Cleanup(func() {
		if t.Failed() {
			for _, z := range e.Members() {
				t.Logf("ZooKeeper %s (%s) log tail:\n%s", z.Name(), z.Addr(), z.LogTail(tailLines))
			}
		}
		if err := e.Stop(); err != nil {
			t.Errorf("stop ZooKeeper ensemble: %v", err)
		}
	})
	return e
}

// StartNATS starts an embedded NATS server on a random port, logging to
// nats.log in t.TempDir(). Cleanup shuts it down; when the test failed, the
// tail of its log is logged first.
func StartNATS(t testing.TB) *harness.NATS {
	t.Helper()
	logPath := filepath.Join(t.TempDir(), "nats.log")
	f, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("start NATS: %v", err)
	}
	n, err := harness.StartNATS(harness.NATSOptions{Log: f})
	if err != nil {
		f.Close()
		t.Fatalf("start NATS: %v", err)
	}
	t.Cleanup(func() {
		n.Shutdown()
		f.Close()
		if t.Failed() {
			t.Logf("NATS %s log tail:\n%s", n.URL(), harness.TailFile(logPath, tailLines))
		}
	})
	return n
}

// built holds the result of the one build per test binary.
var built struct {
	once sync.Once
	bins harness.Binaries
	err  error
}

// Binaries builds the zkv commands once per test binary, with -race when
// the test binary is built with -race, into a new directory under
// os.TempDir, and returns their paths. RunMain removes the directory;
// without RunMain it stays until a later test binary calling Binaries finds
// its owner gone and removes it. A build failure fails every test that asks
// for the binaries.
func Binaries(t testing.TB) harness.Binaries {
	t.Helper()
	built.once.Do(func() {
		ctx, cancel := timeoutContext(t, BuildTimeout)
		defer cancel()
		sweepStaleBinaries()
		dir, err := os.MkdirTemp("", fmt.Sprintf("%s%d-*", binDirPrefix, os.Getpid()))
		if err != nil {
			built.err = err
			return
		}
		start := time.Now()
		built.bins, built.err = harness.BuildBinaries(ctx, "", dir, raceEnabled)
		if built.err != nil {
			os.RemoveAll(dir)
			return
		}
		t.Logf("built zkv binaries (race=%v) in %v into %s", raceEnabled, time.Since(start).Round(time.Millisecond), dir)
	})
	if built.err != nil {
		t.Fatalf("build zkv binaries: %v", built.err)
	}
	return built.bins
}

// binDirPrefix starts the name of a binaries directory, which is
// <prefix><pid of the test binary>-<random>.
const binDirPrefix = "zkv-bin-"

// sweepStaleBinaries removes the binaries directories of test binaries that
// no longer run (they exited without RunMain, or were killed).
func sweepStaleBinaries() {
	dirs, _ := filepath.Glob(filepath.Join(os.TempDir(), binDirPrefix+"*-*"))
	for _, d := range dirs {
		pidStr, _, ok := strings.Cut(strings.TrimPrefix(filepath.Base(d), binDirPrefix), "-")
		pid, err := strconv.Atoi(pidStr)
		if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
			continue
		}
		if err := syscall.Kill(pid, 0); errors.Is(err, syscall.ESRCH) {
			os.RemoveAll(d)
		}
	}
}

// RunMain runs the tests of m and then removes the directory of the
// binaries built by Binaries. Use it as
//
//	func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }
func RunMain(m *testing.M) int {
	code := m.Run()
	if built.bins.Dir != "" {
		os.RemoveAll(built.bins.Dir)
	}
	return code
}

// StartNode starts a kvserver built by Binaries with opts, adding
// GORACE=halt_on_error=1 to its environment and, unless opts.Log or
// opts.LogDir is set, logging to <id>.log in t.TempDir(). It returns once
// /healthz answers; call WaitReady to wait for /readyz.
//
// Cleanup: a node still running gets SIGTERM and must exit with status 0
// within StopTimeout (a clean signal must give a clean exit), otherwise the
// test gets an error and the node is killed. When the test failed, the tail
// of the node's log is logged.
func StartNode(t testing.TB, opts harness.NodeOptions) *harness.Node {
	t.Helper()
	bin := Binaries(t).KVServer
	if bin == "" {
		t.Fatal("start node: cmd/kvserver was not built (it has no Go files)")
	}
	opts.Env = append(append([]string(nil), opts.Env...), "GORACE=halt_on_error=1")
	if opts.Log == nil && opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	ctx, cancel := timeoutContext(t, StartTimeout)
	defer cancel()
	n, err := harness.StartNode(ctx, bin, opts)
	if err != nil {
		t.Fatalf("start node %s: %v", opts.ID, err)
	}
	t.Logf("node %s on %s (pid %d, log %s)", n.ID(), n.HTTPAddr(), n.PID(), n.LogPath())
	t.Cleanup(func() { stopNode(t, n) })
	return n
}

// stopNode is the cleanup of StartNode.
func stopNode(t testing.TB, n *harness.Node) {
	if n.Running() {
		ctx, cancel := context.WithTimeout(context.Background(), StopTimeout)
		err := n.Stop(ctx)
		cancel()
		if err != nil {
			t.Errorf("node %s did not exit cleanly on SIGTERM: %v", n.ID(), err)
		}
	}
	if err := n.Kill(); err != nil {
		t.Errorf("kill node %s: %v", n.ID(), err)
	}
	if t.Failed() {
		t.Logf("node %s (%s) log tail:\n%s", n.ID(), n.HTTPAddr(), n.LogTail(tailLines))
	}
}

// StartLocal starts a cluster.Local with opts for a test: the kvserver
// built by Binaries (unless opts.KVServer is set), GORACE=halt_on_error=1
// in every server's environment, and, unless opts.LogDir is set, the
// servers' logs in t.TempDir(). It fails the test if the cluster cannot
// start.
//
// Cleanup: the cluster is closed; a server still running gets SIGTERM
// and must exit with status 0 within StopTimeout (a clean signal must
// give a clean exit), otherwise the test gets an error. When the test
// failed, the tail of each server's log is logged.
func StartLocal(t testing.TB, opts cluster.LocalOptions) *cluster.Local {
	t.Helper()
	if opts.KVServer == "" {
		opts.KVServer = Binaries(t).KVServer
	}
	if opts.KVServer == "" {
		t.Fatal("start cluster: cmd/kvserver was not built (it has no Go files)")
	}
	opts.NodeEnv = append(slices.Clone(opts.NodeEnv), "GORACE=halt_on_error=1")
	if opts.LogDir == "" {
		opts.LogDir = t.TempDir()
	}
	ctx, cancel := timeoutContext(t, StartTimeout)
	defer cancel()
	lc, err := cluster.StartLocal(ctx, opts)
	if err != nil {
		t.Fatalf("start cluster: %v", err)
	}
	for _, id := range lc.Nodes() {
		n := lc.Process(id)
		t.Logf("node %s on %s (pid %d, log %s)", id, n.HTTPAddr(), n.PID(), n.LogPath())
	}
	t.Cleanup(func() {
		ids := lc.Nodes()
		// The servers stop at once; each may take up to StopTimeout, and a
		// loaded machine slows them all together.
		ctx, cancel := context.WithTimeout(context.Background(), 2*StopTimeout)
		defer cancel()
		if err := lc.Close(ctx); err != nil {
			t.Errorf("stop cluster: %v", err)
		}
		if t.Failed() {
			for _, id := range ids {
				n := lc.Process(id)
				t.Logf("node %s (%s) log tail:\n%s", id, n.HTTPAddr(), n.LogTail(tailLines))
			}
		}
	})
	return lc
}

// StartCluster starts n kvserver nodes with IDs n1..nN on base's
// ZooKeeper and NATS, with base's session timeout, paths, log level, log
// writer (every node's lines prefixed with "<id>: "), TLS, environment
// and extra arguments, through StartLocal. It returns the nodes in ID
// order once every node answers /healthz.
func StartCluster(t testing.TB, n int, base harness.NodeOptions) []*harness.Node {
	t.Helper()
	if n < 1 {
		t.Fatalf("start cluster of %d nodes: need at least one", n)
	}
	lc := StartLocal(t, cluster.LocalOptions{
		Servers:        n,
		ZooKeeper:      base.ZooKeeper,
		NATSURL:        base.NATSURL,
		SessionTimeout: base.SessionTimeout,
		ElectionPath:   base.ElectionPath,
		SubjectPrefix:  base.SubjectPrefix,
		ServerLogLevel: cmp.Or(base.LogLevel, "info"), // kvserver's default
		ServerLog:      base.Log,
		LogDir:         base.LogDir,
		NodeArgs:       base.Args,
		NodeTLS:        base.TLS,
		NodeEnv:        base.Env,
		HealthyOnly:    true,
	})
	nodes := make([]*harness.Node, 0, n)
	for _, id := range lc.Nodes() {
		nodes = append(nodes, lc.Process(id))
	}
	return nodes
}

// WaitFor polls f (every 25 ms) until it returns nil, and fails the test
// with what and f's last error if it still fails after timeout. Like
// t.Fatal, it must be called from the test's goroutine.
func WaitFor(t testing.TB, timeout time.Duration, what string, f func() error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	if err := harness.WaitFor(ctx, harness.DefaultPollInterval, f); err != nil {
		t.Fatalf("timed out after %v waiting for %s: %v", timeout, what, err)
	}
}
