package harness

import (
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
	"github.com/nats-io/nats.go"
)

func testContext(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// zkConnect opens a go-zookeeper client and waits for its session.
func zkConnect(t *testing.T, ctx context.Context, servers ...string) *zk.Conn {
	t.Helper()
	conn, events, err := zk.Connect(servers, 4*time.Second, zk.WithLogger(nopLogger{}))
	if err != nil {
		t.Fatalf("zk.Connect: %v", err)
	}
	t.Cleanup(conn.Close)
	for {
		select {
		case ev := <-events:
			if ev.State == zk.StateHasSession {
				return conn
			}
		case <-ctx.Done():
			t.Fatalf("no ZooKeeper session with %v: %v", servers, ctx.Err())
		}
	}
}

type nopLogger struct{}

func (nopLogger) Printf(string, ...any) {}

// dumpOnFailure logs the tail of a ZooKeeper log when the test fails.
func dumpOnFailure(t *testing.T, zks ...*ZooKeeper) {
	t.Cleanup(func() {
		if t.Failed() {
			for _, z := range zks {
				t.Logf("%s log tail:\n%s", z.Name(), z.LogTail(30))
			}
		}
	})
}

func TestFreePorts(t *testing.T) {
	ports, err := FreePorts(20)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || seen[p] {
			t.Fatalf("bad or repeated port %d in %v", p, ports)
		}
		seen[p] = true
	}
	p, err := FreePort()
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
	if err != nil {
		t.Fatalf("port %d from FreePort cannot be bound: %v", p, err)
	}
	l.Close()
}

func TestWaitFor(t *testing.T) {
	n := 0
	if err := WaitFor(testContext(t, 5*time.Second), time.Millisecond, func() error {
		if n++; n < 3 {
			return errors.New("not yet")
		}
		return nil
	}); err != nil {
		t.Fatalf("WaitFor: %v", err)
	}
	errNope := errors.New("nope")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	err := WaitFor(ctx, 5*time.Millisecond, func() error { return errNope })
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, errNope) {
		t.Fatalf("WaitFor timeout error = %v; want both the deadline and f's error", err)
	}
}

func TestLastLines(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"a\nb\nc\n", 2, "b\nc"},
		{"a\nb\nc", 5, "a\nb\nc"},
		{"a\nb\nc", 1, "c"},
		{"", 3, "(log is empty)"},
	} {
		if got := lastLines([]byte(tc.in), tc.n); got != tc.want {
			t.Errorf("lastLines(%q, %d) = %q; want %q", tc.in, tc.n, got, tc.want)
		}
	}
}

func TestZooKeeperMissing(t *testing.T) {
	t.Setenv(EnvZooKeeperJar, filepath.Join(t.TempDir(), "no-such.jar"))
	_, err := StartZooKeeper(testContext(t, 5*time.Second), ZooKeeperOptions{})
	if !errors.Is(err, ErrZooKeeperMissing) || !strings.Contains(err.Error(), "apt-get install -y zookeeper") {
		t.Fatalf("StartZooKeeper without a jar: %v; want ErrZooKeeperMissing with the apt-get hint", err)
	}
	_, err = StartEnsemble(testContext(t, 5*time.Second), 3, ZooKeeperOptions{})
	if !errors.Is(err, ErrZooKeeperMissing) {
		t.Fatalf("StartEnsemble without a jar: %v; want ErrZooKeeperMissing", err)
	}
}

