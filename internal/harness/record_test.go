package harness

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"
)

// TestReadClusterRecord waits for a record created after the call started,
// and gives up with ctx's error when there is none.
func TestReadClusterRecord(t *testing.T) {
	t.Parallel()
	ctx := testContext(t, 60*time.Second)
	z, err := StartZooKeeper(ctx, ZooKeeperOptions{})
	if err != nil {
		t.Fatalf("StartZooKeeper: %v", err)
	}
	dumpOnFailure(t, z)
	t.Cleanup(func() { _ = z.Stop() })

	short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = ReadClusterRecord(short, z.Addr(), "/missing-cluster", "")
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) || !errors.Is(err, zk.ErrNoNode) {
		t.Fatalf("ReadClusterRecord of a missing record: %v, want the deadline and ErrNoNode", err)
	}

	type result struct {
		rec ClusterRecord
		err error
	}
	done := make(chan result, 1)
	go func() {
		rec, err := ReadClusterRecord(ctx, z.Addr(), RecordPath("/election"), "")
		done <- result{rec, err}
	}()
	conn := zkConnect(t, ctx, z.Addr())
	data := []byte(`{"cluster_id":"c1","key":"a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2V5a2U=","epoch":3,"revision":42,"created":1}`)
	if _, err := conn.Create("/election-cluster", data, 0, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatalf("create: %v", err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("ReadClusterRecord: %v", r.err)
	}
	if r.rec.ClusterID != "c1" || r.rec.Epoch != 3 || r.rec.Revision != 42 || !bytes.HasPrefix(r.rec.Key, []byte("keykey")) {
		t.Fatalf("record %+v", r.rec)
	}
}
