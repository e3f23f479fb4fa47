package node_test

import (
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/testenv"
)

// TestHistoryRevisionsAndWatch checks history, reads at a revision,
// deletes by prefix, purges and compaction on every copy of a real
// cluster, and a watch from a revision that replays, then follows live,
// each update once and in order.
func TestHistoryRevisionsAndWatch(t *testing.T) {
	c := startCluster(t, 3, stableTimeout, "--history", "4", "--watch-window", "16")
	c.waitLeader("", 10*time.Second)
	ctx := ctxFor(t, 2*time.Minute)
	var ids []string
	for id := range c.nodes {
		ids = append(ids, id)
	}

	r1 := c.put("h", "1")
	r2 := c.put("h", "2")
	d, err := c.client.Delete(ctx, "h")
	if err != nil || !d.Deleted {
		t.Fatalf("delete: %+v, %v", d, err)
	}
	r4 := c.put("h", "4")
	for _, id := range ids {
		c.waitValue(id, "h", "4")
		h, err := c.client.History(ctx, "h", client.FromNode(id))
		if err != nil {
			t.Fatal(err)
		}
		want := []bus.Version{{Revision: r1.Revision, Value: "1"}, {Revision: r2.Revision, Value: "2"}, {Revision: d.Revision, Deleted: true}, {Revision: r4.Revision, Value: "4"}}
		if fmt.Sprint(h.Versions) != fmt.Sprint(want) || h.Trimmed {
			t.Fatalf("%s history %+v, want %+v", id, h, want)
		}
		for rev, want := range map[uint64]string{r1.Revision: "1", r2.Revision: "2", d.Revision: "", r4.Revision: "4"} {
			got, err := c.client.Read(ctx, "h", client.FromNode(id), client.WithRevision(rev))
			if err != nil || got.Found != (want != "") || got.Value != want {
				t.Fatalf("%s get h at %d: %+v, %v; want %q", id, rev, got, err, want)
			}
		}
		if _, err := c.client.Read(ctx, "h", client.FromNode(id), client.WithRevision(bus.MaxSeq)); !errors.Is(err, bus.ErrFuture) {
			t.Fatalf("%s get at a future revision: %v", id, err)
		}
	}
	// A fifth version trims the first (history 4).
	r5 := c.put("h", "5")
	leader, _ := c.waitLeader("", 10*time.Second)
	c.waitValue(leader, "h", "5")
	if _, err := c.client.Read(ctx, "h", client.FromNode(leader), client.WithRevision(r1.Revision)); !errors.Is(err, bus.ErrCompacted) {
		t.Fatalf("get at a trimmed revision: %v, want compacted", err)
	}

	// A watch from r2 replays what followed, then goes on live.
	w, err := c.client.Watch(ctx, "", client.FromRevision(r2.Revision))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	c.put("p/a", "1")
	c.put("p/b", "1")
	c.put("q", "1")
	dp, err := c.client.DeletePrefix(ctx, "p/")
	if err != nil || dp.Count != 2 {
		t.Fatalf("delete by prefix: %+v, %v", dp, err)
	}
	pu, err := c.client.Purge(ctx, "h")
	if err != nil || !pu.Deleted {
		t.Fatalf("purge: %+v, %v", pu, err)
	}
	var got []string
	for len(got) < 9 {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch ended: %v after %v", w.Err(), got)
			}
			got = append(got, fmt.Sprintf("%d:%s:%s", u.Seq, u.Kind, u.Key))
		case <-ctx.Done():
			t.Fatalf("watch saw %v", got)
		}
	}
	want := []string{
		fmt.Sprintf("%d:put:h", r2.Revision), fmt.Sprintf("%d:delete:h", d.Revision), fmt.Sprintf("%d:put:h", r4.Revision),
		fmt.Sprintf("%d:put:h", r5.Revision), fmt.Sprintf("%d:put:p/a", r5.Revision+1), fmt.Sprintf("%d:put:p/b", r5.Revision+2),
		fmt.Sprintf("%d:put:q", r5.Revision+3), fmt.Sprintf("%d:delete:p/", dp.Revision), fmt.Sprintf("%d:purge:h", pu.Revision),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("watch saw\n%v\nwant\n%v", got, want)
	}
	for _, id := range ids {
		c.waitAbsent(id, "p/a")
		c.waitAbsent(id, "h")
		testenv.WaitFor(t, 5*time.Second, id+" to forget h's history", func() error {
			if _, err := c.client.Read(ctx, "h", client.FromNode(id), client.WithRevision(r5.Revision)); !errors.Is(err, bus.ErrCompacted) {
				return fmt.Errorf("get at a purged revision: %v", err)
			}
			return nil
		})
	}

	// Compaction: every copy refuses reads below it; replays are bounded
	// by the window alone.
	cp, err := c.client.Compact(ctx, dp.Revision)
	if err != nil || cp.Compacted != dp.Revision {
		t.Fatalf("compact: %+v, %v", cp, err)
	}
	for _, id := range ids {
		testenv.WaitFor(t, 5*time.Second, id+" to compact", func() error {
			_, err := c.client.Read(ctx, "q", client.FromNode(id), client.WithRevision(dp.Revision-1))
			if !errors.Is(err, bus.ErrCompacted) {
				return fmt.Errorf("read below the compaction: %v", err)
			}
			return nil
		})
		q, err := c.client.Read(ctx, "q", client.FromNode(id), client.WithRevision(dp.Revision))
		if err != nil || q.Value != "1" {
			t.Fatalf("%s get q at the compaction revision: %+v, %v", id, q, err)
		}
		if _, err := c.client.Changes(ctx, bus.ChangesRequest{After: r2.Revision}, client.FromNode(id)); err != nil {
			t.Fatalf("%s replay from inside the window, below the compaction: %v", id, err)
		}
	}
	// Past the window of 16 updates, a watch from the start is refused.
	for i := range 20 {
		c.put(fmt.Sprint("fill/", i), "x")
	}
	for _, id := range ids {
		c.waitValue(id, "fill/19", "x")
	}
	if _, err := c.client.Watch(ctx, "", client.FromRevision(1)); !errors.Is(err, bus.ErrCompacted) {
		t.Fatalf("watch from a revision no longer held: %v, want compacted", err)
	}
}

