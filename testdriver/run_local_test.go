package testdriver_test

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
	"github.com/zkvstore/zkv/testdriver"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// sessionTimeout is the servers' ZooKeeper session timeout in these tests.
const sessionTimeout = 2 * time.Second

// testCtx returns a context for one test, ended at cleanup.
func testCtx(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// TestRunLocalPasses runs the three scenarios on a local cluster, as
// `testdriver run` does, and checks the summary, the log directory and
// that every process is gone afterwards.
func TestRunLocalPasses(t *testing.T) {
	bin := testenv.Binaries(t).KVServer
	root := t.TempDir()
	var out bytes.Buffer
	sum, err := testdriver.RunLocal(testCtx(t, 3*time.Minute), testdriver.LocalRun{
		Local:   cluster.LocalOptions{KVServer: bin, SessionTimeout: sessionTimeout},
		LogRoot: root,
	}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunLocal: %v", err)
	}
	if !sum.Passed() || sum.Result != testdriver.Pass {
		t.Fatalf("summary says %s, want PASS", sum.Result)
	}
	for _, name := range []string{testdriver.ScenarioAddRead, testdriver.ScenarioLeaderElection, testdriver.ScenarioStaleRead} {
		if sc := sum.Scenario(name); sc == nil || sc.Result != testdriver.Pass {
			t.Errorf("scenario %s: %+v", name, sc)
		}
	}
	// A standalone ZooKeeper has no member to kill.
	if sc := sum.Scenario(testdriver.ScenarioZooKeeperLoss); sc == nil || sc.Result != testdriver.Skip || !strings.Contains(sc.Reason, "--zookeeper-ensemble") {
		t.Errorf("scenario %s: %+v, want SKIP with a reason", testdriver.ScenarioZooKeeperLoss, sc)
	}
	fo := sum.Scenario(testdriver.ScenarioLeaderElection).Failover
	if fo == nil || fo.Leader <= 0 || fo.Write <= 0 || fo.NewLeader == "" || fo.NewLeader == fo.OldLeader || fo.NewEpoch <= fo.OldEpoch {
		t.Fatalf("failover %+v: want a new leader, a higher epoch and both times", fo)
	}
	text := out.String()
	stopped := fo.OldLeader
	for _, want := range []string{
		"== 1/4 add-read: ",
		"PUT color=blue via kv.write -> leader " + stopped + " epoch ",
		"STOP " + stopped + " (the leader, pid ",
		"GET color from " + stopped + " -> empty (found:false) (follower",
		`GET color from ` + stopped + ` -> "yellow" (follower`,
		"leader-election  PASS    ",
		"zookeeper-loss   SKIP    -         needs a ZooKeeper ensemble",
		"PASS: 3 passed, 0 failed, 1 skipped",
		"logs: " + sum.LogDir,
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if m := regexp.MustCompile(`leader-election  PASS    (\d+) ms`).FindStringSubmatch(text); m == nil {
		t.Errorf("the summary table has no failover figure")
	}

	// The log directory.
	if filepath.Dir(sum.LogDir) != root {
		t.Errorf("log dir %s is not under %s", sum.LogDir, root)
	}
	for _, f := range []string{"driver.log", "summary.json", "n1.log", "n2.log", "n3.log", "zookeeper.log", "nats.log"} {
		if st, err := os.Stat(filepath.Join(sum.LogDir, f)); err != nil || st.Size() == 0 {
			t.Errorf("%s: %v (empty or missing)", f, err)
		}
	}
	driverLog, _ := os.ReadFile(filepath.Join(sum.LogDir, "driver.log"))
	if !strings.Contains(string(driverLog), "[2.2] STOP "+stopped) || !strings.Contains(string(driverLog), "level=DEBUG") {
		t.Errorf("driver.log lacks the printed steps or the debug lines")
	}
	var js struct {
		Result           string            `json:"result"`
		SessionTimeoutMS float64           `json:"session_timeout_ms"`
		Versions         map[string]string `json:"versions"`
		Scenarios        []struct {
			Failover *struct {
				WriteMS float64 `json:"write_ms"`
			} `json:"failover"`
			Steps []json.RawMessage `json:"steps"`
		} `json:"scenarios"`
	}
	raw, _ := os.ReadFile(filepath.Join(sum.LogDir, "summary.json"))
	if err := json.Unmarshal(raw, &js); err != nil {
		t.Fatalf("summary.json: %v", err)
	}
	if js.Result != "PASS" || js.SessionTimeoutMS != 2000 || len(js.Scenarios) != 4 || js.Scenarios[1].Failover == nil ||
		js.Scenarios[1].Failover.WriteMS <= 0 || len(js.Scenarios[0].Steps) == 0 {
		t.Errorf("summary.json: %s", raw)
	}
	for _, part := range []string{"go", "kvserver", "nats-server", "zookeeper"} {
		if js.Versions[part] == "" {
			t.Errorf("summary.json has no %s version: %v", part, js.Versions)
		}
	}

	// Every process started is gone.
	for _, n := range sum.Nodes {
		pid, err := strconv.Atoi(strings.TrimSuffix(strings.TrimPrefix(n.Where, "pid "), ", stopped"))
		if err != nil {
			t.Errorf("node %s: where %q", n.ID, n.Where)
			continue
		}
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("node %s (pid %d) still exists after RunLocal: %v", n.ID, pid, err)
		}
	}
}

// TestRunLocalWithoutKVServer fails before starting anything and still
// writes summary.json.
func TestRunLocalWithoutKVServer(t *testing.T) {
	root := t.TempDir()
	var out bytes.Buffer
	sum, err := testdriver.RunLocal(testCtx(t, time.Minute), testdriver.LocalRun{
		Local:   cluster.LocalOptions{KVServer: filepath.Join(root, "no-such-kvserver")},
		LogRoot: root,
	}, &out)
	if err == nil || sum.Passed() || sum.Error == "" {
		t.Fatalf("RunLocal = %+v, %v; want an error", sum, err)
	}
	if !strings.Contains(out.String(), "the cluster did not start") {
		t.Errorf("output:\n%s", out.String())
	}
	if _, err := os.Stat(filepath.Join(sum.LogDir, "summary.json")); err != nil {
		t.Errorf("summary.json: %v", err)
	}
}

// extraNode is a Cluster that reports one more node than the real one
// has: a stand-in the test serves itself over NATS.
type extraNode struct {
	cluster.Cluster
	id string
}

func (e extraNode) Nodes() []string { return append(e.Cluster.Nodes(), e.id) }

func (e extraNode) Describe(id string) string {
	if id == e.id {
		return "a stand-in served by the test"
	}
	return e.Cluster.Describe(id)
}

// fakeNode serves id's status subject by copying a real node's status
// (so that it agrees on the leader) and, when readValue is not nil, its
// read subject with found:true and *readValue.
func fakeNode(t *testing.T, natsURL, id, realNode string, readValue *string) {
	t.Helper()
	nc, err := nats.Connect(natsURL, nats.Name("fake "+id))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	proxy, err := nats.Connect(natsURL, nats.Name("fake "+id+" proxy"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(proxy.Close)
	kv, err := client.New(proxy)
	if err != nil {
		t.Fatal(err)
	}
	subj := bus.Subjects{}
	_, err = nc.Subscribe(subj.NodeStatus(id), func(m *nats.Msg) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		st, err := kv.Status(ctx, realNode)
		if err != nil {
			_ = m.Respond(bus.EncodeError(err))
			return
		}
		_ = m.Respond(bus.Encode(bus.Status{Node: id, Role: bus.RoleFollower, Epoch: st.Epoch, Leader: st.Leader}))
	})
	if err != nil {
		t.Fatal(err)
	}
	if readValue != nil {
		_, err = nc.Subscribe(subj.NodeRead(id), func(m *nats.Msg) {
			var req bus.ReadRequest
			if err := bus.Decode(m.Data, &req); err != nil {
				_ = m.Respond(bus.EncodeError(err))
				return
			}
			_ = m.Respond(bus.Encode(bus.ReadReply{Found: true, Key: req.Key, Value: *readValue, Node: id, Role: bus.RoleFollower, Epoch: 1}))
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestChecksFail runs add-read against a real two-server cluster plus a
// stand-in node that misbehaves, and checks that the scenario fails with
// a message naming the node, what was expected and what came.
func TestChecksFail(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	lc := testenv.StartLocal(t, cluster.LocalOptions{Servers: 2, SessionTimeout: sessionTimeout})
	cfg := testdriver.Config{
		Scenarios:      []string{testdriver.ScenarioAddRead},
		SessionTimeout: sessionTimeout,
		ReadTimeout:    5 * time.Second,
	}
	wrong := "WRONG"
	tests := []struct {
		name string
		// node is the stand-in; readValue its answer to reads (nil: no
		// read responder); noStatus leaves its status unanswered too.
		node      string
		readValue *string
		noStatus  bool
		timeout   time.Duration
		want      []string
	}{
		{
			name: "wrong value", node: "n9", readValue: &wrong,
			want: []string{
				`GET color from n9 -> "WRONG" (follower, epoch 1, `,
				`expected: "blue" from n9`,
				`got:      "WRONG" from n9`,
				`FAIL: [1.5] n9 returned "WRONG" for color, expected "blue"`,
			},
		},
		{
			name: "no responders on read", node: "n8",
			want: []string{
				"GET color from n8 -> no answer: no responders",
				`expected: "blue" from n8`,
				"got:      no answer: no responders (nobody is subscribed to kv.node.n8.read)",
				"FAIL: [1.5] n8 did not answer the read of color",
			},
		},
		{
			name: "no responders at all", node: "n7", noStatus: true, timeout: 3 * time.Second,
			want: []string{
				"STATUS of n1, n2, n7 -> no agreed leader",
				"expected: one leader reported by n1, n2 and n7",
				"n7: no answer: no responders (nobody is subscribed to kv.node.n7.status)",
				"FAIL: [1.1] the servers did not agree on a leader",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if !tt.noStatus {
				fakeNode(t, lc.NATSURL(), tt.node, "n1", tt.readValue)
			}
			c := cfg
			c.Timeout = tt.timeout
			var out bytes.Buffer
			sum, err := testdriver.Run(ctx, c, extraNode{Cluster: lc, id: tt.node}, &out)
			t.Logf("output:\n%s", out.String())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if sum.Passed() || sum.Scenario(testdriver.ScenarioAddRead).Result != testdriver.Fail {
				t.Fatalf("add-read %s, want FAIL", sum.Scenario(testdriver.ScenarioAddRead).Result)
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			if !strings.Contains(out.String(), "add-read  FAIL") {
				t.Errorf("the summary table does not say FAIL")
			}
		})
	}
}

// TestUpCommandsWork starts `testdriver up`'s cluster, runs every printed
// command the machine has the tools for, kills the leader with the
// printed command and sees the new leader announced, then stops it.
func TestUpCommandsWork(t *testing.T) {
	bins := testenv.Binaries(t)
	ctx, cancel := context.WithCancel(testCtx(t, 3*time.Minute))
	defer cancel()
	var out harness.SyncBuffer
	ready := make(chan testdriver.UpInfo, 1)
	done := make(chan error, 1)
	go func() {
		done <- testdriver.Up(ctx, testdriver.UpConfig{
			Local:   cluster.LocalOptions{KVServer: bins.KVServer, SessionTimeout: sessionTimeout},
			KVCtl:   bins.KVCtl,
			LogRoot: t.TempDir(),
			Ready:   func(i testdriver.UpInfo) { ready <- i },
		}, &out)
	}()
	var info testdriver.UpInfo
	select {
	case info = <-ready:
	case err := <-done:
		t.Fatalf("Up returned before it was ready: %v\n%s", err, out.String())
	case <-ctx.Done():
		t.Fatalf("Up not ready: %v\n%s", ctx.Err(), out.String())
	}
	t.Logf("output:\n%s", out.String())
	for _, n := range info.Nodes {
		if !strings.Contains(out.String(), n.HTTPAddr) || !strings.Contains(out.String(), strconv.Itoa(n.PID)) {
			t.Errorf("output does not show %s's address and pid", n.ID)
		}
	}

	var kill string
	for _, c := range info.Commands() {
		if !strings.Contains(out.String(), c.Line) {
			t.Errorf("command %q is not printed", c.Line)
		}
		if c.Kill {
			if kill == "" {
				kill = c.Line
			}
			continue
		}
		tool := strings.Fields(c.Line)[0]
		if _, err := exec.LookPath(tool); err != nil && !strings.Contains(tool, "/") {
			t.Logf("skipping %q: %s is not installed", c.Line, tool)
			continue
		}
		cctx, ccancel := context.WithTimeout(ctx, 20*time.Second)
		var stderr strings.Builder
		cmd := exec.CommandContext(cctx, "sh", "-c", c.Line)
		cmd.Stderr = &stderr
		got, err := cmd.Output()
		ccancel()
		if err != nil {
			t.Errorf("%s: %v\n%s%s", c.Line, err, got, stderr.String())
			continue
		}
		if all := string(got) + stderr.String(); strings.Contains(all, "error") || strings.Contains(all, "no responders") {
			t.Errorf("%s answered an error:\n%s", c.Line, all)
		}
		// A get prints the value on stdout, and which node answered on
		// stderr.
		if strings.Contains(c.Line, " get a ") && strings.TrimSpace(string(got)) != "1" {
			t.Errorf("%s printed %q, want 1", c.Line, got)
		}
	}

	// The printed kill command crashes the leader; another takes over.
	if err := exec.CommandContext(ctx, "sh", "-c", kill).Run(); err != nil {
		t.Fatalf("%s: %v", kill, err)
	}
	testenv.WaitFor(t, sessionTimeout+30*time.Second, "a new leader to be announced", func() error {
		if !strings.Contains(out.String(), "now leads (epoch") || !strings.Contains(out.String(), info.Leader+" (pid") {
			return errors.New("not yet")
		}
		return nil
	})
	// The printed restart line brings the killed server back.
	_, after, _ := strings.Cut(out.String(), "To restart it by hand:\n")
	restart, _, _ := strings.Cut(strings.TrimSpace(after), "\n")
	if !strings.HasSuffix(restart, " &") {
		t.Fatalf("no restart line after the kill:\n%s", out.String())
	}
	restarted := exec.CommandContext(ctx, "sh", "-c", strings.TrimSuffix(restart, " &")+" & echo $!")
	pidText, err := restarted.Output()
	if err != nil {
		t.Fatalf("%s: %v", restart, err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(pidText)))
	if err != nil {
		t.Fatalf("%s: pid %q", restart, pidText)
	}
	restartedProc, err := os.FindProcess(pid)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = restartedProc.Kill() }()
	var restartedAddr string
	for _, n := range info.Nodes {
		if n.ID == info.Leader {
			restartedAddr = n.HTTPAddr
		}
	}
	hc := httpsClient(t, info.HTTP.CA)
	testenv.WaitFor(t, 30*time.Second, "the restarted server to answer", func() error {
		resp, err := hc.Get("https://" + restartedAddr + "/healthz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	_ = restartedProc.Signal(syscall.SIGTERM)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Up: %v\n%s", err, out.String())
		}
	case <-time.After(time.Minute):
		t.Fatal("Up did not return after its context ended")
	}
	if !strings.Contains(out.String(), "stopped; logs in ") {
		t.Errorf("output does not say it stopped:\n%s", out.String())
	}
	for _, n := range info.Nodes {
		if err := syscall.Kill(n.PID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("%s (pid %d) still exists after Up returned", n.ID, n.PID)
		}
	}
	if info.ZooKeeperPID > 0 {
		if err := syscall.Kill(info.ZooKeeperPID, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("ZooKeeper (pid %d) still exists after Up returned", info.ZooKeeperPID)
		}
	}
}

// TestZooKeeperLossEnsemble runs zookeeper-loss on a local cluster with a
// three-member ZooKeeper ensemble: a member and then the kvserver leader
// are killed for real, and everything started is gone afterwards.
func TestZooKeeperLossEnsemble(t *testing.T) {
	bin := testenv.Binaries(t).KVServer
	var out bytes.Buffer
	sum, err := testdriver.RunLocal(testCtx(t, 3*time.Minute), testdriver.LocalRun{
		Config:  testdriver.Config{Scenarios: []string{testdriver.ScenarioZooKeeperLoss}},
		Local:   cluster.LocalOptions{KVServer: bin, SessionTimeout: sessionTimeout, ZooKeeperEnsemble: true},
		LogRoot: t.TempDir(),
	}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunLocal: %v", err)
	}
	sc := sum.Scenario(testdriver.ScenarioZooKeeperLoss)
	if !sum.Passed() || sc == nil || sc.Result != testdriver.Pass {
		t.Fatalf("zookeeper-loss: %+v", sc)
	}
	fo := sc.Failover
	if fo == nil || fo.Stop != cluster.StopKill || fo.Write <= 0 || fo.NewLeader == fo.OldLeader || fo.NewEpoch <= fo.OldEpoch {
		t.Fatalf("failover %+v: want a SIGKILL, a new leader, a higher epoch and the times", fo)
	}
	var actions []string
	for _, st := range sc.Steps {
		actions = append(actions, st.Action)
	}
	if got, want := strings.Join(actions, " "), "SRVR STOP SRVR STATUS STOP STATUS PUT GET GET START START STATUS"; got != want {
		t.Errorf("steps %q, want %q", got, want)
	}
	text := out.String()
	for _, want := range []string{
		"started a ZooKeeper ensemble in ",
		"== 1/1 zookeeper-loss: ",
		"[1.1] SRVR to ZooKeeper zk1, zk2, zk3 -> ",
		"(the ensemble's leader) with SIGKILL -> stopped; 2 of 3 members remain, still a quorum",
		"STOP " + fo.OldLeader + " (the leader, pid ",
		"PUT ensemble=two-of-three via kv.write -> leader " + fo.NewLeader,
		"STATUS of " + fo.OldLeader + " -> follower of " + fo.NewLeader,
		"zookeeper-loss  PASS    ",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q", want)
		}
	}
	// Every process started is gone: the kvservers and the members.
	pids := regexp.MustCompile(`\(pid (\d+)\)`).FindAllStringSubmatch(text, -1)
	if len(pids) < 6 {
		t.Fatalf("output names %d pids, want the members' and the servers'", len(pids))
	}
	for _, m := range pids {
		pid, _ := strconv.Atoi(m[1])
		if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("pid %d still exists after RunLocal: %v", pid, err)
		}
	}
}

// testEnsemble gives a real cluster a ZooKeeper ensemble that exists only
// in the test: zoo3 leads until it is killed, then zoo2 (unless
// neverServes); killErr fails the kill.
type testEnsemble struct {
	cluster.Cluster
	killErr     error
	neverServes bool

	mu    sync.Mutex
	down  map[string]bool
	calls []string
}

func (s *testEnsemble) ZooKeeperMembers() []string { return []string{"zoo1", "zoo2", "zoo3"} }

func (s *testEnsemble) ZooKeeperMode(_ context.Context, m string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case s.down[m]:
		return "", errors.New("connection refused")
	case len(s.down) > 0 && s.neverServes:
		return "", errors.New("this ZooKeeper instance is not currently serving requests")
	case m == "zoo3", m == "zoo2" && s.down["zoo3"]:
		return "leader", nil
	}
	return "follower", nil
}

func (s *testEnsemble) KillZooKeeper(_ context.Context, m string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "kill "+m)
	if s.killErr != nil {
		return s.killErr
	}
	s.down[m] = true
	return nil
}

func (s *testEnsemble) StartZooKeeper(_ context.Context, m string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "start "+m)
	delete(s.down, m)
	return nil
}

// TestZooKeeperLossChecks runs zookeeper-loss on real kvservers with a
// stub ensemble: a member that cannot be killed and an ensemble that does
// not serve again fail the scenario with what was expected (and the
// member is started again); a stub that behaves lets it pass.
func TestZooKeeperLossChecks(t *testing.T) {
	ctx := testCtx(t, 3*time.Minute)
	lc := testenv.StartLocal(t, cluster.LocalOptions{Servers: 2, SessionTimeout: sessionTimeout})
	tests := []struct {
		name        string
		killErr     error
		neverServes bool
		pass        bool
		calls       string
		want        []string
	}{
		{
			name: "kill fails", killErr: errors.New("permission denied"), calls: "kill zoo3",
			want: []string{
				"[1.2] STOP ZooKeeper zoo3 (the ensemble's leader) with SIGKILL -> error (",
				"got:      permission denied",
				"FAIL: [1.2] killing ZooKeeper zoo3 failed: permission denied",
			},
		},
		{
			name: "no quorum again", neverServes: true, calls: "kill zoo3, start zoo3",
			want: []string{
				"[1.3] SRVR to ZooKeeper zoo1, zoo2 -> not serving (",
				"expected: every member serving as leader or follower, one of them leader",
				"got:      zoo1: this ZooKeeper instance is not currently serving requests",
				"FAIL: [1.3] ZooKeeper zoo1 and zoo2 did not serve within 2000 ms",
			},
		},
		{
			name: "passes", pass: true, calls: "kill zoo3, start zoo3",
			want: []string{
				"[1.3] SRVR to ZooKeeper zoo1, zoo2 -> zoo1 follower, zoo2 leader (",
				"[1.4] STATUS of n1, n2 -> leader n1 epoch 1, reported by both (",
				"[1.5] STOP n1 (the leader, pid ",
				"[1.10] START n1 again (pid ",
				"[1.11] STATUS of n1 -> follower of n2, epoch 2, 0 keys",
				"zookeeper-loss  PASS    ",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zk := &testEnsemble{Cluster: lc, killErr: tt.killErr, neverServes: tt.neverServes, down: map[string]bool{}}
			var out bytes.Buffer
			sum, err := testdriver.Run(ctx, testdriver.Config{
				Scenarios:      []string{testdriver.ScenarioZooKeeperLoss},
				SessionTimeout: sessionTimeout,
				Timeout:        2 * time.Second,
			}, zk, &out)
			t.Logf("output:\n%s", out.String())
			if err != nil {
				t.Fatalf("Run: %v", err)
			}
			if sum.Passed() != tt.pass {
				t.Errorf("passed %v, want %v", sum.Passed(), tt.pass)
			}
			for _, want := range tt.want {
				if !strings.Contains(out.String(), want) {
					t.Errorf("output lacks %q", want)
				}
			}
			zk.mu.Lock()
			calls := strings.Join(zk.calls, ", ")
			zk.mu.Unlock()
			if calls != tt.calls {
				t.Errorf("ZooKeeper calls %q, want %q", calls, tt.calls)
			}
		})
	}
}

// httpsClient trusts the CA in the PEM file ca.
func httpsClient(t *testing.T, ca string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(ca)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		t.Fatalf("no certificate in %s", ca)
	}
	return &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
