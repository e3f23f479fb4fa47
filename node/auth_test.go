package node_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"zkv/bus"
	"zkv/internal/harness"
	"zkv/internal/testenv"
)

// TestAuthenticatedCluster runs kvservers against a NATS server that
// requires a user and password, with ZooKeeper digest auth and ACLs.
func TestAuthenticatedCluster(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: -1, NoSigs: true, NoLog: true, Username: "zkv", Password: "s3cret"})
	if err != nil {
		t.Fatal(err)
	}
	go ns.Start()
	if !ns.ReadyForConnections(10 * time.Second) {
		t.Fatal("NATS not ready")
	}
	t.Cleanup(ns.Shutdown)

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
	client, _ := bus.NewClient(nc)
	c := &cluster{t: t, zk: zk, nodes: map[string]*harness.Node{}, client: client, nc: nc}
	for _, n := range nodes {
		c.nodes[n.ID()] = n
	}
	c.waitLeader("", 15*time.Second)
	c.put("secret", "kept")
	for id := range c.nodes {
		c.waitValue(id, "secret", "kept")
	}
}
