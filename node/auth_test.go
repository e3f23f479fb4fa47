package node_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// TestAuthenticatedCluster runs kvservers against a NATS server that
// requires a user and password, with ZooKeeper digest auth and ACLs.
func TestAuthenticatedCluster(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := startNATSServer(t, &server.Options{Username: "zkv", Password: "s3cret"})

	nodes := testenv.StartCluster(t, 2, harness.NodeOptions{
		ZooKeeper:      zk.Addr(),
		NATSURL:        ns.ClientURL(),
		SessionTimeout: stableTimeout,
		ElectionPath:   "/zkv/election",
		Args:           []string{"--leader-path", "/zkv/leader", "--zookeeper-auth", "zkv:zk-pw"},
		Env:            []string{"ZKV_NATS_USER=zkv", "ZKV_NATS_PASSWORD=s3cret"},
	})

	if nc, err := nats.Connect(ns.ClientURL(), nats.Timeout(2*time.Second)); err == nil {
		nc.Close()
		t.Fatal("a client without credentials connected")
	}
	opts, err := bus.Auth{User: "zkv", Password: "s3cret"}.Options()
	if err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL(), opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newCluster(t, zk, nodes, nc)
	c.waitLeader("", 15*time.Second)
	c.put("secret", "kept")
	for id := range c.nodes {
		c.waitValue(id, "secret", "kept")
	}
}

// startNATSServer starts an embedded NATS server with opts (authorization,
// permissions) on a free loopback port, stopped at the end of the test.
func startNATSServer(t *testing.T, opts *server.Options) *server.Server {
	t.Helper()
	opts.Host, opts.Port, opts.NoSigs, opts.NoLog = "127.0.0.1", -1, true, true
	ns, err := server.NewServer(opts)
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(ns.Shutdown)
	return ns
}

// newCluster wraps nodes a test started itself, with the test's own
// client connection nc.
func newCluster(t *testing.T, zk *harness.ZooKeeper, nodes []*harness.Node, nc *nats.Conn) *cluster {
	t.Helper()
	kv, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, zk: zk, nodes: map[string]*harness.Node{}, client: kv, nc: nc}
	for _, n := range nodes {
		c.nodes[n.ID()] = n
	}
	return c
}