func TestZooKeeperStandalone(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	start := time.Now()
	z, err := StartZooKeeper(ctx, ZooKeeperOptions{})
	if err != nil {
		t.Fatalf("StartZooKeeper: %v", err)
	}
	t.Logf("standalone ZooKeeper ready in %v at %s (pid %d)", time.Since(start).Round(time.Millisecond), z.Addr(), z.PID())
	dumpOnFailure(t, z)
	dir := z.Dir()
	t.Cleanup(func() {
		if err := z.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("temp dir %s still there after Stop (stat: %v)", dir, err)
		}
		if err := z.Restart(testContext(t, 10*time.Second)); err == nil {
			t.Error("Restart succeeded after Stop removed the temp dir")
			_ = z.Kill()
		}
	})

	if z.Host() != "127.0.0.1" || z.Addr() != "127.0.0.1:"+strconv.Itoa(z.Port()) {
		t.Errorf("Host/Port/Addr = %s/%d/%s", z.Host(), z.Port(), z.Addr())
	}
	if mode, version, err := ZooKeeperStat(ctx, z.Addr()); err != nil || mode != "standalone" || version == "" {
		t.Fatalf("ZooKeeperStat = %q, %q, %v; want standalone and a version", mode, version, err)
	}
	if mode, err := z.Mode(ctx); err != nil || mode != "standalone" {
		t.Fatalf("Mode = %q, %v", mode, err)
	}
	if ok := zk.FLWRuok([]string{z.Addr()}, 5*time.Second); !ok[0] {
		t.Fatalf("ruok = %v, want imok", ok)
	}

	conn := zkConnect(t, ctx, z.Addr())
	if _, err := conn.Create("/harness", []byte("kept"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create: %v", err)
	}
	if data, _, err := conn.Get("/harness"); err != nil || string(data) != "kept" {
		t.Fatalf("get = %q, %v", data, err)
	}
	conn.Close()

	oldPID, exited := z.PID(), z.Exited()
	if err := z.Kill(); err != nil {
		t.Fatalf("Kill: %v", err)
	}
	select {
	case <-exited:
	default:
		t.Fatal("Exited not closed after Kill")
	}
	if z.Running() {
		t.Fatal("Running after Kill")
	}
	if err := syscall.Kill(oldPID, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("pid %d still exists after Kill (kill 0: %v)", oldPID, err)
	}

	start = time.Now()
	if err := z.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	t.Logf("restarted in %v (pid %d)", time.Since(start).Round(time.Millisecond), z.PID())
	if z.PID() == oldPID {
		t.Errorf("PID unchanged after Restart")
	}
	conn = zkConnect(t, ctx, z.Addr())
	if data, _, err := conn.Get("/harness"); err != nil || string(data) != "kept" {
		t.Fatalf("after Kill+Restart get = %q, %v; want the data kept", data, err)
	}
	conn.Close()
	if z.LogPath() == "" || !strings.Contains(TailFile(z.LogPath(), 500), "binding to port") {
		t.Errorf("log %s does not show ZooKeeper's own log:\n%s", z.LogPath(), z.LogTail(20))
	}
}

func TestZooKeeperLogWriterAndDir(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	dir := t.TempDir()
	var log SyncBuffer
	z, err := StartZooKeeper(ctx, ZooKeeperOptions{Dir: dir, TickTime: 100 * time.Millisecond, Log: &log})
	if err != nil {
		t.Fatalf("StartZooKeeper: %v", err)
	}
	if err := z.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
	if err := z.Stop(); err != nil {
		t.Errorf("second Stop: %v", err)
	}
	if z.LogPath() != "" {
		t.Errorf("LogPath = %q with a Log writer", z.LogPath())
	}
	if !strings.Contains(log.String(), "binding to port") {
		t.Errorf("Log writer got no ZooKeeper log: %q", log.String())
	}
	cfg, err := os.ReadFile(filepath.Join(dir, "zoo.cfg"))
	if err != nil {
		t.Fatalf("given Dir was removed or not used: %v", err)
	}
	if !strings.Contains(string(cfg), "tickTime=100\n") {
		t.Errorf("zoo.cfg does not have the tick time:\n%s", cfg)
	}
	// The directory was given, so it survives Stop and Restart can use it.
	port := z.Port()
	if err := z.Restart(ctx); err != nil {
		t.Fatalf("Restart after Stop: %v", err)
	}
	if mode, err := z.Mode(ctx); err != nil || mode != "standalone" || z.Port() != port {
		t.Fatalf("after Restart: Mode %q, %v, port %d (was %d)", mode, err, z.Port(), port)
	}
	if err := z.Stop(); err != nil {
		t.Errorf("Stop: %v", err)
	}
}

