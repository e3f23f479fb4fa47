package cluster_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
	"github.com/zkvstore/zkv/testdriver/cluster/composetest"
)

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestComposeDiscovery(t *testing.T) {
	p := composetest.NewProject(t, 0)
	c := p.Cluster(t, cluster.ComposeConfig{})
	if got, want := c.Nodes(), []string{"n1", "n2", "n3"}; !slices.Equal(got, want) {
		t.Errorf("Nodes() = %v, want %v", got, want)
	}
	if got, want := c.NATSURL(), "nats://127.0.0.1:14222"; got != want {
		t.Errorf("NATSURL() = %q, want %q (the published port of the nats service)", got, want)
	}
	if got, want := c.Describe("n2"), "container p_n2_1"; got != want {
		t.Errorf("Describe(n2) = %q, want %q", got, want)
	}
	if got, want := c.ZooKeeperMembers(), []string{"zoo1", "zoo2", "zoo3"}; !slices.Equal(got, want) {
		t.Errorf("ZooKeeperMembers() = %v, want %v", got, want)
	}
	ctx := testContext(t)
	u, err := c.HTTPURL(ctx, "n1")
	if err != nil || !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("HTTPURL(n1) = %q, %v; want the published port on 127.0.0.1", u, err)
	}
	v := c.Versions(ctx)
	if v["zookeeper"] != "3.8.0-test" || v["kvserver image"] != "github.com/zkvstore/zkv/kvserver:test" {
		t.Errorf("Versions() = %v", v)
	}
}

