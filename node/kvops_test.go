package node_test

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/testenv"
)

// writeVia sends w on node's own write subject and decodes the reply.
func (c *cluster) writeVia(node string, w bus.WriteRequest) (bus.WriteReply, error) {
	c.t.Helper()
	msg, err := c.nc.Request(c.client.Subjects().NodeWrite(node), bus.Encode(w), 10*time.Second)
	if err != nil {
		return bus.WriteReply{}, err
	}
	var reply bus.WriteReply
	return reply, bus.DecodeReply(msg.Data, &reply)
}

// waitAbsent polls node's local copy until key is not found.
func (c *cluster) waitAbsent(node, key string) {
	c.t.Helper()
	testenv.WaitFor(c.t, 5*time.Second, fmt.Sprintf("%s to miss %s", node, key), func() error {
		r, err := c.client.Read(ctxFor(c.t, time.Second), key, client.FromNode(node))
		if err != nil {
			return err
		}
		if r.Found {
			return fmt.Errorf("read %+v", r)
		}
		return nil
	})
}

// wantCondition checks that err is a conflict or exists error carrying rev.
func wantCondition(t *testing.T, what string, err, sentinel error, rev uint64) {
	t.Helper()
	var e *bus.Error
	if !errors.Is(err, sentinel) || !errors.As(err, &e) {
		t.Fatalf("%s: %v, want %v", what, err, sentinel)
	}
	if got, ok := e.CurrentRevision(); !ok || got != rev {
		t.Fatalf("%s: error carries revision %d (%v), want %d", what, got, ok, rev)
	}
}

func TestDeleteCreateAndCompareAndSet(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	var ids, followers []string
	for id := range c.nodes {
		ids = append(ids, id)
		if id != leader {
			followers = append(followers, id)
		}
	}
	ctx := ctxFor(t, time.Minute)

	// A delete through a follower, checked by the leader, reaches every copy.
	c.put("k", "v")
	for _, id := range ids {
		c.waitValue(id, "k", "v")
	}
	d, err := c.writeVia(followers[0], bus.WriteRequest{Op: bus.OpDelete, Key: "k"})
	if err != nil || !d.OK || !d.Deleted || d.Leader != leader || d.Op != bus.OpDelete {
		t.Fatalf("delete via %s: %+v, %v", followers[0], d, err)
	}
	for _, id := range ids {
		c.waitAbsent(id, "k")
	}
	if again, err := c.client.Delete(ctx, "k"); err != nil || !again.OK || again.Deleted {
		t.Fatalf("delete of a deleted key: %+v, %v, want ok and deleted false", again, err)
	}

	// Create twice: the second fails with exists and the first revision.
	first, err := c.client.Create(ctx, "c", "1")
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.client.Create(ctx, "c", "2")
	wantCondition(t, "second create", err, bus.ErrExists, first.Revision)

	// Compare-and-set with the right revision, then a stale one.
	r0 := c.put("cas", "0")
	r1, err := c.client.Put(ctx, "cas", "1", client.WithIfRevision(r0.Revision))
	if err != nil {
		t.Fatal(err)
	}
	_, err = c.client.Put(ctx, "cas", "2", client.WithIfRevision(r0.Revision))
	wantCondition(t, "stale CAS", err, bus.ErrConflict, r1.Revision)
	_, err = c.client.Delete(ctx, "cas", client.WithIfRevision(r0.Revision))
	wantCondition(t, "stale conditional delete", err, bus.ErrConflict, r1.Revision)
	// An acks=all delete is confirmed by every server.
	if del, err := c.client.Delete(ctx, "cas", client.WithIfRevision(r1.Revision), client.WithAcks(bus.AcksAll)); err != nil || !del.Deleted || del.Confirmed != 3 {
		t.Fatalf("acks=all delete: %+v, %v", del, err)
	}

	// Concurrent CAS writers through every node: exactly one wins.
	start := c.put("race", "start")
	const writers = 9
	var wg sync.WaitGroup
	results := make([]error, writers)
	for i := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, results[i] = c.writeVia(ids[i%len(ids)], bus.WriteRequest{Key: "race", Value: fmt.Sprint("w", i),
				IfRevision: &start.Revision, RequestID: bus.NewRequestID()})
		}()
	}
	wg.Wait()
	wins := 0
	for i, err := range results {
		switch {
		case err == nil:
			wins++
		case !errors.Is(err, bus.ErrConflict):
			t.Errorf("writer %d: %v, want ok or conflict", i, err)
		}
	}
	if wins != 1 {
		t.Fatalf("%d CAS writers won, want exactly 1", wins)
	}

	// The same over HTTP, through a follower.
	addr := "http://" + c.nodes[followers[1]].HTTPAddr() + "/v1/kv/h"
	created := httpDo(t, "PUT", addr+"?create=true", "1", 200)
	if !strings.Contains(created, `"op":"create"`) {
		t.Fatalf("HTTP create: %s", created)
	}
	if body := httpDo(t, "PUT", addr+"?create=true", "2", 412); !strings.Contains(body, `"code":"exists"`) || !strings.Contains(body, `"revision":`) {
		t.Fatalf("HTTP create of an existing key: %s", body)
	}
	if body := httpDo(t, "PUT", addr+"?if_revision=1", "2", 412); !strings.Contains(body, `"code":"conflict"`) {
		t.Fatalf("HTTP stale CAS: %s", body)
	}
	r, err := c.client.Read(ctx, "h", client.FromNode(followers[1]), client.WithMinRevision(first.Revision, time.Second))
	if err != nil {
		t.Fatal(err)
	}
	httpDo(t, "PUT", fmt.Sprintf("%s?if_revision=%d", addr, r.Revision), "3", 200)
	r, err = c.client.Read(ctx, "h", client.FromNode(leader), client.WithLeaderRead())
	if err != nil || r.Value != "3" {
		t.Fatalf("read after HTTP CAS: %+v, %v", r, err)
	}
	if body := httpDo(t, "DELETE", fmt.Sprintf("%s?if_revision=%d", addr, r.Revision), "", 200); !strings.Contains(body, `"deleted":true`) {
		t.Fatalf("HTTP DELETE: %s", body)
	}
	c.waitAbsent(followers[1], "h")
	httpDo(t, "GET", addr, "", 404)
	if body := httpDo(t, "DELETE", addr, "", 200); strings.Contains(body, `"deleted"`) {
		t.Fatalf("HTTP DELETE of a missing key: %s", body)
	}
}
