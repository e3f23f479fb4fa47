package client

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// changesServer answers a node's changes subject from a fixed list of
// updates, as a node would: the updates after the request's After, with
// Next the node's revision. It records the After of every request.
type changesServer struct {
	mu      sync.Mutex
	updates []bus.Update
	asked   []uint64
}

func (cs *changesServer) reply(_ int64, body []byte) []byte {
	var r bus.ChangesRequest
	if err := bus.Decode(body, &r); err != nil {
		return bus.EncodeError(err)
	}
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.asked = append(cs.asked, r.After)
	var out []bus.Update
	var rev uint64
	for _, u := range cs.updates {
		rev = max(rev, u.Seq)
		if u.Seq > r.After {
			out = append(out, u)
		}
	}
	if len(out) == 0 && r.WaitMS > 0 {
		time.Sleep(20 * time.Millisecond) // a short long poll
	}
	return bus.Encode(bus.ChangesReply{Node: "n1", Revision: rev, Next: max(rev, r.After), Updates: out})
}

func (cs *changesServer) add(us ...bus.Update) {
	cs.mu.Lock()
	defer cs.mu.Unlock()
	cs.updates = append(cs.updates, us...)
}

func put(seq uint64, key string) bus.Update {
	return bus.Update{Kind: bus.KindPut, Epoch: 2, Seq: seq, Key: key, Value: fmt.Sprint(seq), Leader: "n1", Time: 1}
}

func collect(t *testing.T, w *Watcher, n int) []string {
	t.Helper()
	var got []string
	for len(got) < n {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				t.Fatalf("watch ended after %v: %v", got, w.Err())
			}
			got = append(got, fmt.Sprintf("%d:%s:%s", u.Seq, u.Kind, u.Key))
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher delivered %v", got)
		}
	}
	return got
}

// TestWatcherFollowsTheNode: the watcher replays from its start and then
// follows what the node applies, each update once and in order, kinds it
// does not know included, filtered by prefix at the node.
func TestWatcherFollowsTheNode(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	cs := &changesServer{updates: []bus.Update{put(3, "a"), put(4, "a/x"), put(5, "b")}}
	serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), cs.reply)
	ctx, cancel := testCtx(t)
	defer cancel()
	w, err := c.Watch(ctx, "", FromRevision(4), FromNode("n1"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	got := collect(t, w, 2)
	cs.add(bus.Update{Kind: "lease_grant", Epoch: 2, Seq: 6, Key: "a", Leader: "n1", Time: 2}, put(7, "c"))
	got = append(got, collect(t, w, 2)...)
	if want := []string{"4:put:a/x", "5:put:b", "6:lease_grant:a", "7:put:c"}; !slices.Equal(got, want) {
		t.Fatalf("watcher delivered %v, want %v", got, want)
	}
}

// TestWatcherIgnoresTheReplicationSubject: what any NATS client publishes
// on the replication subject never reaches a watcher; only the node's
// replay does.
func TestWatcherIgnoresTheReplicationSubject(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	cs := &changesServer{updates: []bus.Update{put(1, "a")}}
	serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), cs.reply)
	ctx, cancel := testCtx(t)
	defer cancel()
	w, err := c.Watch(ctx, "", FromRevision(1), FromNode("n1"))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	collect(t, w, 1)
	forger := connect(t, s)
	if err := forger.Publish(c.Subjects().Replication(), bus.Encode(put(2, "forged"))); err != nil {
		t.Fatal(err)
	}
	if err := forger.Flush(); err != nil {
		t.Fatal(err)
	}
	cs.add(put(2, "real"))
	if got := collect(t, w, 1); !slices.Equal(got, []string{"2:put:real"}) {
		t.Fatalf("watcher delivered %v, want the node's update 2", got)
	}
}

// TestWatchRefusesAStartNotHeld: a start the node no longer holds fails
// Watch itself with an error matching ErrCompacted.
func TestWatchRefusesAStartNotHeld(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), always(bus.EncodeError(bus.RevisionError(bus.CodeCompacted, 40, "answers from 40"))))
	ctx, cancel := testCtx(t)
	defer cancel()
	if _, err := c.Watch(ctx, "", FromRevision(3), FromNode("n1")); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Watch = %v, want compacted", err)
	}
}

// TestWatcherMovesToAnotherNode: without FromNode, a watch whose node no
// longer holds the revisions to go on moves to the next node, from the
// same revision.
func TestWatcherMovesToAnotherNode(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	for _, id := range []string{"n1", "n2"} {
		addNode(t, connect(t, s), bus.NodeServiceName, map[string]string{bus.MetadataNode: id})
	}
	serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), always(bus.EncodeError(bus.RevisionError(bus.CodeCompacted, 40, "answers from 40"))))
	cs := &changesServer{updates: []bus.Update{put(3, "a"), put(4, "b")}}
	serve(t, connect(t, s), c.Subjects().NodeChanges("n2"), cs.reply)
	ctx, cancel := testCtx(t)
	defer cancel()
	w, err := c.Watch(ctx, "", FromRevision(3))
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	if got := collect(t, w, 2); !slices.Equal(got, []string{"3:put:a", "4:put:b"}) {
		t.Fatalf("watcher delivered %v", got)
	}
}