func TestComposeInNetwork(t *testing.T) {
	p := composetest.NewProject(t, 0)
	c := p.Cluster(t, cluster.ComposeConfig{InNetwork: true, HTTP: map[string]string{"n3": "http://10.0.0.3:9000/"}})
	if got, want := c.NATSURL(), "nats://nats:4222"; got != want {
		t.Errorf("NATSURL() = %q, want %q", got, want)
	}
	ctx := testContext(t)
	for id, want := range map[string]string{"n1": "http://n1:8001", "n2": "http://n2:8002", "n3": "http://10.0.0.3:9000"} {
		if got, err := c.HTTPURL(ctx, id); got != want || err != nil {
			t.Errorf("HTTPURL(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
}

func TestComposeKillAndStart(t *testing.T) {
	p := composetest.NewProject(t, 3)
	c := p.Cluster(t, cluster.ComposeConfig{APIVersion: "1.41"})
	ctx := testContext(t)

	if err := c.Stop(ctx, "n2", cluster.StopKill); err != nil {
		t.Fatalf("Stop(n2, kill): %v", err)
	}
	if p.Engine.Running(p.Nodes["n2"]) {
		t.Fatal("n2 still runs after Stop")
	}
	// A second stop of a stopped container is fine.
	if err := c.Stop(ctx, "n2", cluster.StopKill); err != nil {
		t.Fatalf("Stop of a stopped container: %v", err)
	}
	if err := c.Start(ctx, "n2"); err != nil {
		t.Fatalf("Start(n2): %v", err)
	}
	if !p.Engine.Running(p.Nodes["n2"]) {
		t.Fatal("n2 does not run after Start")
	}
	if hits := p.Health["n2"].Load(); hits < 4 {
		t.Errorf("/healthz was asked %d times; Start must poll until it answers 200 (after 3 failures)", hits)
	}
	want := []string{
		"POST /containers/" + p.Nodes["n2"].ID + "/kill signal=SIGKILL",
		"POST /containers/" + p.Nodes["n2"].ID + "/wait",
		"POST /containers/" + p.Nodes["n2"].ID + "/start",
	}
	calls := strings.Join(p.Engine.Calls(), "\n")
	for _, w := range want {
		if !strings.Contains(calls, strings.Replace(w, "/containers", "/v1.41/containers", 1)) {
			t.Errorf("no call %q (with the API version) among:\n%s", w, calls)
		}
	}
}

func TestComposeStopTerm(t *testing.T) {
	p := composetest.NewProject(t, 0)
	c := p.Cluster(t, cluster.ComposeConfig{StopTimeout: 200 * time.Millisecond})
	ctx := testContext(t)

	if err := c.Stop(ctx, "n1", cluster.StopTerm); err != nil {
		t.Fatalf("Stop(n1, term) of a container that exits 0: %v", err)
	}
	p.Engine.With(func() { p.Nodes["n3"].IgnoreTerm = true })
	err := c.Stop(ctx, "n3", cluster.StopTerm)
	if err == nil || !strings.Contains(err.Error(), "did not exit within") {
		t.Fatalf("Stop(n3, term) of a container ignoring SIGTERM = %v, want a 'did not exit within' error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the wait's deadline", err)
	}
	if p.Engine.Running(p.Nodes["n3"]) {
		t.Error("n3 still runs: Stop must kill it after the stop timeout")
	}
	calls := strings.Join(p.Engine.Calls(), "\n")
	if !strings.Contains(calls, p.Nodes["n3"].ID+"/kill signal=SIGTERM") || !strings.Contains(calls, p.Nodes["n3"].ID+"/kill signal=SIGKILL") {
		t.Errorf("want SIGTERM, then SIGKILL for n3; calls:\n%s", calls)
	}
}

func TestComposeStartExits(t *testing.T) {
	p := composetest.NewProject(t, 1<<30)
	c := p.Cluster(t, cluster.ComposeConfig{})
	ctx := testContext(t)
	if err := c.Stop(ctx, "n1", cluster.StopKill); err != nil {
		t.Fatal(err)
	}
	p.Engine.With(func() {
		p.Nodes["n1"].ExitOnStart = true
		p.Nodes["n1"].Logs = "line 1\nline 2\nkvserver: --zookeeper: bad address\n"
	})
	err := c.Start(ctx, "n1")
	if !errors.Is(err, cluster.ErrContainerExited) {
		t.Fatalf("Start of a container that exits = %v, want ErrContainerExited", err)
	}
	if !strings.Contains(err.Error(), "kvserver: --zookeeper: bad address") || !strings.Contains(err.Error(), "status 2") {
		t.Errorf("error %q lacks the exit status or the log tail", err)
	}
}

func TestComposeZooKeeper(t *testing.T) {
	p := composetest.NewProject(t, 0)
	c := p.Cluster(t, cluster.ComposeConfig{})
	ctx := testContext(t)
	if mode, err := c.ZooKeeperMode(ctx, "zoo2"); mode != "leader" || err != nil {
		t.Errorf("ZooKeeperMode(zoo2) = %q, %v; want leader", mode, err)
	}
	if err := c.KillZooKeeper(ctx, "zoo2"); err != nil {
		t.Fatalf("KillZooKeeper: %v", err)
	}
	if p.Engine.Running(p.ZK["zoo2"]) {
		t.Fatal("zoo2 still runs")
	}
	if _, err := c.ZooKeeperMode(ctx, "zoo2"); err == nil {
		t.Error("ZooKeeperMode of a killed member succeeded")
	}
	if err := c.StartZooKeeper(ctx, "zoo2"); err != nil {
		t.Fatalf("StartZooKeeper: %v", err)
	}
	if _, err := c.ZooKeeperMode(ctx, "zoo9"); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Errorf("ZooKeeperMode(zoo9) = %v, want ErrUnknownNode", err)
	}
}

func TestComposeErrors(t *testing.T) {
	p := composetest.NewProject(t, 0)
	ctx := testContext(t)

	c := p.Cluster(t, cluster.ComposeConfig{})
	if err := c.Stop(ctx, "n9", cluster.StopKill); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Errorf("Stop(n9) = %v, want ErrUnknownNode", err)
	}
	if err := c.Start(ctx, "n9"); !errors.Is(err, cluster.ErrUnknownNode) {
		t.Errorf("Start(n9) = %v, want ErrUnknownNode", err)
	}
	if err := c.Stop(ctx, "n1", cluster.Stop("sighup")); err == nil {
		t.Error("Stop with an unknown way succeeded")
	}

	_, err := cluster.NewCompose(ctx, cluster.ComposeConfig{Project: "p", Socket: p.Engine.Socket(), Nodes: []string{"n1", "n7"}})
	if !errors.Is(err, cluster.ErrNoContainer) {
		t.Errorf("NewCompose with a service without container = %v, want ErrNoContainer", err)
	}
	_, err = cluster.NewCompose(ctx, cluster.ComposeConfig{Project: "nope", Socket: p.Engine.Socket()})
	if !errors.Is(err, cluster.ErrNoContainer) {
		t.Errorf("NewCompose of a missing project = %v, want ErrNoContainer", err)
	}
	_, err = cluster.NewCompose(ctx, cluster.ComposeConfig{Project: "p", Socket: filepath.Join(t.TempDir(), "none.sock")})
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("NewCompose on a missing socket = %v, want an error naming it", err)
	}
}

func TestComposeOwnProject(t *testing.T) {
	p := composetest.NewProject(t, 0)
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	self := p.Engine.Add("p", "driver", nil, nil)
	p.Engine.With(func() { self.Name = host }) // the fake finds containers by name too
	ctx := testContext(t)
	c, err := cluster.NewCompose(ctx, cluster.ComposeConfig{Socket: p.Engine.Socket(), NATSURL: "nats://nats:4222"})
	if err != nil {
		t.Fatalf("NewCompose without a project, from inside a container: %v", err)
	}
	if c.Project() != "p" {
		t.Errorf("Project() = %q, want p (from the driver container's label)", c.Project())
	}
}

func TestComposeSaveLogs(t *testing.T) {
	p := composetest.NewProject(t, 0)
	p.Engine.With(func() { p.Nodes["n1"].Logs = "started\nleader\n" })
	c := p.Cluster(t, cluster.ComposeConfig{})
	dir := filepath.Join(t.TempDir(), "logs")
	if err := c.SaveLogs(testContext(t), dir); err != nil {
		t.Fatalf("SaveLogs: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "n1.log"))
	if err != nil || string(b) != "started\nleader\n" {
		t.Errorf("n1.log = %q, %v; want both lines, demultiplexed", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "p_n1_1.log")); err != nil {
		t.Errorf("the one-off container's log is missing: %v", err)
	}
}