func TestEnsemble(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 120*time.Second)
	start := time.Now()
	e, err := StartEnsemble(ctx, 3, ZooKeeperOptions{})
	if err != nil {
		t.Fatalf("StartEnsemble: %v", err)
	}
	t.Logf("ensemble of 3 ready in %v: %s", time.Since(start).Round(time.Millisecond), e.Connect())
	members := e.Members()
	dumpOnFailure(t, members...)
	dir := e.Dir()
	t.Cleanup(func() {
		if err := e.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("ensemble dir %s still there after Stop", dir)
		}
	})

	if got, want := e.Connect(), strings.Join([]string{members[0].Addr(), members[1].Addr(), members[2].Addr()}, ","); got != want {
		t.Errorf("Connect = %q; want %q", got, want)
	}
	leaders := 0
	for _, z := range members {
		mode, err := z.Mode(ctx)
		if err != nil {
			t.Fatalf("%s Mode: %v", z.Name(), err)
		}
		if mode == "leader" {
			leaders++
		} else if mode != "follower" {
			t.Fatalf("%s Mode = %q", z.Name(), mode)
		}
	}
	if leaders != 1 {
		t.Fatalf("%d leaders", leaders)
	}
	leader, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}

	conn := zkConnect(t, ctx, e.Addrs()...)
	if _, err := conn.Create("/before", []byte("1"), 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create: %v", err)
	}

	// Kill the leader: the two others elect a new one and keep serving.
	killed := time.Now()
	if err := leader.Kill(); err != nil {
		t.Fatalf("Kill %s: %v", leader.Name(), err)
	}
	if err := WaitFor(ctx, 50*time.Millisecond, func() error {
		_, err := conn.Create("/after", []byte("2"), 0, zk.WorldACL(zk.PermAll))
		if errors.Is(err, zk.ErrNodeExists) {
			return nil
		}
		return err
	}); err != nil {
		t.Fatalf("create after killing leader %s: %v", leader.Name(), err)
	}
	newLeader, err := e.Leader(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("killed leader %s; %s leads, znode created %v after the kill", leader.Name(), newLeader.Name(), time.Since(killed).Round(time.Millisecond))
	if newLeader == leader {
		t.Fatalf("killed leader %s still leads", leader.Name())
	}

	// The killed member comes back on its ports and data and catches up.
	port := leader.Port()
	if err := leader.Restart(ctx); err != nil {
		t.Fatalf("Restart %s: %v", leader.Name(), err)
	}
	if leader.Port() != port {
		t.Fatalf("port changed on Restart")
	}
	if mode, err := leader.Mode(ctx); err != nil || mode != "follower" {
		t.Fatalf("restarted %s Mode = %q, %v; want follower", leader.Name(), mode, err)
	}
	if err := e.WaitReady(ctx); err != nil {
		t.Fatal(err)
	}
	direct := zkConnect(t, ctx, leader.Addr())
	if err := WaitFor(ctx, 50*time.Millisecond, func() error {
		_, err := direct.Sync("/after")
		if err != nil {
			return err
		}
		_, _, err = direct.Get("/after")
		return err
	}); err != nil {
		t.Fatalf("restarted member does not serve /after: %v", err)
	}
}

func TestNATSRestart(t *testing.T) {
	t.Parallel()
	var log SyncBuffer
	n, err := StartNATS(NATSOptions{Log: &log})
	if err != nil {
		t.Fatalf("StartNATS: %v", err)
	}
	t.Cleanup(n.Shutdown)
	url := n.URL()
	if !strings.HasPrefix(url, "nats://127.0.0.1:") || n.Port() <= 0 {
		t.Fatalf("URL = %q", url)
	}

	reconnected := make(chan struct{}, 1)
	nc, err := nats.Connect(url,
		nats.MaxReconnects(-1),
		nats.ReconnectWait(20*time.Millisecond),
		nats.ReconnectHandler(func(*nats.Conn) { reconnected <- struct{}{} }),
	)
	if err != nil {
		t.Fatalf("nats.Connect: %v", err)
	}
	t.Cleanup(nc.Close)
	sub, err := nc.SubscribeSync("harness.test")
	if err != nil {
		t.Fatal(err)
	}
	roundTrip := func() {
		t.Helper()
		if err := nc.Publish("harness.test", []byte("hi")); err != nil {
			t.Fatal(err)
		}
		if _, err := sub.NextMsg(5 * time.Second); err != nil {
			t.Fatalf("NextMsg: %v", err)
		}
	}
	roundTrip()

	old := n.Server()
	if err := n.Restart(); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if n.URL() != url || n.Server() == old {
		t.Fatalf("after Restart URL %q (was %q), same server %v", n.URL(), url, n.Server() == old)
	}
	select {
	case <-reconnected:
	case <-time.After(10 * time.Second):
		t.Fatal("client did not reconnect after Restart")
	}
	roundTrip()
	if !strings.Contains(log.String(), "Server is ready") {
		t.Errorf("Log got no server log: %q", log.String())
	}
	n.Shutdown()
	n.Shutdown()
}

