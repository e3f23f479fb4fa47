package node_test

import (
	"testing"
	"time"
)

// With fast failover, a SIGKILLed leader is replaced long before
// ZooKeeper could expire its session, and a paused one (SIGSTOP) is not
// mistaken for a dead one.
func TestFastFailoverTakesOverFromACrashNotAPause(t *testing.T) {
	// A session timeout no failover in this test may wait for.
	const long = 30 * time.Second
	c := startCluster(t, 3, long)
	leader, epoch := c.waitLeader("", 20*time.Second)
	c.put("before", "1")

	// Paused: still subscribed, so its probes time out; nobody deposes it.
	paused := c.nodes[leader]
	if err := paused.Pause(); err != nil {
		t.Fatal(err)
	}
	<-time.After(2 * time.Second) // a hundred probe windows
	if err := paused.Resume(); err != nil {
		t.Fatal(err)
	}
	if got, gotEpoch := c.waitLeader("", 10*time.Second); got != leader || gotEpoch != epoch {
		t.Fatalf("after a 2s pause %s leads epoch %d; want %s still leading epoch %d", got, gotEpoch, leader, epoch)
	}

	if err := c.nodes[leader].Kill(); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	newLeader, newEpoch := c.waitLeader(leader, long/2)
	t.Logf("SIGKILL failover: %s -> %s in %s (session timeout %s)", leader, newLeader, time.Since(start), long)
	if newEpoch <= epoch {
		t.Fatalf("new epoch %d is not above %d", newEpoch, epoch)
	}
	if w := c.put("after", "2"); w.Leader != newLeader || w.Epoch != newEpoch {
		t.Fatalf("write after failover answered by %s epoch %d, want %s epoch %d", w.Leader, w.Epoch, newLeader, newEpoch)
	}
}
