package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/testenv"
)

// startLeader starts n1 leading epoch 3 with keys keys already written.
func startLeader(t *testing.T, keys int, opts ...func(*Config)) *testServer {
	t.Helper()
	ts := startTestServer(t, "n1", opts...)
	for i := range keys {
		if _, err := ts.srv.store.Put(3, fmt.Sprintf("k%06d", i), "v"); err != nil {
			t.Fatal(err)
		}
	}
	ts.el.lease.Store(true)
	ts.el.members.Store([]string{"n1"})
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3}
	ts.waitRole(t, bus.RoleLeader)
	return ts
}

// Clients paging the leader's snapshot one entry at a time, more of them
// than the snapshot_pages budget, do not stop writes: every write
// succeeds, and every page is a page or a refusal naming the budget.
func TestSnapshotPagingDoesNotBlockWrites(t *testing.T) {
	ts := startLeader(t, 20000, smallBudgets)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var pages, refused atomic.Int64
	var bad atomic.Value
	var wg sync.WaitGroup
	for c := range 8 {
		wg.Go(func() {
			after := ""
			for ctx.Err() == nil {
				body := bus.Encode(bus.SnapshotRequest{After: after, Limit: 1 + c%2*bus.MaxSnapshotPage/2})
				msg, err := ts.nc.RequestWithContext(ctx, ts.client.Subjects().LeaderSnapshot(), body)
				if err != nil {
					if ctx.Err() == nil {
						bad.Store(err)
					}
					return
				}
				var p bus.SnapshotReply
				switch err := bus.DecodeReply(msg.Data, &p); {
				case errors.Is(err, bus.ErrUnavailable) && strings.Contains(err.Error(), bus.BudgetSnapshotPages):
					refused.Add(1)
				case err != nil:
					bad.Store(err)
					return
				case len(p.Entries) == 0 || p.Epoch != 3:
					bad.Store(fmt.Errorf("page %+v", p))
					return
				default:
					pages.Add(1)
					after = p.Entries[len(p.Entries)-1].Key
					if !p.More {
						after = ""
					}
				}
			}
		})
	}
	testenv.WaitFor(t, 10*time.Second, "paging to start", func() error {
		if pages.Load() < 16 {
			return errors.New("not yet")
		}
		return nil
	})
	const writes = 300
	for i := range writes {
		if _, err := ts.writeOnce(t, fmt.Sprintf("w%03d", i), "x"); err != nil {
			t.Fatalf("write %d while %d pages were served: %v", i, pages.Load(), err)
		}
	}
	cancel()
	wg.Wait()
	if err, _ := bad.Load().(error); err != nil {
		t.Fatalf("a snapshot client: %v", err)
	}
	st := ts.srv.Status()
	if st.AppliedSeq != 20000+writes || st.Keys != 20000+writes {
		t.Fatalf("status %+v, want %d writes applied", st, 20000+writes)
	}
	// Each of the 8 clients may have had one refusal in flight when the
	// test stopped waiting for answers: counted by the server, never seen.
	if r, seen := st.Budgets.SnapshotPages.Rejected, uint64(refused.Load()); r < seen || r > seen+8 || st.Budgets.SnapshotPages.Limit != 2 {
		t.Fatalf("snapshot_pages %+v, clients saw %d refusals", st.Budgets.SnapshotPages, refused.Load())
	}
	t.Logf("%d writes while %d pages were served and %d refused", writes, pages.Load(), refused.Load())
}

// A follower catching up while the leader overwrites and adds keys ends
// with the leader's copy exactly, over many pipelined pages.
func TestCatchUpMergesLiveWritesIntoPages(t *testing.T) {
	const keys = 30000 // about eight pages
	leader := startLeader(t, keys)
	follower := startTestServer(t, "n2", func(c *Config) { c.NATSURL, c.CatchUp = leader.srv.cfg.NATSURL, true })
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	var writes atomic.Int64
	wg.Go(func() {
		for i := 0; ctx.Err() == nil; i++ {
			key := fmt.Sprintf("k%06d", (i*7919)%keys) // overwrites all over the keyspace
			if i%5 == 0 {
				key = fmt.Sprintf("new%06d", i) // and new keys
			}
			if _, err := leader.writeOnce(t, key, fmt.Sprint(i)); err == nil {
				writes.Add(1)
			}
		}
	})
	testenv.WaitFor(t, 5*time.Second, "writes to start", func() error {
		if writes.Load() < 10 {
			return errors.New("not yet")
		}
		return nil
	})
	follower.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 3, Leader: election.LeaderData{ID: "n1", Epoch: 3}}
	testenv.WaitFor(t, 30*time.Second, "n2 to catch up", func() error {
		if st := follower.srv.Status(); st.Stale || st.CatchingUp || st.Keys < keys {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	n := writes.Load()
	testenv.WaitFor(t, 10*time.Second, "more writes after the catch-up", func() error {
		if writes.Load() < n+50 {
			return errors.New("not yet")
		}
		return nil
	})
	cancel()
	wg.Wait()
	want := leader.srv.Status().AppliedSeq
	testenv.WaitFor(t, 10*time.Second, "n2 to apply the last write", func() error {
		if st := follower.srv.Status(); st.AppliedSeq != want || st.Stale {
			return fmt.Errorf("status %+v, want applied_seq %d", st, want)
		}
		return nil
	})
	lp, _, _, _ := leader.srv.store.Snapshot("", 1<<30, 1<<40)
	fp, _, _, _ := follower.srv.store.Snapshot("", 1<<30, 1<<40)
	if len(lp) != len(fp) {
		t.Fatalf("leader has %d keys, follower %d", len(lp), len(fp))
	}
	for i := range lp {
		if lp[i] != fp[i] {
			t.Fatalf("key %d: leader %+v, follower %+v", i, lp[i], fp[i])
		}
	}
	t.Logf("%d keys equal after a catch-up under %d writes", len(lp), writes.Load())
}
