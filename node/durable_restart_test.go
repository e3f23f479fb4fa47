package node_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
	"github.com/zkvstore/zkv/store"
	"github.com/zkvstore/zkv/store/disk"
	clusterenv "github.com/zkvstore/zkv/testdriver/cluster"
)

// TestDurableAcksAllSurvivesAnyRestartOrder: docs/durability.md says an
// acks=all write is on the disk of every member, so no restart order
// loses one. Here one server is stopped cleanly, an acks=all write is
// acknowledged by the two that remain, both crash at once right after it,
// and the stopped server is started first, alone. The write must still be
// there once a leader serves again.
func TestDurableAcksAllSurvivesAnyRestartOrder(t *testing.T) {
	lc, c := startDurable(t, 3)
	leader, _ := c.waitLeader("", 20*time.Second)
	c.putAll("before", 5)
	var down string
	for _, id := range lc.Nodes() {
		if id != leader {
			down = id
			break
		}
	}
	if err := lc.Stop(ctxFor(t, 10*time.Second), down, clusterenv.StopTerm); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second) // its election node is gone: acks=all asks the other two
	var key string
	for i := 0; ; i++ {
		key = fmt.Sprintf("all%02d", i)
		r, err := c.client.Put(ctxFor(t, 3*time.Second), key, "acked", client.WithAcks(bus.AcksAll))
		if err == nil && r.OK {
			break
		}
		if i > 10 {
			t.Fatalf("acks=all put: %+v, %v", r, err)
		}
	}
	// Crash the two servers that confirmed it, at once.
	for _, id := range lc.Nodes() {
		if id != down {
			if err := c.nodes[id].Kill(); err != nil {
				t.Fatal(err)
			}
		}
	}
	t.Logf("%s acknowledged with acks=all by the two others; they crashed; %s starts first", key, down)
	if err := lc.Start(ctxFor(t, 30*time.Second), down); err != nil {
		t.Fatal(err)
	}
	// Either it refuses to lead (correct) or it leads; if it leads, the
	// acknowledged write must be there.
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		st, err := c.client.Status(ctxFor(t, time.Second), down)
		if err == nil && st.Role == bus.RoleLeader {
			r, err := c.client.Read(ctxFor(t, time.Second), key, client.FromNode(down))
			if err != nil || !r.Found || r.Value != "acked" {
				w, werr := c.client.Put(ctxFor(t, 3*time.Second), "after", "x")
				t.Fatalf("%s leads (epoch %d, revision %d) without the acks=all write %s: read %+v, %v; a new write got %+v, %v\n%s",
					down, st.Epoch, st.AppliedSeq, key, r, err, w, werr, c.nodes[down].LogTail(60))
			}
			return
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Logf("%s did not lead alone (no loss)", down)
}

// TestDurableFullRestartPrefersTheAcknowledgedBranch: a leader of epoch 2
// applied and logged revisions 101-103 but crashed before publishing them
// (never acknowledged); the next leader, of epoch 3, started at 100 and
// wrote revision 101 ("acked"), confirmed by both replicas; then every
// server stopped. The data directories are written here in exactly that
// state. After a restart of every server, the acknowledged write must
// survive: the longer log of the dead epoch-2 branch must not win.
func TestDurableFullRestartPrefersTheAcknowledgedBranch(t *testing.T) {
	data := t.TempDir()
	lc := testenv.StartLocal(t, clusterenv.LocalOptions{
		Servers: 3, SessionTimeout: 2 * time.Second, DataDir: data, ServerLogLevel: "debug",
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
	c.waitLeader("", 20*time.Second)
	c.putAll("base", 3)
	for _, id := range lc.Nodes() {
		if err := c.nodes[id].Kill(); err != nil {
			t.Fatal(err)
		}
	}
	craft := func(id string, pos store.Position, es []store.KeyEntry) {
		dir := filepath.Join(data, id)
		raw, err := os.ReadFile(filepath.Join(dir, "meta.json"))
		if err != nil {
			t.Fatal(err)
		}
		var meta disk.Meta
		if err := json.Unmarshal(raw, &meta); err != nil {
			t.Fatal(err)
		}
		if err := os.RemoveAll(filepath.Join(dir, "wal")); err != nil {
			t.Fatal(err)
		}
		h := disk.Header{Cluster: meta.Cluster, Node: id}
		h.SetPosition(pos)
		done := false
		if _, err := disk.WriteSnapshotFile(filepath.Join(dir, "snapshot"), h, func() ([]store.KeyEntry, error) {
			if done {
				return nil, nil
			}
			done = true
			return es, nil
		}, nil, nil); err != nil {
			t.Fatal(err)
		}
	}
	base := store.KeyEntry{Key: "base", Entry: store.Entry{Value: "b", Revision: 100}}
	craft("n1", store.Position{Epoch: 2, Stream: 2, Revision: 103, RevEpoch: 2}, []store.KeyEntry{base,
		{Key: "unpublished1", Entry: store.Entry{Value: "x", Revision: 101}},
		{Key: "unpublished2", Entry: store.Entry{Value: "x", Revision: 102}},
		{Key: "unpublished3", Entry: store.Entry{Value: "x", Revision: 103}}})
	for _, id := range []string{"n2", "n3"} {
		craft(id, store.Position{Epoch: 3, Stream: 3, Revision: 101, RevEpoch: 3}, []store.KeyEntry{
			{Key: "acked", Entry: store.Entry{Value: "majority", Revision: 101}}, base})
	}
	var wg sync.WaitGroup
	for _, id := range lc.Nodes() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := lc.Start(ctxFor(t, 30*time.Second), id); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	leader, _ := c.waitLeader("", 30*time.Second)
	r, err := c.client.Read(ctxFor(t, time.Second), "acked", client.FromNode(leader))
	if err != nil || !r.Found {
		logs := ""
		for _, id := range lc.Nodes() {
			logs += id + ":\n" + grepLines(c.nodes[id].LogTail(400), "refusing", "taking writes", "caught up", "copying") + "\n"
		}
		t.Fatalf("%s leads without the write both other servers confirmed: %+v, %v\n%s", leader, r, err, logs)
	}
}

func grepLines(s string, words ...string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		for _, w := range words {
			if strings.Contains(l, w) {
				out = append(out, l)
				break
			}
		}
	}
	return strings.Join(out, "\n")
}
