package node_test

import (
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// TestShippedNATSPermissions runs a cluster on a NATS server configured
// with compose/nats/zkv.conf: servers work as usual; a client can write,
// read, watch and ask for status, but can neither publish what only
// servers may send nor subscribe to a leader subject.
func TestShippedNATSPermissions(t *testing.T) {
	t.Setenv("ZKV_NATS_SERVER_PASSWORD", "server-pw")
	t.Setenv("ZKV_NATS_CLIENT_PASSWORD", "client-pw")
	opts, err := server.ProcessConfigFile(filepath.Join("..", "compose", "nats", "zkv.conf"))
	if err != nil {
		t.Fatal(err)
	}
	ns := startNATSServer(t, opts)
	zk := testenv.StartZooKeeper(t)
	nodes := testenv.StartCluster(t, 2, harness.NodeOptions{
		ZooKeeper: zk.Addr(), NATSURL: ns.ClientURL(), SessionTimeout: stableTimeout,
		Env: []string{"ZKV_NATS_USER=zkv-server", "ZKV_NATS_PASSWORD=server-pw"},
	})

	var mu sync.Mutex
	var violations []string
	nc, err := nats.Connect(ns.ClientURL(), nats.UserInfo("zkv-client", "client-pw"),
		nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
			mu.Lock()
			defer mu.Unlock()
			violations = append(violations, err.Error())
		}))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	c := newCluster(t, zk, nodes, nc)
	kv := c.client
	c.waitLeader("", 15*time.Second)
	w, err := kv.Watch(ctxFor(t, 30*time.Second), "")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c.put("k", "v")
	for id := range c.nodes {
		c.waitValue(id, "k", "v")
	}
	select {
	case u := <-w.Updates():
		if u.Key != "k" {
			t.Fatalf("watch saw %+v", u)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a client with the client permissions saw no update")
	}

	// What only servers may do is refused by the NATS server itself.
	subj := kv.Subjects()
	for _, s := range []string{subj.Replication(), subj.Ack(), subj.LeaderSnapshot()} {
		if err := nc.Publish(s, []byte(`{}`)); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := nc.QueueSubscribe(subj.Write(), bus.WriteQueueGroup, func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil && !errors.Is(err, nats.ErrPermissionViolation) {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 5*time.Second, "four permission violations", func() error {
		mu.Lock()
		defer mu.Unlock()
		n := 0
		for _, v := range violations {
			if strings.Contains(strings.ToLower(v), "permissions violation") {
				n++
			}
		}
		if n < 4 {
			return errors.New(strings.Join(violations, "; "))
		}
		return nil
	})
}
