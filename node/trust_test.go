package node_test

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// attacker is a plain NATS client with no cluster key: what anyone who can
// reach the NATS server has.
func attacker(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.Name("attacker"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// forge publishes u on subject as an attacker would: unsigned, or with a
// signature made with a key of its own that names the victim's cluster.
func forge(t *testing.T, nc *nats.Conn, subject string, body []byte, cluster string) {
	t.Helper()
	if err := nc.Publish(subject, body); err != nil {
		t.Fatal(err)
	}
	fake, err := bus.NewSigner(cluster, []byte(strings.Repeat("k", bus.MinClusterKeyBytes)))
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.PublishMsg(fake.Msg(subject, body)); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestForgedReplicationIsNeverApplied plays a hostile NATS client against a
// default cluster: forged updates at the next revision, far ahead, and
// with a huge epoch, and a forged epoch marker at the largest sequence
// number. None is applied, none deposes the leader, each is counted, and
// the next real acks=all write is confirmed by replicas that hold it.
func TestForgedReplicationIsNeverApplied(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)
	w := c.put("k", "real")
	st, err := c.client.Status(ctxFor(t, time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	if st.Cluster == "" {
		t.Fatalf("status names no cluster: %+v", st)
	}
	evil := attacker(t, c.nats.URL())
	repl := c.client.Subjects().Replication()
	forged := []bus.Update{
		{Kind: bus.KindPut, Epoch: epoch, Seq: w.Revision + 1, Key: "k", Value: "forged-next", Leader: leader, Ack: true},
		{Kind: bus.KindPut, Epoch: epoch, Seq: w.Revision + 1000, Key: "k", Value: "forged-ahead", Leader: leader},
		{Kind: bus.KindPut, Epoch: 1 << 40, Seq: 1, Key: "k", Value: "forged-epoch", Leader: "ghost"},
		{Kind: bus.KindEpoch, Epoch: 1 << 40, Seq: bus.MaxSeq, Leader: "ghost"},
		{Kind: bus.KindEpoch, Epoch: epoch, Seq: bus.MaxSeq, Leader: leader},
	}
	for _, u := range forged {
		forge(t, evil, repl, bus.Encode(u), st.Cluster)
	}
	// A forged ack for the next real write.
	forge(t, evil, c.client.Subjects().Ack(), bus.Encode(bus.Ack{Node: "n9", Epoch: epoch, Seq: w.Revision + 1}), st.Cluster)

	testenv.WaitFor(t, 10*time.Second, "acks=all confirmed by all three", func() error {
		r, err := c.client.Put(ctxFor(t, 10*time.Second), "k2", "after", client.WithAcks(bus.AcksAll))
		if err != nil {
			return err
		}
		if r.Confirmed != 3 || r.Members != 3 || r.Epoch != epoch || r.Leader != leader {
			return fmt.Errorf("reply %+v", r)
		}
		return nil
	})
	for id := range c.nodes {
		c.waitValue(id, "k", "real")
		c.waitValue(id, "k2", "after")
		st, err := c.client.Status(ctxFor(t, time.Second), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Epoch != epoch || st.Leader != leader {
			t.Errorf("%s: epoch %d leader %s after forged messages, want %d %s", id, st.Epoch, st.Leader, epoch, leader)
		}
		if st.Stale || st.Gaps != 0 {
			t.Errorf("%s: stale=%v gaps=%d after forged messages: forged sequence numbers were counted", id, st.Stale, st.Gaps)
		}
		// Every node drops the forged messages (the leader too: it
		// subscribes to the replication subject).
		if st.RejectedUnsigned < uint64(len(forged)) || st.RejectedForged < uint64(len(forged)) {
			t.Errorf("%s: rejected unsigned=%d forged=%d, want at least %d each", id, st.RejectedUnsigned, st.RejectedForged, len(forged))
		}
		if !st.Ready {
			t.Errorf("%s: not ready after forged messages: %s", id, st.NotReady)
		}
	}
	if l, e := c.waitLeader("", 5*time.Second); l != leader || e != epoch {
		t.Fatalf("leader %s epoch %d after forged messages, want %s %d", l, e, leader, epoch)
	}
}

// TestForgedAcksDoNotConfirm pauses a replica and has an attacker confirm
// every put in its name: the acks=all write still times out, "2 of 3".
func TestForgedAcksDoNotConfirm(t *testing.T) {
	c := startCluster(t, 3, stableTimeout, "--write-timeout", "1s")
	nc, kv := c.nc, c.client
	leader, paused := c.pauseFollowerOnceAllConfirm()
	st, _ := kv.Status(ctxFor(t, time.Second), leader)
	fake, _ := bus.NewSigner(st.Cluster, []byte(strings.Repeat("x", bus.MinClusterKeyBytes)))
	sub, err := nc.Subscribe(kv.Subjects().Replication(), func(m *nats.Msg) {
		var u bus.Update
		if bus.Decode(m.Data, &u) != nil || u.Kind != bus.KindPut {
			return
		}
		ack := bus.Encode(bus.Ack{Node: paused.ID(), Epoch: u.Epoch, Seq: u.Seq})
		_ = nc.Publish(kv.Subjects().Ack(), ack)
		_ = nc.PublishMsg(fake.Msg(kv.Subjects().Ack(), ack))
		// A replayed real header does not sign another body either.
		_ = nc.PublishMsg(&nats.Msg{Subject: kv.Subjects().Ack(), Data: ack, Header: m.Header})
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	msg, err := nc.Request(kv.Subjects().Write(), []byte(`{"key":"b","value":"2","acks":"all"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r bus.WriteReply
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrTimeout) || !strings.Contains(err.Error(), "2 of 3") {
		t.Fatalf("acks=all with %s paused and its acks forged: %s, want timeout naming 2 of 3", paused.ID(), msg.Data)
	}
	st, _ = kv.Status(ctxFor(t, time.Second), leader)
	if st.RejectedUnsigned == 0 || st.RejectedForged == 0 {
		t.Errorf("leader counted no forged acks: %+v", st)
	}
}

// TestSecondClusterOnTheSameSubjects starts two clusters on one NATS with
// the default subject prefix (and one ZooKeeper, under other paths): each
// notices the other within seconds, says so in status and /readyz, and
// applies nothing of the other's.
func TestSecondClusterOnTheSameSubjects(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	start := func(id, root string) *harness.Node {
		return testenv.StartNode(t, harness.NodeOptions{
			ID: id, ZooKeeper: zk.Addr(), NATSURL: ns.URL(), SessionTimeout: stableTimeout,
			ElectionPath: root + "/election", Args: []string{"--leader-path", root + "/leader"},
		})
	}
	a := []*harness.Node{start("a1", "/a"), start("a2", "/a")}
	b := start("b1", "/b")
	nc := attacker(t, ns.URL())
	kv, _ := client.New(nc)

	// Find a's leader and write to it directly, so the write cannot be
	// answered by b's leader.
	var aLeader string
	testenv.WaitFor(t, 15*time.Second, "a leader in each cluster", func() error {
		aLeader = ""
		for _, id := range []string{"a1", "a2", "b1"} {
			st, err := kv.Status(ctxFor(t, time.Second), id)
			if err != nil {
				return err
			}
			if st.Role == bus.RoleLeader && id != "b1" {
				aLeader = id
			}
		}
		if st, _ := kv.Status(ctxFor(t, time.Second), "b1"); st.Role != bus.RoleLeader || aLeader == "" {
			return errors.New("leaders not elected yet")
		}
		return nil
	})
	if _, err := kv.Put(ctxFor(t, 5*time.Second), "only-a", "1", client.Via(aLeader)); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 10*time.Second, "each cluster to notice the other", func() error {
		for _, id := range []string{"a1", "a2", "b1"} {
			st, err := kv.Status(ctxFor(t, time.Second), id)
			if err != nil {
				return err
			}
			if st.ForeignCluster == "" || st.Ready || !strings.Contains(st.NotReady, "another cluster") {
				return fmt.Errorf("%s: foreign=%q ready=%v not_ready=%q", id, st.ForeignCluster, st.Ready, st.NotReady)
			}
		}
		return nil
	})
	for _, n := range append(a, b) {
		resp, err := http.Get(n.URL() + "/readyz")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s /readyz = %d with another cluster on its subjects, want 503", n.ID(), resp.StatusCode)
		}
	}
	r, err := kv.Read(ctxFor(t, time.Second), "only-a", client.FromNode("b1"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Found {
		t.Fatalf("b1 applied cluster a's write: %+v", r)
	}
	st, _ := kv.Status(ctxFor(t, time.Second), "b1")
	if st.Keys != 0 || st.Epoch == 0 {
		t.Fatalf("b1 took something of cluster a's: %+v", st)
	}
}

// waitRecordRevision waits until the leader says it raised the cluster
// record to at least rev, and checks that ZooKeeper holds it.
func waitRecordRevision(t *testing.T, c *cluster, leader string, rev uint64) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("cluster record at revision %d", rev), func() error {
		st, err := c.client.Status(ctxFor(t, time.Second), leader)
		if err != nil {
			return err
		}
		if st.RecordRevision < rev {
			return fmt.Errorf("record revision %d", st.RecordRevision)
		}
		return nil
	})
	if got := testenv.ClusterRecord(t, c.zk.Addr(), testenv.DefaultRecordPath, "").Revision; got < rev {
		t.Fatalf("ZooKeeper's record is at revision %d, the leader said %d", got, rev)
	}
}

// writeThenRestartAll writes five keys, waits until the cluster record
// holds them, kills every server and starts each again, empty. It returns
// the last write's reply.
func (c *cluster) writeThenRestartAll(electWithin time.Duration) bus.WriteReply {
	c.t.Helper()
	first, _ := c.waitLeader("", electWithin)
	var last bus.WriteReply
	for i := 0; i < 5; i++ {
		last = c.put(fmt.Sprintf("k%d", i), "v")
	}
	waitRecordRevision(c.t, c, first, last.Revision)
	for _, n := range c.nodes {
		if err := n.Kill(); err != nil {
			c.t.Fatal(err)
		}
	}
	for _, n := range c.nodes {
		if err := n.Restart(ctxFor(c.t, 60*time.Second)); err != nil {
			c.t.Fatal(err)
		}
	}
	return last
}

// TestFullRestartIsReported restarts every server of a default (in-memory)
// cluster: the data is gone, as the specification allows, but revisions go
// on from the record instead of starting again at 1, and the new leader
// reports how many acknowledged revisions were lost.
func TestFullRestartIsReported(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout)
	last := c.writeThenRestartAll(10 * time.Second)
	leader, _ := c.waitLeader("", 30*time.Second)
	w := c.put("after", "1")
	if w.Revision <= last.Revision {
		t.Fatalf("revision %d after a full restart, was %d before: revisions went backwards", w.Revision, last.Revision)
	}
	st, err := c.client.Status(ctxFor(t, time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	if st.LostRevisions < last.Revision || st.RecordRevision < last.Revision {
		t.Fatalf("leader after a full restart: lost_revisions=%d record_revision=%d, want both >= %d", st.LostRevisions, st.RecordRevision, last.Revision)
	}
	// Its copy may lack acknowledged writes, so it cannot check a
	// condition: create and if_revision are refused, nothing is applied.
	if _, err := c.client.Create(ctxFor(t, 5*time.Second), "new", "1"); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("create on a leader that lost revisions: %v, want unavailable", err)
	}
	if _, err := c.client.Put(ctxFor(t, 5*time.Second), "after", "2", client.WithIfRevision(w.Revision)); !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("if_revision on a leader that lost revisions: %v, want unavailable", err)
	}
	if r, err := c.client.Read(ctxFor(t, time.Second), "new", client.FromNode(leader)); err != nil || r.Found {
		t.Errorf("the refused create was applied: %+v, %v", r, err)
	}
}

// TestCatchUpClusterRestartNeedsForce restarts every server of a
// --catch-up cluster: none leads with less than the record, each says so,
// none is ready; an operator's --force-lead server then leads, revisions go
// on from the record, and the others catch up from it.
func TestCatchUpClusterRestartNeedsForce(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout, "--catch-up")
	kv := c.client
	last := c.writeThenRestartAll(15 * time.Second)
	// Nobody leads; everyone reports the shortfall and is not ready.
	testenv.WaitFor(t, 20*time.Second, "every server to report it is behind the record", func() error {
		for id := range c.nodes {
			st, err := kv.Status(ctxFor(t, time.Second), id)
			if err != nil {
				return err
			}
			if st.Role == bus.RoleLeader {
				return fmt.Errorf("%s leads with %d keys although the record is at %d", id, st.Keys, st.RecordRevision)
			}
			if st.BehindRecord == 0 || st.Ready {
				return fmt.Errorf("%s: behind_record=%d ready=%v", id, st.BehindRecord, st.Ready)
			}
		}
		return nil
	})
	if _, err := kv.Put(ctxFor(t, 3*time.Second), "x", "1"); err == nil {
		t.Fatal("a write was acknowledged by a cluster whose every server is behind the record")
	}
	// The operator accepts the loss on a fourth server.
	forced := testenv.StartNode(t, harness.NodeOptions{
		ID: "n4", ZooKeeper: c.zk.Addr(), NATSURL: c.nats.URL(), SessionTimeout: sessionTimeout,
		Args: []string{"--catch-up", "--force-lead"},
	})
	c.nodes[forced.ID()] = forced
	leader, _ := c.waitLeader("", 30*time.Second)
	if leader != "n4" {
		t.Fatalf("leader %s, want the forced n4", leader)
	}
	w := c.put("after", "1")
	if w.Revision <= last.Revision {
		t.Fatalf("revision %d after the forced start, was %d: revisions went backwards", w.Revision, last.Revision)
	}
	for id := range c.nodes {
		c.waitValue(id, "after", "1")
	}
	testenv.WaitFor(t, 15*time.Second, "the others to catch up from the forced leader", func() error {
		for id := range c.nodes {
			st, err := kv.Status(ctxFor(t, time.Second), id)
			if err != nil {
				return err
			}
			if st.Stale || !st.Ready {
				return fmt.Errorf("%s: stale=%v ready=%v (%s)", id, st.Stale, st.Ready, st.NotReady)
			}
		}
		return nil
	})
	st, _ := kv.Status(ctxFor(t, time.Second), "n4")
	if st.LostRevisions < last.Revision {
		t.Errorf("forced leader reports lost_revisions=%d, want >= %d", st.LostRevisions, last.Revision)
	}
}

// TestRequestIDsTravelWithCatchUp writes with a request ID, restarts a
// follower empty (--catch-up), then stops the two others so that the
// restarted copy leads: a retry of the request ID is answered as a
// duplicate of the first write, not applied a second time.
func TestRequestIDsTravelWithCatchUp(t *testing.T) {
	c := startCluster(t, 3, stableTimeout, "--catch-up")
	leader, _ := c.waitLeader("", 15*time.Second)
	body := []byte(`{"key":"once","value":"1","request_id":"retry-me"}`)
	msg, err := c.nc.Request(c.client.Subjects().Write(), body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var first bus.WriteReply
	if err := bus.DecodeReply(msg.Data, &first); err != nil {
		t.Fatal(err)
	}
	c.put("other", "2")
	var restarted string
	for id, n := range c.nodes {
		if id != leader {
			restarted = id
			if err := n.Kill(); err != nil {
				t.Fatal(err)
			}
			if err := n.Restart(ctxFor(t, 60*time.Second)); err != nil {
				t.Fatal(err)
			}
			break
		}
	}
	testenv.WaitFor(t, 20*time.Second, restarted+" to catch up", func() error {
		st, err := c.client.Status(ctxFor(t, time.Second), restarted)
		if err != nil {
			return err
		}
		if st.Stale || st.CatchingUp || st.Keys != 2 || !st.Ready {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	for id, n := range c.nodes {
		if id != restarted {
			if err := n.Stop(ctxFor(t, 15*time.Second)); err != nil {
				t.Fatal(err)
			}
		}
	}
	testenv.WaitFor(t, 20*time.Second, restarted+" to lead", func() error {
		st, err := c.client.Status(ctxFor(t, time.Second), restarted)
		if err != nil {
			return err
		}
		if st.Role != bus.RoleLeader {
			return fmt.Errorf("role %s", st.Role)
		}
		return nil
	})
	msg, err = c.nc.Request(c.client.Subjects().Write(), body, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var retry bus.WriteReply
	if err := bus.DecodeReply(msg.Data, &retry); err != nil {
		t.Fatal(err)
	}
	if !retry.Duplicate || retry.Revision != first.Revision {
		t.Fatalf("retry after the failover: %+v, want a duplicate of revision %d", retry, first.Revision)
	}
}

// TestFakeResponderCannotMultiplyWrites answers every request on the
// leader subject at once, unsigned, from a plain client. A write sent
// through a follower still gets the leader's real answer and is applied
// exactly once: the follower sends it once and skips replies it cannot
// verify.
func TestFakeResponderCannotMultiplyWrites(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	c.put("warm", "up")
	evil := attacker(t, c.nats.URL())
	sub, err := evil.Subscribe(c.client.Subjects().Write(), func(m *nats.Msg) {
		_ = m.Respond([]byte(`{"ok":true,"key":"fw","revision":999,"epoch":999,"leader":"evil"}`))
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := evil.Flush(); err != nil {
		t.Fatal(err)
	}
	before, err := c.client.Status(ctxFor(t, time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	var follower string
	for id := range c.nodes {
		if id != leader {
			follower = id
			break
		}
	}
	for _, acks := range []string{bus.AcksLeader, bus.AcksAll} {
		msg, err := c.nc.Request(c.client.Subjects().NodeWrite(follower), bus.Encode(bus.WriteRequest{Key: "fw-" + acks, Value: "1", Acks: acks}), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r bus.WriteReply
		if err := bus.DecodeReply(msg.Data, &r); err != nil || r.Leader != leader || r.Revision == 999 {
			t.Fatalf("write through %s with a fake responder (acks=%s): %s, %v", follower, acks, msg.Data, err)
		}
	}
	after, err := c.client.Status(ctxFor(t, time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	if after.AppliedSeq != before.AppliedSeq+2 {
		t.Fatalf("two writes through a follower moved the leader from revision %d to %d: a write was applied more than once", before.AppliedSeq, after.AppliedSeq)
	}
}

// TestServersDoNotAnswerOntoClusterSubjects asks servers for their status
// with the reply subject set to the replication and ack subjects: a
// server never publishes an answer there, so nothing signed lands where
// servers listen.
func TestServersDoNotAnswerOntoClusterSubjects(t *testing.T) {
	c := startCluster(t, 2, stableTimeout)
	c.waitLeader("", 10*time.Second)
	subj := c.client.Subjects()
	watch := attacker(t, c.nats.URL())
	var got atomic.Int64
	for _, s := range []string{subj.Replication(), subj.Ack()} {
		sub, err := watch.Subscribe(s, func(m *nats.Msg) {
			var u bus.Update
			if bus.Decode(m.Data, &u) != nil { // not an update, marker or heartbeat: an answer
				got.Add(1)
			}
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	evil := attacker(t, c.nats.URL())
	for id := range c.nodes {
		for _, reply := range []string{subj.Replication(), subj.Ack()} {
			if err := evil.PublishRequest(subj.NodeStatus(id), reply, nil); err != nil {
				t.Fatal(err)
			}
			if err := evil.PublishRequest(subj.NodeRead(id), reply, []byte(`{"key":"k"}`)); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := evil.Flush(); err != nil {
		t.Fatal(err)
	}
	// A real status request after them: once it is answered, the earlier
	// ones have been handled too.
	for id := range c.nodes {
		if _, err := c.client.Status(ctxFor(t, time.Second), id); err != nil {
			t.Fatal(err)
		}
	}
	if err := watch.Flush(); err != nil {
		t.Fatal(err)
	}
	if n := got.Load(); n != 0 {
		t.Fatalf("%d server answers were published on the replication or ack subject", n)
	}
}
