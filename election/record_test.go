package election

import (
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/testenv"
)

func TestRecordIsCreatedOnceAndOnlyRaised(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	a := startElector(t, z.Addr(), "a", 2*time.Second)
	b := startElector(t, z.Addr(), "b", 2*time.Second)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	ra, err := a.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	rb, err := b.Record(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if ra.ClusterID == "" || ra.ClusterID != rb.ClusterID || string(ra.Key) != string(rb.Key) || len(ra.Key) < ClusterKeyBytes {
		t.Fatalf("two servers of one cluster read different records: %+v / %+v", ra, rb)
	}
	if _, err := a.RaiseRecord(ctx, 5, 100, 90); err != nil {
		t.Fatal(err)
	}
	if _, err := b.RaiseRecord(ctx, 4, 50, 40); err != nil { // lower: changes nothing
		t.Fatal(err)
	}
	got, err := b.ReadRecord(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.Epoch != 5 || got.Revision != 100 || got.Acked != 90 {
		t.Fatalf("record epoch %d revision %d acked %d, want 5, 100 and 90: a raise lowered it", got.Epoch, got.Revision, got.Acked)
	}
}

// TestNewConnectionAfterZooKeeperIsEmptied replaces the ZooKeeper under a
// leader with an empty one on the same address. ZooKeeper refuses a client
// that has seen newer transactions than it holds, so the Elector must dial
// again from scratch; it then writes the record back with its own cluster
// identity and leads again at an epoch above the one it knew.
func TestNewConnectionAfterZooKeeperIsEmptied(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	var known atomic.Uint64
	e, err := New(Config{
		Servers: []string{z.Addr()}, SessionTimeout: time.Second, ID: "a",
		Known:  func() (uint64, uint64) { return known.Load(), 40 },
		Logger: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Elector: e, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- e.Run(ctx) }()
	defer func() { cancel(); <-r.done }()
	// A few registrations so the old ZooKeeper's sequence numbers, and so
	// epochs, are past what an empty one starts at.
	for i := 0; i < 3; i++ {
		waitTerm(t, r, "to lead", isLeader)
		if err := e.Requeue(ctx); err != nil {
			t.Fatal(err)
		}
	}
	before := waitTerm(t, r, "to lead", isLeader)
	known.Store(before.Epoch)
	rec, _ := e.LastRecord()

	if err := z.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(z.Dir(), "data", "version-2")); err != nil {
		t.Fatal(err)
	}
	rctx, rcancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer rcancel()
	if err := z.Restart(rctx); err != nil {
		t.Fatal(err)
	}
	after := waitTerm(t, r, "to lead on the emptied ZooKeeper", func(tm Term) bool { return isLeader(tm) && tm.Epoch > before.Epoch })
	got, err := e.ReadRecord(rctx)
	if err != nil {
		t.Fatal(err)
	}
	if got.ClusterID != rec.ClusterID || string(got.Key) != string(rec.Key) || got.Recreated != 1 || got.Revision < 40 {
		t.Fatalf("record after the emptied ZooKeeper: %+v, want cluster %s recreated once at revision >= 40", got, rec.ClusterID)
	}
	t.Logf("epoch %d before, %d after the emptied ZooKeeper", before.Epoch, after.Epoch)
}
