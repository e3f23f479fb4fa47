package node_test

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
	clusterenv "github.com/zkvstore/zkv/testdriver/cluster"
)

// ZooKeeper session timeouts of the test clusters: short where a test
// waits for a crash to be noticed, the default elsewhere so that a loaded
// machine does not expire sessions in tests that are not about failover.
const (
	sessionTimeout = time.Second
	stableTimeout  = 4 * time.Second
)

// cluster is a test cluster: a real ZooKeeper, a real NATS server and
// kvserver processes.
type cluster struct {
	t      *testing.T
	zk     *harness.ZooKeeper
	nats   *harness.NATS
	nodes  map[string]*harness.Node
	client *client.Client
	nc     *nats.Conn
}

// startCluster starts n kvservers with the given extra flags on a new
// ZooKeeper and NATS.
func startCluster(t *testing.T, n int, session time.Duration, args ...string) *cluster {
	t.Helper()
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	nodes := testenv.StartCluster(t, n, harness.NodeOptions{
		ZooKeeper:      zk.Addr(),
		NATSURL:        ns.URL(),
		SessionTimeout: session,
		LogLevel:       "debug",
		Args:           args,
	})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	kv, err := client.New(nc, client.WithRequestTimeout(500*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, zk: zk, nats: ns, nodes: map[string]*harness.Node{}, client: kv, nc: nc}
	for _, node := range nodes {
		c.nodes[node.ID()] = node
	}
	return c
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// waitLeader polls until every running node agrees on one leader other
// than not (and that leader says so), and returns its ID and epoch.
func (c *cluster) waitLeader(not string, timeout time.Duration) (string, uint64) {
	c.t.Helper()
	var running []string
	for id, n := range c.nodes {
		if n.Running() {
			running = append(running, id)
		}
	}
	slices.Sort(running)
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	ag, _, err := clusterenv.WaitLeader(ctx, c.client, running, clusterenv.LeaderWant{Not: not})
	if err != nil {
		c.t.Fatalf("timed out after %v waiting for one leader agreed by all nodes: %v", timeout, err)
	}
	return ag.Leader, ag.Epoch
}

// waitValue polls node's local copy until key has want.
func (c *cluster) waitValue(node, key, want string) {
	c.t.Helper()
	testenv.WaitFor(c.t, 5*time.Second, fmt.Sprintf("%s to read %s=%s", node, key, want), func() error {
		r, err := c.client.Read(ctxFor(c.t, time.Second), key, client.FromNode(node))
		if err != nil {
			return err
		}
		if !r.Found || r.Value != want {
			return fmt.Errorf("read %+v", r)
		}
		return nil
	})
}

func (c *cluster) put(key, value string) bus.WriteReply {
	c.t.Helper()
	r, err := c.client.Put(ctxFor(c.t, 10*time.Second), key, value)
	if err != nil {
		c.t.Fatalf("put %s=%s: %v", key, value, err)
	}
	if !r.OK || r.Key != key || r.Revision == 0 || r.Epoch == 0 {
		c.t.Fatalf("put %s=%s: reply %+v", key, value, r)
	}
	return r
}

// TestScenarios runs the specification's three scenarios in order on one
// cluster: add and read, leader election, stale read.
func TestScenarios(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)

	// 1. Add and read: the write reaches the leader; every server returns it.
	w := c.put("color", "blue")
	if w.Leader != leader || w.Epoch != epoch {
		t.Fatalf("write answered by %s epoch %d, want leader %s epoch %d", w.Leader, w.Epoch, leader, epoch)
	}
	for id := range c.nodes {
		c.waitValue(id, "color", "blue")
	}

	// 2. Leader election: kill the leader; a new one is elected; later
	// writes go to it.
	killed := c.nodes[leader]
	if err := killed.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	newLeader, newEpoch := c.waitLeader(leader, sessionTimeout+10*time.Second)
	t.Logf("SIGKILL failover: %s -> %s in %s (session timeout %s)", leader, newLeader, time.Since(start), sessionTimeout)
	if newEpoch <= epoch {
		t.Fatalf("new epoch %d is not above old epoch %d", newEpoch, epoch)
	}
	w = c.put("shape", "circle")
	if w.Leader != newLeader || w.Epoch != newEpoch {
		t.Fatalf("write after failover answered by %s epoch %d, want %s epoch %d", w.Leader, w.Epoch, newLeader, newEpoch)
	}
	for id, n := range c.nodes {
		if n.Running() {
			c.waitValue(id, "shape", "circle")
		}
	}

	// 3. Stale read: the killed server comes back as a follower with an
	// empty store; it answers "not found" until the key is written again.
	if err := killed.Restart(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "restarted node to follow", func() error {
		st, err := c.client.Status(ctxFor(t, time.Second), leader)
		if err != nil {
			return err
		}
		if st.Role != bus.RoleFollower || st.Leader != newLeader {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	for _, key := range []string{"color", "shape"} {
		r, err := c.client.Read(ctxFor(t, 2*time.Second), key, client.FromNode(leader))
		if err != nil {
			t.Fatal(err)
		}
		if r.Found || r.Value != "" || r.Node != leader || r.Role != bus.RoleFollower {
			t.Fatalf("restarted %s read %s = %+v, want found=false from a follower", leader, key, r)
		}
	}
	st, err := c.client.Status(ctxFor(t, time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	if !st.Stale {
		t.Errorf("restarted node status %+v: want stale=true (it missed writes)", st)
	}
	w = c.put("color", "green")
	if w.Leader != newLeader {
		t.Fatalf("write answered by %s, want %s", w.Leader, newLeader)
	}
	for id := range c.nodes {
		c.waitValue(id, "color", "green")
	}
	r, err := c.client.Read(ctxFor(t, 2*time.Second), "shape", client.FromNode(leader))
	if err != nil || r.Found {
		t.Fatalf("restarted node read shape = %+v, %v: want still not found", r, err)
	}
}

func TestWriteThroughFollowerAndMissingKey(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)
	var follower string
	for id := range c.nodes {
		if id != leader {
			follower = id
			break
		}
	}
	w, err := c.client.Put(ctxFor(t, 5*time.Second), "k", "v", client.Via(follower))
	if err != nil {
		t.Fatal(err)
	}
	if !w.OK || w.Leader != leader || w.Epoch != epoch {
		t.Fatalf("write via %s: %+v, want the leader %s's reply", follower, w, leader)
	}
	for id := range c.nodes {
		c.waitValue(id, "k", "v")
	}
	// The HTTP API of a follower routes a PUT to the leader too.
	body := httpDo(t, "PUT", "http://"+c.nodes[follower].HTTPAddr()+"/v1/kv/http-key", "from curl", 200)
	if !strings.Contains(body, `"leader":"`+leader+`"`) {
		t.Fatalf("HTTP PUT via follower: %s", body)
	}
	c.waitValue(follower, "http-key", "from curl")
	httpDo(t, "GET", "http://"+c.nodes[follower].HTTPAddr()+"/v1/kv/http-key", "", 200)

	for id := range c.nodes {
		r, err := c.client.Read(ctxFor(t, 2*time.Second), "never-written", client.FromNode(id))
		if err != nil {
			t.Fatal(err)
		}
		if r.Found || r.Value != "" || r.Node != id {
			t.Fatalf("%s read of a missing key: %+v", id, r)
		}
		httpDo(t, "GET", "http://"+c.nodes[id].HTTPAddr()+"/v1/kv/never-written", "", 404)
	}
}

func TestBadInputGetsCodesAndLeaderKeepsLeading(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)
	var follower string
	for id := range c.nodes {
		if id != leader {
			follower = id
		}
	}
	subj := c.client.Subjects()
	long := strings.Repeat("k", bus.MaxKeyBytes+1)
	big := strings.Repeat("v", bus.MaxValueBytes+1)
	tests := []struct {
		name, subject string
		body          []byte
		want          bus.Code
	}{
		{"not json", subj.Write(), []byte("garbage"), bus.CodeBadRequest},
		{"empty body", subj.Write(), nil, bus.CodeBadRequest},
		{"json array", subj.Write(), []byte(`["a"]`), bus.CodeBadRequest},
		{"unknown field", subj.Write(), []byte(`{"key":"a","value":"1","ttl":3}`), bus.CodeBadRequest},
		{"two objects", subj.Write(), []byte(`{"key":"a","value":"1"}{}`), bus.CodeBadRequest},
		{"invalid utf-8", subj.Write(), []byte("{\"key\":\"\xff\",\"value\":\"1\"}"), bus.CodeBadRequest},
		{"empty key", subj.Write(), []byte(`{"key":"","value":"1"}`), bus.CodeInvalidKey},
		{"long key", subj.Write(), []byte(`{"key":"` + long + `","value":"1"}`), bus.CodeInvalidKey},
		{"control char key", subj.Write(), []byte(`{"key":"a\u0000b","value":"1"}`), bus.CodeInvalidKey},
		{"value too large", subj.Write(), []byte(`{"key":"a","value":"` + big + `"}`), bus.CodeValueTooLarge},
		{"follower write garbage", subj.NodeWrite(follower), []byte("{"), bus.CodeBadRequest},
		{"follower write long key", subj.NodeWrite(follower), []byte(`{"key":"` + long + `","value":"1"}`), bus.CodeInvalidKey},
		{"read garbage", subj.NodeRead(follower), []byte("nope"), bus.CodeBadRequest},
		{"read unknown field", subj.NodeRead(leader), []byte(`{"key":"a","x":1}`), bus.CodeBadRequest},
		{"read empty key", subj.Read(), []byte(`{"key":""}`), bus.CodeInvalidKey},
		{"unknown op", subj.Write(), []byte(`{"op":"remove","key":"a","value":"1"}`), bus.CodeBadRequest},
		{"if_revision on create", subj.NodeWrite(follower), []byte(`{"op":"create","key":"a","value":"1","if_revision":1}`), bus.CodeBadRequest},
		{"negative if_revision", subj.Write(), []byte(`{"key":"a","value":"1","if_revision":-1}`), bus.CodeBadRequest},
		{"delete with a value", subj.Write(), []byte(`{"op":"delete","key":"a","value":"1"}`), bus.CodeBadRequest},
		{"negative ttl", subj.Write(), []byte(`{"key":"a","value":"1","ttl_ms":-1}`), bus.CodeBadRequest},
		{"ttl as a string", subj.NodeWrite(follower), []byte(`{"key":"a","value":"1","ttl_ms":"30s"}`), bus.CodeBadRequest},
		{"empty prefix", subj.Write(), []byte(`{"op":"delete","key":"","prefix":true}`), bus.CodeInvalidKey},
		{"prefix delete without key", subj.Write(), []byte(`{"op":"delete","prefix":true}`), bus.CodeBadRequest},
		{"compact in the future", subj.Write(), []byte(`{"op":"compact","revision":9007199254740000}`), bus.CodeFuture},
		{"compact without revision", subj.Write(), []byte(`{"op":"compact"}`), bus.CodeBadRequest},
		{"read in the future", subj.NodeRead(follower), []byte(`{"key":"a","revision":9007199254740000}`), bus.CodeFuture},
		{"read at a negative revision", subj.NodeRead(follower), []byte(`{"key":"a","revision":-3}`), bus.CodeBadRequest},
		{"history limit too large", subj.NodeHistory(follower), []byte(`{"key":"a","limit":100}`), bus.CodeBadRequest},
		{"history of no key", subj.NodeHistory(leader), []byte(`{"key":""}`), bus.CodeInvalidKey},
		{"changes forged cursor", subj.NodeChanges(follower), []byte(`{"after":9007199254740993}`), bus.CodeBadRequest},
		{"changes garbage", subj.NodeChanges(leader), []byte(`{"after":"x"}`), bus.CodeBadRequest},
		{"changes long wait", subj.NodeChanges(leader), []byte(`{"after":0,"wait_ms":999999}`), bus.CodeBadRequest},
	}
	for _, tt := range tests {
		var msg *nats.Msg
		testenv.WaitFor(t, 10*time.Second, tt.name+": an answer on "+tt.subject, func() (err error) {
			msg, err = c.nc.Request(tt.subject, tt.body, 2*time.Second)
			return err
		})
		var reply bus.WriteReply
		err := bus.DecodeReply(msg.Data, &reply)
		var be *bus.Error
		if !errors.As(err, &be) || be.Code != tt.want {
			t.Errorf("%s: reply %s: want code %s", tt.name, msg.Data, tt.want)
		}
		if msg.Header.Get("Nats-Service-Error-Code") == "" {
			t.Errorf("%s: no micro error header on %s", tt.name, msg.Data)
		}
	}
	// The same over HTTP.
	addr := "http://" + c.nodes[follower].HTTPAddr()
	httpDo(t, "PUT", addr+"/v1/kv/a", big, 413)
	httpDo(t, "GET", addr+"/v1/kv/"+long, "", 400)
	httpDo(t, "PUT", addr+"/v1/kv/a?if_revision=-1", "1", 400)
	httpDo(t, "DELETE", addr+"/v1/kv/a?if_revision=abc", "", 400)
	httpDo(t, "PUT", addr+"/v1/kv/a?create=maybe", "1", 400)
	httpDo(t, "PUT", addr+"/v1/kv/a?create=true&if_revision=1", "1", 400)
	// A misspelt or repeated condition is refused, not dropped, and a
	// delete takes no body.
	httpDo(t, "PUT", addr+"/v1/kv/a?if-revision=1", "1", 400)
	httpDo(t, "PUT", addr+"/v1/kv/a?if_revision=1&if_revision=2", "1", 400)
	httpDo(t, "DELETE", addr+"/v1/kv/a?create=true", "", 400)
	httpDo(t, "DELETE", addr+"/v1/kv/a", "x", 400)
	httpDo(t, "PUT", addr+"/v1/kv/a?request_id=%01", "1", 400)
	// A request ID makes an HTTP retry return the first reply.
	first := httpDo(t, "PUT", addr+"/v1/kv/rid?request_id=r-1", "1", 200)
	again := httpDo(t, "PUT", addr+"/v1/kv/rid?request_id=r-1", "1", 200)
	if strings.Contains(first, `"duplicate"`) || !strings.Contains(again, `"duplicate":true`) {
		t.Errorf("HTTP retry with a request_id: first %s, again %s", first, again)
	}

	// Every server is still up, the leader still leads the same epoch, and
	// writes still work.
	for id, n := range c.nodes {
		if !n.Running() {
			t.Fatalf("%s exited", id)
		}
	}
	if l, e := c.waitLeader("", 5*time.Second); l != leader || e != epoch {
		t.Fatalf("leader changed to %s epoch %d after bad input, was %s epoch %d", l, e, leader, epoch)
	}
	c.put("still", "works")
	for id := range c.nodes {
		c.waitValue(id, "still", "works")
	}
}

func TestSIGTERMHandsOverWithoutSessionTimeout(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	// A long session timeout: a handover that waited for it would take 8s.
	const long = 8 * time.Second
	nodes := testenv.StartCluster(t, 3, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL(), SessionTimeout: long})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kv, _ := client.New(nc)
	c := &cluster{t: t, zk: zk, nats: ns, nodes: map[string]*harness.Node{}, client: kv, nc: nc}
	for _, n := range nodes {
		c.nodes[n.ID()] = n
	}
	leader, epoch := c.waitLeader("", 10*time.Second)
	c.put("before", "1")

	start := time.Now()
	if err := c.nodes[leader].Stop(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatalf("SIGTERM of the leader: %v (a clean stop must exit 0)", err)
	}
	newLeader, newEpoch := c.waitLeader(leader, long/2)
	took := time.Since(start)
	t.Logf("SIGTERM handover: %s -> %s in %s (session timeout %s)", leader, newLeader, took, long)
	if newEpoch <= epoch {
		t.Fatalf("epoch %d after handover, was %d", newEpoch, epoch)
	}
	w := c.put("after", "2")
	if w.Leader != newLeader {
		t.Fatalf("write answered by %s, want %s", w.Leader, newLeader)
	}
}

func TestOldEpochReplicationIsDropped(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)
	c.put("x", "current")
	for id := range c.nodes {
		c.waitValue(id, "x", "current")
	}
	// A deposed leader's update: an older epoch, a later sequence number,
	// signed with the cluster key as a deposed server would sign it.
	sg := testenv.ClusterSigner(t, c.zk.Addr(), testenv.DefaultRecordPath, "")
	subject := c.client.Subjects().Replication()
	stale := bus.Update{Kind: bus.KindPut, Epoch: epoch - 1, Seq: 1000, Key: "x", Value: "from-old-leader", Leader: "ghost"}
	if err := c.nc.PublishMsg(sg.Msg(subject, bus.Encode(stale))); err != nil {
		t.Fatal(err)
	}
	marker := bus.Update{Kind: bus.KindEpoch, Epoch: epoch - 1, Seq: 999, Leader: "ghost"}
	if err := c.nc.PublishMsg(sg.Msg(subject, bus.Encode(marker))); err != nil {
		t.Fatal(err)
	}
	if err := c.nc.Flush(); err != nil {
		t.Fatal(err)
	}
	// A real write after it: once every node has it, each has also seen
	// (and must have dropped) the old-epoch messages sent before.
	c.put("y", "after")
	for id := range c.nodes {
		c.waitValue(id, "y", "after")
		r, err := c.client.Read(ctxFor(t, time.Second), "x", client.FromNode(id))
		if err != nil {
			t.Fatal(err)
		}
		if r.Value != "current" {
			t.Errorf("%s applied an old-epoch update: x=%q", id, r.Value)
		}
	}
	if l, _ := c.waitLeader("", 5*time.Second); l != leader {
		t.Fatalf("leader changed from %s to %s", leader, l)
	}
}

func TestLeaderThatLosesZooKeeperStopsAcknowledging(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	c.put("a", "1")
	if err := c.zk.Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	// The leader stops acknowledging once it learns ZooKeeper is gone. A
	// write acknowledged before that (the kill takes a moment to reach its
	// session) is simply the newest value. A write that raced with the
	// disconnection may have been applied and refused ("may or may not
	// survive"). So reads may show the last acknowledged value or any
	// value sent after it, never an older one.
	values := []string{"1"} // every value sent, in order
	lastAcked := 0          // index in values of the newest acknowledged
	attempt := 0
	testenv.WaitFor(t, sessionTimeout+5*time.Second, "writes to be refused", func() error {
		ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
		defer cancel()
		attempt++
		value := fmt.Sprintf("refused-%d", attempt)
		values = append(values, value)
		msg, err := c.nc.RequestWithContext(ctx, c.client.Subjects().Write(), bus.Encode(bus.WriteRequest{Key: "a", Value: value}))
		if errors.Is(err, nats.ErrNoResponders) {
			return nil
		}
		if err != nil {
			return err
		}
		var r bus.WriteReply
		if err := bus.DecodeReply(msg.Data, &r); errors.Is(err, bus.ErrNotLeader) {
			return nil
		}
		lastAcked = len(values) - 1
		return fmt.Errorf("still acknowledged: %s", msg.Data)
	})
	t.Logf("leader %s stopped acknowledging %s after ZooKeeper was killed (%d of %d writes acknowledged before)", leader, time.Since(start), lastAcked, attempt)
	// Local reads are still served.
	for id := range c.nodes {
		r, err := c.client.Read(ctxFor(t, time.Second), "a", client.FromNode(id))
		if err != nil {
			t.Fatalf("%s: local read after ZooKeeper was killed: %v", id, err)
		}
		if !r.Found || !slices.Contains(values[lastAcked:], r.Value) {
			t.Errorf("%s: a=%q (found %v), want one of %q: the last acknowledged value or one sent after it", id, r.Value, r.Found, values[lastAcked:])
		}
	}
}

// pauseFollowerOnceAllConfirm waits until acks=all writes are confirmed by
// all three servers (the leader learns the membership from a ZooKeeper
// watch), then SIGSTOPs a follower, resumed at the end of the test. It
// returns the leader and the paused node.
func (c *cluster) pauseFollowerOnceAllConfirm() (string, *harness.Node) {
	c.t.Helper()
	leader, _ := c.waitLeader("", 15*time.Second)
	testenv.WaitFor(c.t, 10*time.Second, "acks=all confirmed by 3 of 3", func() error {
		r, err := c.client.Put(ctxFor(c.t, 10*time.Second), "a", "1", client.WithAcks(bus.AcksAll))
		if err != nil {
			return err
		}
		if r.Confirmed != 3 || r.Members != 3 {
			return fmt.Errorf("reply %+v", r)
		}
		return nil
	})
	var paused *harness.Node
	for id, n := range c.nodes {
		if id != leader {
			paused = n
			break
		}
	}
	if err := paused.Pause(); err != nil {
		c.t.Fatal(err)
	}
	c.t.Cleanup(func() { _ = paused.Resume() })
	return leader, paused
}

func TestAcksWithAPausedReplica(t *testing.T) {
	c := startCluster(t, 3, stableTimeout, "--write-timeout", "1s")
	nc, kv := c.nc, c.client
	_, paused := c.pauseFollowerOnceAllConfirm()
	var r bus.WriteReply

	// One write, not retried: the leader answers timeout, saying how many
	// confirmed.
	msg, err := nc.Request(kv.Subjects().Write(), []byte(`{"key":"b","value":"2","acks":"all"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrTimeout) || !strings.Contains(err.Error(), "2 of 3") {
		t.Fatalf("acks=all with %s paused: %s, want timeout naming 2 of 3", paused.ID(), msg.Data)
	}
	r, err = kv.Put(ctxFor(t, 10*time.Second), "c", "3", client.WithAcks(bus.AcksMajority))
	if err != nil || r.Confirmed < 2 {
		t.Fatalf("acks=majority with one replica paused: %+v, %v", r, err)
	}
	if err := paused.Resume(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 15*time.Second, "acks=all once the replica resumed", func() error {
		r, err := kv.Put(ctxFor(t, 5*time.Second), "d", "4", client.WithAcks(bus.AcksAll))
		if err != nil {
			return err
		}
		if r.Confirmed != r.Members {
			return fmt.Errorf("reply %+v", r)
		}
		return nil
	})
}

func TestCatchUpAfterRestart(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	nodes := testenv.StartCluster(t, 3, harness.NodeOptions{
		ZooKeeper: zk.Addr(), NATSURL: ns.URL(), SessionTimeout: stableTimeout,
		Args: []string{"--catch-up"},
	})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kv, _ := client.New(nc)
	c := &cluster{t: t, zk: zk, nodes: map[string]*harness.Node{}, client: kv, nc: nc}
	for _, n := range nodes {
		c.nodes[n.ID()] = n
	}
	leader, _ := c.waitLeader("", 15*time.Second)
	var follower *harness.Node
	for id, n := range c.nodes {
		if id != leader {
			follower = n
		}
	}
	const keys = 300
	for i := 0; i < keys; i++ {
		c.put(fmt.Sprintf("k%03d", i), strings.Repeat("v", i))
	}
	if err := follower.Kill(); err != nil {
		t.Fatal(err)
	}
	c.put("while-down", "x")
	if err := follower.Restart(ctxFor(t, 15*time.Second)); err != nil {
		t.Fatal(err)
	}
	// The restarted copy fetches the leader's store, then says it is current.
	testenv.WaitFor(t, 20*time.Second, follower.ID()+" to catch up", func() error {
		st, err := kv.Status(ctxFor(t, time.Second), follower.ID())
		if err != nil {
			return err
		}
		if st.Stale || st.Keys != keys+1 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	for _, key := range []string{"k000", "k150", "k299", "while-down"} {
		r, err := kv.Read(ctxFor(t, 2*time.Second), key, client.FromNode(follower.ID()))
		if err != nil || !r.Found {
			t.Fatalf("%s on the caught-up %s: %+v, %v", key, follower.ID(), r, err)
		}
	}
	// And it keeps following the live stream.
	w := c.put("after", "catch-up")
	c.waitValue(follower.ID(), "after", "catch-up")
	st, _ := kv.Status(ctxFor(t, time.Second), follower.ID())
	if st.AppliedSeq != w.Revision || st.Stale {
		t.Fatalf("after catch-up: status %+v, want applied_seq %d and not stale", st, w.Revision)
	}
}

// TestStuckSubscriberTakesNoWrites: a process that holds the write subject
// but never answers (a paused or deposed leader still subscribed, here in
// the old leaders' queue group) must not make writes wait out their
// timeout, whether sent to kv.write or forwarded by a follower.
func TestStuckSubscriberTakesNoWrites(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)
	follower := ""
	for id := range c.nodes {
		if id != leader {
			follower = id
			break
		}
	}
	nc := c.client.Conn()
	subj := c.client.Subjects()
	for _, s := range []string{subj.Write(), subj.EpochWrite(epoch)} {
		q, err := nc.QueueSubscribe(s, bus.WriteQueueGroup, func(*nats.Msg) {})
		if err != nil {
			t.Fatal(err)
		}
		defer q.Unsubscribe()
		p, err := nc.Subscribe(s, func(*nats.Msg) {})
		if err != nil {
			t.Fatal(err)
		}
		defer p.Unsubscribe()
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := c.client.Put(ctxFor(t, time.Second), fmt.Sprintf("k%d", i), "v"); err != nil {
			t.Fatalf("write %d on %s: %v", i, subj.Write(), err)
		}
		if _, err := c.client.Put(ctxFor(t, time.Second), fmt.Sprintf("f%d", i), "v", client.Via(follower)); err != nil {
			t.Fatalf("write %d through %s: %v", i, follower, err)
		}
	}
	// The leader answers its epoch's own subject, which it advertises.
	msg, err := nc.Request(subj.EpochWrite(epoch), []byte(`{"key":"e","value":"1"}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var w bus.WriteReply
	if err := bus.DecodeReply(msg.Data, &w); err != nil || !w.OK || w.Leader != leader {
		t.Fatalf("write on %s: %+v, %v", subj.EpochWrite(epoch), w, err)
	}
}

// TestNoWriteAcknowledgedWhileCutOffFromNATS: a leader whose NATS server is
// gone keeps its ZooKeeper lease, but an HTTP write it applies stays in
// the reconnect buffer, so it answers unavailable, never ok; once NATS is
// back, writes are acknowledged again.
func TestNoWriteAcknowledgedWhileCutOffFromNATS(t *testing.T) {
	c := startCluster(t, 1, stableTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	url := "http://" + c.nodes[leader].HTTPAddr() + "/v1/kv/cut"
	httpDo(t, "PUT", url, "before", 200)
	c.nats.Shutdown()
	body := httpDo(t, "PUT", url, "while cut off", 503)
	if !strings.Contains(body, `"code":"unavailable"`) {
		t.Fatalf("write while cut off from NATS: %s", body)
	}
	if err := c.nats.Restart(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "a write acknowledged after NATS is back", func() error {
		req, _ := http.NewRequest("PUT", url, strings.NewReader("after"))
		r, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer r.Body.Close()
		if r.StatusCode != 200 {
			return fmt.Errorf("status %d", r.StatusCode)
		}
		return nil
	})
}
