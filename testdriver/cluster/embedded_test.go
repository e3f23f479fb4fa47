package cluster_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/testenv"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// TestEmbeddedNATS runs three kvservers as NATS nodes clustered with
// routes, and no NATS server of their own: a client of one node's
// listener writes and reads through every node; the leader is killed and
// a client of a surviving node keeps working through the election; a
// client that knew only the killed node's URL reconnects to another node
// and keeps working too. The killed node comes back and rejoins; then a
// clean stop of the next leader moves its clients to the others.
func TestEmbeddedNATS(t *testing.T) {
	lc := testenv.StartLocal(t, cluster.LocalOptions{
		EmbeddedNATS:   true,
		SessionTimeout: time.Second,
		ServerLogLevel: "info",
	})
	if len(lc.NATS()) != 0 {
		t.Fatalf("%d NATS servers started outside the kvservers", len(lc.NATS()))
	}
	nodes := lc.Nodes()
	connect := func(id string) (*nats.Conn, *client.Client) {
		t.Helper()
		url := lc.NodeNATSURL(id)
		if url == "" {
			t.Fatalf("node %s has no NATS listener", id)
		}
		nc, err := nats.Connect(url, nats.Name("test via "+id), nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
		if err != nil {
			t.Fatalf("connect to %s's listener %s: %v", id, url, err)
		}
		t.Cleanup(nc.Close)
		c, err := client.New(nc, client.WithRequestTimeout(500*time.Millisecond))
		if err != nil {
			t.Fatal(err)
		}
		return nc, c
	}
	ctxFor := func(d time.Duration) context.Context {
		ctx, cancel := context.WithTimeout(context.Background(), d)
		t.Cleanup(cancel)
		return ctx
	}
	waitLeader := func(c *client.Client, running []string, not string) string {
		t.Helper()
		ag, _, err := cluster.WaitLeader(ctxFor(15*time.Second), c, running, cluster.LeaderWant{Not: not})
		if err != nil {
			t.Fatalf("no leader agreed by %v: %v", running, err)
		}
		return ag.Leader
	}
	waitValue := func(c *client.Client, node, key, want string) {
		t.Helper()
		testenv.WaitFor(t, 5*time.Second, fmt.Sprintf("%s to read %s=%s", node, key, want), func() error {
			r, err := c.Read(ctxFor(time.Second), key, client.FromNode(node))
			if err != nil {
				return err
			}
			if !r.Found || r.Value != want {
				return fmt.Errorf("read %+v", r)
			}
			return nil
		})
	}

	// Add and read through one node's listener.
	_, c1 := connect(nodes[0])
	leader := waitLeader(c1, nodes, "")
	if r, err := c1.Put(ctxFor(10*time.Second), "color", "blue"); err != nil || r.Leader != leader {
		t.Fatalf("put through %s: %+v, %v (leader %s)", nodes[0], r, err, leader)
	}
	for _, id := range nodes {
		waitValue(c1, id, "color", "blue")
	}

	// A client of a survivor, and one that knows only the leader's URL.
	var survivors []string
	for _, id := range nodes {
		if id != leader {
			survivors = append(survivors, id)
		}
	}
	_, cs := connect(survivors[0])
	victimNC, victim := connect(leader)
	testenv.WaitFor(t, 5*time.Second, "the leader's server to advertise the cluster's URLs", func() error {
		if got := victimNC.DiscoveredServers(); len(got) < len(survivors) {
			return fmt.Errorf("discovered %v", got)
		}
		return nil
	})
	victimURL := victimNC.ConnectedUrl()

	// Kill the leader: its NATS server dies with it.
	if err := lc.Stop(ctxFor(10*time.Second), leader, cluster.StopKill); err != nil {
		t.Fatal(err)
	}
	next := waitLeader(cs, survivors, leader)
	if r, err := cs.Put(ctxFor(10*time.Second), "color", "green"); err != nil || r.Leader != next {
		t.Fatalf("put through %s after the kill: %+v, %v (leader %s)", survivors[0], r, err, next)
	}
	for _, id := range survivors {
		waitValue(cs, id, "color", "green")
	}

	// The killed node's client moved to another node.
	testenv.WaitFor(t, 10*time.Second, "the killed node's client to reconnect elsewhere", func() error {
		if u := victimNC.ConnectedUrl(); !victimNC.IsConnected() || u == victimURL {
			return fmt.Errorf("status %v, url %q", victimNC.Status(), u)
		}
		return nil
	})
	if r, err := victim.Put(ctxFor(10*time.Second), "shape", "circle"); err != nil || r.Leader != next {
		t.Fatalf("put through the reconnected client: %+v, %v", r, err)
	}
	waitValue(victim, survivors[1], "shape", "circle")
	if !slices.Contains(survivors, next) {
		t.Fatalf("new leader %s is not a survivor", next)
	}

	// The killed node comes back on its ports and rejoins the NATS
	// cluster: a client of its listener writes through it.
	if err := lc.Start(ctxFor(30*time.Second), leader); err != nil {
		t.Fatal(err)
	}
	if err := lc.Process(leader).WaitReady(ctxFor(30 * time.Second)); err != nil {
		t.Fatal(err)
	}
	_, back := connect(leader)
	if _, err := back.Put(ctxFor(10*time.Second), "size", "large", client.Via(leader)); err != nil {
		t.Fatalf("put through the restarted %s: %v", leader, err)
	}
	waitValue(back, leader, "size", "large")

	// A clean stop of the new leader: a client connected to it moves to
	// another node, and the client of the restarted node keeps writing.
	stoppedNC, stopped := connect(next)
	stoppedURL := stoppedNC.ConnectedUrl()
	if err := lc.Stop(ctxFor(15*time.Second), next, cluster.StopTerm); err != nil {
		t.Fatalf("clean stop of %s: %v", next, err)
	}
	if err := lc.Process(next).ExitErr(); err != nil {
		t.Fatalf("%s exited uncleanly: %v", next, err)
	}
	var rest []string
	for _, id := range nodes {
		if id != next {
			rest = append(rest, id)
		}
	}
	third := waitLeader(back, rest, next)
	if r, err := back.Put(ctxFor(10*time.Second), "size", "small"); err != nil || r.Leader != third {
		t.Fatalf("put after the clean stop: %+v, %v (leader %s)", r, err, third)
	}
	testenv.WaitFor(t, 10*time.Second, "the stopped node's client to reconnect elsewhere", func() error {
		if u := stoppedNC.ConnectedUrl(); !stoppedNC.IsConnected() || u == stoppedURL {
			return fmt.Errorf("status %v, url %q", stoppedNC.Status(), u)
		}
		return nil
	})
	for _, id := range rest {
		waitValue(stopped, id, "size", "small")
	}
}