// fakeNode starts the test binary as a stand-in kvserver.
func fakeNode(t *testing.T, ctx context.Context, opts NodeOptions) (*Node, error) {
	t.Helper()
	opts.Env = append(opts.Env, envFakeKVServer+"=1")
	if opts.LogDir == "" && opts.Log == nil {
		opts.LogDir = t.TempDir()
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return StartNode(ctx, exe, opts)
}

func TestNodeLifecycle(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)
	natsSrv, err := StartNATS(NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(natsSrv.Shutdown)
	// Something listening stands in for ZooKeeper for the fake's /readyz.
	zkL, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { zkL.Close() })

	n, err := fakeNode(t, ctx, NodeOptions{
		ID: "n1", ZooKeeper: zkL.Addr().String(), NATSURL: natsSrv.URL(),
		SessionTimeout: time.Second, LogLevel: "debug",
	})
	if err != nil {
		t.Fatalf("StartNode: %v", err)
	}
	t.Cleanup(func() { _ = n.Kill() })
	if n.ID() != "n1" || !strings.HasPrefix(n.HTTPAddr(), "127.0.0.1:") || n.PID() <= 0 {
		t.Fatalf("ID %q HTTPAddr %q PID %d", n.ID(), n.HTTPAddr(), n.PID())
	}
	if err := n.WaitReady(ctx); err != nil {
		t.Fatalf("WaitReady: %v", err)
	}
	log := TailFile(n.LogPath(), 10)
	for _, want := range []string{`"--session-timeout" "1s"`, `"--log-level" "debug"`, `"--zookeeper"`, `"--nats"`} {
		if !strings.Contains(log, want) {
			t.Errorf("log lacks %s:\n%s", want, log)
		}
	}

	// Paused, the node does not answer; resumed, it does.
	if err := n.Pause(); err != nil {
		t.Fatal(err)
	}
	pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	err = n.WaitHealthy(pctx)
	cancel()
	if err == nil {
		t.Fatal("paused node answered /healthz")
	}
	if err := n.Resume(); err != nil {
		t.Fatal(err)
	}
	if err := n.WaitHealthy(ctx); err != nil {
		t.Fatalf("after Resume: %v", err)
	}

	// Clean SIGTERM: exit 0.
	if err := n.Stop(ctx); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	select {
	case <-n.Exited():
	default:
		t.Fatal("Exited not closed after Stop")
	}
	if n.Running() || n.ExitErr() != nil {
		t.Fatalf("Running %v ExitErr %v after a clean Stop", n.Running(), n.ExitErr())
	}

	// Restart on the same port; Kill gives a death by SIGKILL.
	addr, oldPID := n.HTTPAddr(), n.PID()
	if err := n.Restart(ctx); err != nil {
		t.Fatalf("Restart: %v", err)
	}
	if n.HTTPAddr() != addr || n.PID() == oldPID || !n.Running() {
		t.Fatalf("after Restart addr %s (was %s) pid %d (was %d)", n.HTTPAddr(), addr, n.PID(), oldPID)
	}
	if err := n.Kill(); err != nil {
		t.Fatal(err)
	}
	var ee *exec.ExitError
	if err := n.ExitErr(); !errors.As(err, &ee) || ee.Sys().(syscall.WaitStatus).Signal() != syscall.SIGKILL {
		t.Fatalf("ExitErr after Kill = %v", err)
	}
	if strings.Count(TailFile(n.LogPath(), 100), "starting with") != 2 {
		t.Errorf("log file was not appended to across Restart:\n%s", TailFile(n.LogPath(), 100))
	}
}

func TestNodeFailures(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 30*time.Second)

	// A node that dies at start: the error carries its log.
	_, err := fakeNode(t, ctx, NodeOptions{ID: "bad", Args: []string{"--fail", "cannot reach the moon"}})
	if err == nil || !strings.Contains(err.Error(), "cannot reach the moon") || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("StartNode of a failing node: %v", err)
	}

	// A non-zero exit on SIGTERM is Stop's error.
	var log SyncBuffer
	n, err := fakeNode(t, ctx, NodeOptions{ID: "n7", Log: &log, Args: []string{"--exit-code", "4"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = n.Kill() })
	if n.LogPath() != "" {
		t.Errorf("LogPath = %q with a Log writer", n.LogPath())
	}
	err = n.Stop(ctx)
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 4 {
		t.Fatalf("Stop = %v; want exit status 4", err)
	}
	if !strings.Contains(log.String(), "exiting 4") || !strings.Contains(n.LogTail(5), "exiting 4") {
		t.Errorf("log writer / LogTail missed the output: %q / %q", log.String(), n.LogTail(5))
	}

	// A port already taken by someone who is not going away is not retried
	// with another port when the port was given.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = fakeNode(t, ctx, NodeOptions{ID: "n8", Port: l.Addr().(*net.TCPAddr).Port})
	if !errors.Is(err, errAddrInUse) {
		t.Fatalf("StartNode on a taken port: %v", err)
	}
}

func TestBuildBinaries(t *testing.T) {
	ctx := testContext(t, 5*time.Minute)
	root, err := ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ok, _ := hasGoFiles(filepath.Join(root, "cmd", "kvserver")); !ok {
		t.Skip("cmd/kvserver has no Go files yet; nothing to build")
	}
	start := time.Now()
	bins, err := BuildBinaries(ctx, "", t.TempDir(), false)
	if err != nil {
		t.Fatalf("BuildBinaries: %v", err)
	}
	t.Logf("built %+v in %v", bins, time.Since(start).Round(time.Millisecond))
	for _, p := range []string{bins.KVServer, bins.KVCtl, bins.TestDriver} {
		if p == "" {
			continue
		}
		if st, err := os.Stat(p); err != nil || st.Mode()&0o111 == 0 {
			t.Errorf("%s: not an executable (%v)", p, err)
		}
	}
}
