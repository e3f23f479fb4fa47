package node_test

import (
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
	clusterenv "github.com/zkvstore/zkv/testdriver/cluster"
)

// startDurable starts n kvservers, each with a data directory of its own.
func startDurable(t *testing.T, n int, args ...string) (*clusterenv.Local, *cluster) {
	t.Helper()
	lc := testenv.StartLocal(t, clusterenv.LocalOptions{
		Servers: n, SessionTimeout: 2 * time.Second, DataDir: t.TempDir(), ServerLogLevel: "debug", NodeArgs: args,
	})
	nc, err := nats.Connect(lc.NATSURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	kv, err := client.New(nc, client.WithRequestTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{t: t, nodes: map[string]*harness.Node{}, client: kv, nc: nc}
	for _, id := range lc.Nodes() {
		c.nodes[id] = lc.Process(id)
	}
	return lc, c
}

// loadedSnapshot matches the log line of a start that loaded a snapshot
// holding keys.
var loadedSnapshot = regexp.MustCompile(`loaded data directory.* snapshot_revision=[1-9][0-9]* snapshot_keys=[1-9]`)

// putAll writes n keys with acks=all and returns the highest revision.
func (c *cluster) putAll(prefix string, n int) uint64 {
	c.t.Helper()
	var top uint64
	for i := range n {
		key := fmt.Sprintf("%s%03d", prefix, i)
		r, err := c.client.Put(ctxFor(c.t, 15*time.Second), key, "v-"+key, client.WithAcks(bus.AcksAll))
		if err != nil || !r.OK {
			c.t.Fatalf("put %s: %+v, %v", key, r, err)
		}
		top = max(top, r.Revision)
	}
	return top
}

// TestDurableRestartOfEveryServerLosesNothing kills every server of a
// durable cluster at once (SIGKILL) after acks=all writes, restarts them
// in reverse order, and checks that every server holds every acknowledged
// write, loaded from its own data directory, and that revisions go on.
//
// The servers write a snapshot every few kilobytes of log, so the restart
// loads a snapshot and replays the log after it.
func TestDurableRestartOfEveryServerLosesNothing(t *testing.T) {
	lc, c := startDurable(t, 3, "--snapshot-bytes", "4096")
	c.waitLeader("", 20*time.Second)
	const keys = 60
	c.putAll("k", keys)
	for _, id := range lc.Nodes() {
		testenv.WaitFor(t, 10*time.Second, id+" to write a snapshot", func() error {
			st, err := c.client.Status(ctxFor(t, time.Second), id)
			if err != nil {
				return err
			}
			if st.Data == nil || st.Data.Snapshots == 0 {
				return fmt.Errorf("data %+v", st.Data)
			}
			return nil
		})
	}
	// And more after the snapshot, which only the log holds.
	top := c.putAll("m", 20)
	// A delete is durable too.
	if r, err := c.client.Delete(ctxFor(t, 10*time.Second), "k000", client.WithAcks(bus.AcksAll)); err != nil || !r.OK {
		t.Fatalf("delete k000: %+v, %v", r, err)
	}
	for _, id := range lc.Nodes() {
		if err := c.nodes[id].Kill(); err != nil {
			t.Fatal(err)
		}
	}
	order := []string{"n3", "n2", "n1"}
	var wg sync.WaitGroup
	for i, id := range order {
		wg.Add(1)
		go func() {
			defer wg.Done()
			time.Sleep(time.Duration(i) * 300 * time.Millisecond)
			if err := lc.Start(ctxFor(t, 30*time.Second), id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if t.Failed() {
		t.FailNow()
	}
	c.waitLeader("", 30*time.Second)
	for _, id := range lc.Nodes() {
		st, err := c.client.Status(ctxFor(t, 2*time.Second), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.Data == nil || !st.Data.Loaded {
			t.Fatalf("%s did not load its data directory: %+v", id, st.Data)
		}
		if logs := c.nodes[id].LogTail(2000); !loadedSnapshot.MatchString(logs) {
			t.Fatalf("%s loaded no snapshot:\n%s", id, logs)
		}
		for i := 1; i < keys; i++ {
			key := fmt.Sprintf("k%03d", i)
			c.waitValue(id, key, "v-"+key)
		}
		for i := range 20 {
			key := fmt.Sprintf("m%03d", i)
			c.waitValue(id, key, "v-"+key)
		}
		r, err := c.client.Read(ctxFor(t, time.Second), "k000", client.FromNode(id))
		if err != nil || r.Found {
			t.Fatalf("deleted k000 on %s after the restart: %+v, %v", id, r, err)
		}
	}
	w := c.put("after-restart", "x")
	if w.Revision <= top {
		t.Fatalf("a write after the restart got revision %d, not above %d", w.Revision, top)
	}
	for _, id := range lc.Nodes() {
		c.waitValue(id, "after-restart", "x")
	}
}

// TestDurableRestartSkipsReservedRevisions: after every server was
// killed, the leader restarted from its data directory starts its epoch
// past every revision the old leader reserved in the cluster record. A
// revision reserved but logged by no server may still have been published
// (replicas applied it, a watch delivered it, a refusal named it): reusing
// it would give one revision two different updates.
func TestDurableRestartSkipsReservedRevisions(t *testing.T) {
	lc, c := startDurable(t, 3)
	leader, _ := c.waitLeader("", 20*time.Second)
	top := c.putAll("k", 10)
	st, err := c.client.Status(ctxFor(t, 2*time.Second), leader)
	if err != nil {
		t.Fatal(err)
	}
	reserved := max(st.RecordReserved, st.RecordRevision)
	if reserved <= top {
		t.Fatalf("the leader reserved up to %d, not past its revision %d: the test needs a reservation ahead", reserved, top)
	}
	for _, id := range lc.Nodes() {
		if err := c.nodes[id].Kill(); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range lc.Nodes() {
		if err := lc.Start(ctxFor(t, 30*time.Second), id); err != nil {
			t.Fatal(err)
		}
	}
	c.waitLeader("", 30*time.Second)
	w := c.put("after-restart", "x")
	if w.Revision <= reserved {
		t.Fatalf("the first write after the restart got revision %d, within the %d reserved before it (held %d)", w.Revision, reserved, top)
	}
	for _, id := range lc.Nodes() {
		c.waitValue(id, "after-restart", "x")
		c.waitValue(id, "k009", "v-k009")
		st, err := c.client.Status(ctxFor(t, 2*time.Second), id)
		if err != nil {
			t.Fatal(err)
		}
		if st.LostRevisions != 0 {
			t.Fatalf("%s reports %d revisions lost; nothing acknowledged was", id, st.LostRevisions)
		}
	}
}

// TestDurableRestartCatchesUpFromItsRevision: a server that was down
// while writes went on restarts with its data, fetches only the updates it
// lacks (not the leader's whole store), and is current again.
func TestDurableRestartCatchesUpFromItsRevision(t *testing.T) {
	lc, c := startDurable(t, 3)
	leader, _ := c.waitLeader("", 20*time.Second)
	c.putAll("before", 40)
	var follower string
	for _, id := range lc.Nodes() {
		if id != leader {
			follower = id
			break
		}
	}
	if err := c.nodes[follower].Kill(); err != nil {
		t.Fatal(err)
	}
	for i := range 30 {
		c.put(fmt.Sprintf("while-down%02d", i), "y")
	}
	if err := lc.Start(ctxFor(t, 30*time.Second), follower); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, follower+" to catch up", func() error {
		st, err := c.client.Status(ctxFor(t, time.Second), follower)
		if err != nil {
			return err
		}
		if st.Stale || st.Keys != 70 || st.CatchingUp {
			return fmt.Errorf("status: stale %v keys %d catching up %v", st.Stale, st.Keys, st.CatchingUp)
		}
		return nil
	})
	c.waitValue(follower, "before000", "v-before000")
	c.waitValue(follower, "while-down29", "y")
	logs := c.nodes[follower].LogTail(400)
	if !strings.Contains(logs, "caught up from a revision") || strings.Contains(logs, "copying the leader's whole store") {
		t.Fatalf("%s did not catch up from its revision:\n%s", follower, logs)
	}
	w := c.put("after", "z")
	c.waitValue(follower, "after", "z")
	st, _ := c.client.Status(ctxFor(t, time.Second), follower)
	if st.AppliedSeq != w.Revision || st.HeldRevision != w.Revision {
		t.Fatalf("%s after the catch-up: applied %d held %d, want %d", follower, st.AppliedSeq, st.HeldRevision, w.Revision)
	}
	// The data directory shows in the metrics.
	resp, err := http.Get("http://" + c.nodes[follower].HTTPAddr() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, want := range []string{fmt.Sprintf("zkv_held_revision %d", w.Revision), "zkv_data_bytes ", "zkv_data_fsyncs_total ", "zkv_data_failed 0"} {
		if !strings.Contains(string(body), want) {
			t.Fatalf("/metrics of %s lacks %q", follower, want)
		}
	}
}

// TestDataDirOfAnotherClusterIsRefused: a data directory written by one
// cluster is refused by a server that joins another (here: another election
// path on the same ZooKeeper, so a new cluster record), with an error that
// says so, and nothing in it changes.
func TestDataDirOfAnotherClusterIsRefused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "n1")
	ns := testenv.StartNATS(t)
	zk := testenv.StartZooKeeper(t)
	nodes := testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL(), Args: []string{"--data-dir", dir}})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	kv, err := client.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "a write", func() error {
		_, err := kv.Put(t.Context(), "a", "1")
		return err
	})
	if err := nodes[0].Stop(ctxFor(t, 10*time.Second)); err != nil {
		t.Fatal(err)
	}
	meta, err := os.ReadFile(filepath.Join(dir, "meta.json"))
	if err != nil {
		t.Fatal(err)
	}

	ctx := ctxFor(t, 30*time.Second)
	out, err := exec.CommandContext(ctx, testenv.Binaries(t).KVServer, "--id", "n1", "--port", "0", "--election-path", "/another",
		"--subject-prefix", "another", "--zookeeper", zk.Addr(), "--nats", ns.URL(), "--data-dir", dir).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "belongs to another cluster") {
		t.Fatalf("kvserver on another cluster's data directory: %v\n%s", err, out)
	}
	if now, _ := os.ReadFile(filepath.Join(dir, "meta.json")); string(now) != string(meta) {
		t.Fatalf("meta.json changed:\n%s\nnow\n%s", meta, now)
	}
}