// TestTTLExpiresOnEveryCopyAndSurvivesFailover checks that the leader
// deletes a key whose time to live passed, that every copy and a watcher
// see the expiry, and that a new leader expires keys the old one set.
func TestTTLExpiresOnEveryCopyAndSurvivesFailover(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	ctx := ctxFor(t, time.Minute)
	var ids []string
	for id := range c.nodes {
		ids = append(ids, id)
	}
	w, err := c.client.Watch(ctx, "t")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	short, err := c.client.Put(ctx, "t1", "v", client.WithTTL(500*time.Millisecond))
	if err != nil || short.Expires == 0 {
		t.Fatalf("put with ttl: %+v, %v", short, err)
	}
	if _, err := c.client.Put(ctx, "t2", "v", client.WithTTL(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	for _, id := range ids {
		c.waitValue(id, "t2", "v")
		c.waitAbsent(id, "t1")
	}
	// Every copy holds the same expiry: a tombstone at one revision.
	var tomb string
	for _, id := range ids {
		h, err := c.client.History(ctx, "t1", client.FromNode(id))
		if err != nil || len(h.Versions) != 2 || !h.Versions[1].Deleted {
			t.Fatalf("%s history of t1: %+v, %v", id, h, err)
		}
		if got := fmt.Sprint(h.Versions); tomb != "" && got != tomb {
			t.Fatalf("%s history of t1 %s, another copy has %s", id, got, tomb)
		} else {
			tomb = got
		}
	}
	expired := false
	for !expired {
		select {
		case u := <-w.Updates():
			expired = u.Kind == bus.KindDelete && u.Key == "t1" && u.Expired
		case <-ctx.Done():
			t.Fatal("the watcher saw no expiry of t1")
		}
	}
	// The leader dies before t2 expires: the next one expires it.
	if err := c.nodes[leader].Kill(); err != nil {
		t.Fatal(err)
	}
	c.waitLeader(leader, 20*time.Second)
	for _, id := range ids {
		if id != leader {
			testenv.WaitFor(t, 10*time.Second, id+" to expire t2", func() error {
				r, err := c.client.Read(ctx, "t2", client.FromNode(id))
				if err != nil || r.Found {
					return fmt.Errorf("read %+v, %v", r, err)
				}
				return nil
			})
		}
	}
}

// TestWatchAcrossLeaderFailover watches from a revision while writers
// keep writing and the leader is killed: the watcher sees every
// acknowledged write once, in revision order, with nothing else between.
func TestWatchAcrossLeaderFailover(t *testing.T) {
	c := startCluster(t, 3, sessionTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	ctx := ctxFor(t, 2*time.Minute)
	first := c.put("w/0", "0")
	var watchNode string
	for id := range c.nodes {
		if id != leader {
			watchNode = id
			break
		}
	}
	w, err := c.client.Watch(ctx, "w/", client.FromRevision(first.Revision), client.FromNode(watchNode))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	acked := map[uint64]string{first.Revision: "w/0"}
	for i := 1; i <= 40; i++ {
		if i == 20 {
			if err := c.nodes[leader].Kill(); err != nil {
				t.Fatal(err)
			}
		}
		key := fmt.Sprintf("w/%d", i)
		r, err := c.client.Put(ctx, key, fmt.Sprint(i), client.WithAcks(bus.AcksMajority))
		if err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		acked[r.Revision] = key
	}
	var last uint64
	seen := map[string]bool{}
	for len(seen) < len(acked) {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch ended: %v", w.Err())
			}
			if u.Seq <= last {
				t.Fatalf("revision %d after %d: out of order or repeated", u.Seq, last)
			}
			last = u.Seq
			if key, ok := acked[u.Seq]; ok && key != u.Key {
				t.Fatalf("revision %d is %s in the watch, %s was acknowledged", u.Seq, u.Key, key)
			}
			if seen[u.Key] {
				t.Fatalf("%s seen twice", u.Key)
			}
			seen[u.Key] = true
		case <-ctx.Done():
			t.Fatalf("watch saw %d of %d acknowledged writes", len(seen), len(acked))
		}
	}
	for _, key := range acked {
		if !seen[key] {
			t.Errorf("acknowledged %s never seen", key)
		}
	}
}
