package node

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/testenv"
)

// smallBudgets gives every budget a few slots, so a test fills one.
func smallBudgets(c *Config) {
	c.MaxWaitingReads, c.MaxForwards, c.MaxLeaderReads, c.MaxAckWaits, c.MaxSnapshotPages = 4, 4, 4, 4, 2
}

// replies collects the answers to requests sent without waiting.
type replies struct {
	mu   sync.Mutex
	msgs [][]byte
}

func (r *replies) add(m *nats.Msg) { r.mu.Lock(); r.msgs = append(r.msgs, m.Data); r.mu.Unlock() }

func (r *replies) all() [][]byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([][]byte(nil), r.msgs...)
}

// fillWaitingReads sends n min_revision reads to node id that wait up to
// 30 s for a revision nobody writes, and waits until the budget holds
// limit of them and refused the rest. It returns the refusals.
func fillWaitingReads(t *testing.T, ts *testServer, id string, n, limit int) [][]byte {
	t.Helper()
	got := &replies{}
	inbox := nats.NewInbox()
	sub, err := ts.nc.Subscribe(inbox, got.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	body := []byte(`{"key":"k","consistency":"min_revision","min_revision":1000000,"wait_ms":30000}`)
	for range n {
		if err := ts.nc.PublishRequest(ts.client.Subjects().NodeRead(id), inbox, body); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "the waiting reads to fill their budget", func() error {
		b := ts.srv.Status().Budgets.WaitingReads
		if b.InUse != limit || b.Rejected != uint64(n-limit) || len(got.all()) != n-limit {
			return fmt.Errorf("budget %+v, %d replies", b, len(got.all()))
		}
		return nil
	})
	return got.all()
}

func wantUnavailable(t *testing.T, body []byte, budget string) {
	t.Helper()
	err := bus.DecodeReply(body, &struct{}{})
	if !errors.Is(err, bus.ErrUnavailable) || !strings.Contains(err.Error(), budget) {
		t.Fatalf("reply %s: want unavailable naming %s", body, budget)
	}
}

// A follower's min_revision waits fill their budget; writes it forwards
// and leader reads it forwards still have theirs.
func TestWaitingReadsDoNotStarveForwardedWrites(t *testing.T) {
	ts := startTestServer(t, "n2", smallBudgets)
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	// The test plays the leader n1 on the leader subjects.
	for _, subj := range []string{ts.client.Subjects().Write(), ts.client.Subjects().LeaderRead()} {
		sub, err := ts.nc.Subscribe(subj, func(m *nats.Msg) {
			if strings.HasSuffix(m.Subject, "write") {
				respondSigned(m, bus.Encode(bus.WriteReply{OK: true, Key: "w", Revision: 7, Epoch: 2, Leader: "n1"}))
				return
			}
			respondSigned(m, bus.Encode(bus.ReadReply{Found: true, Key: "k", Value: "v", Node: "n1", Role: bus.RoleLeader, Epoch: 2}))
		})
		if err != nil {
			t.Fatal(err)
		}
		defer sub.Unsubscribe()
	}
	if err := ts.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	for _, body := range fillWaitingReads(t, ts, "n2", 10, 4) {
		wantUnavailable(t, body, bus.BudgetWaitingReads)
	}
	for i := range 8 { // twice the forwarded_writes budget, one at a time
		msg, err := ts.nc.Request(ts.client.Subjects().NodeWrite("n2"), bus.Encode(bus.WriteRequest{Key: "w", Value: fmt.Sprint(i)}), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var w bus.WriteReply
		if err := bus.DecodeReply(msg.Data, &w); err != nil || w.Revision != 7 {
			t.Fatalf("forwarded write %d while the waits are full: %s, %v", i, msg.Data, err)
		}
		msg, err = ts.nc.Request(ts.client.Subjects().NodeRead("n2"), []byte(`{"key":"k","consistency":"leader"}`), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r bus.ReadReply
		if err := bus.DecodeReply(msg.Data, &r); err != nil || r.Node != "n1" {
			t.Fatalf("leader read %d while the waits are full: %s, %v", i, msg.Data, err)
		}
	}
	// The in-process path (the HTTP API) counts against the same budgets.
	ctx := ctxTimeout(t, 5*time.Second)
	if _, err := ts.srv.Read(ctx, bus.ReadRequest{Key: "k", Consistency: bus.ConsistencyMinRevision, MinRevision: 1000000, WaitMS: 10}); !errors.Is(err, bus.ErrUnavailable) || !strings.Contains(err.Error(), bus.BudgetWaitingReads) {
		t.Fatalf("in-process min_revision read with waiting_reads full: %v", err)
	}
	if w, err := ts.srv.Write(ctx, bus.WriteRequest{Key: "w", Value: "x"}); err != nil || w.Revision != 7 {
		t.Fatalf("in-process forwarded write with waiting_reads full: %+v, %v", w, err)
	}
	if r, err := ts.srv.Read(ctx, bus.ReadRequest{Key: "k", Consistency: bus.ConsistencyLeader}); err != nil || r.Node != "n1" {
		t.Fatalf("in-process leader read with waiting_reads full: %+v, %v", r, err)
	}
	st := ts.srv.Status().Budgets
	if st.ForwardedWrites.Rejected != 0 || st.LeaderReads.Rejected != 0 || st.WaitingReads.InUse != 4 || st.WaitingReads.Rejected != 7 {
		t.Fatalf("budgets after the writes: %+v", st)
	}
}

// On the leader, min_revision waits filling their budget leave acks=all
// writes theirs; a full ack_waits budget refuses a write before applying
// it.
func TestWaitingReadsDoNotStarveAckWaits(t *testing.T) {
	ts := startTestServer(t, "n1", smallBudgets)
	ts.srv.cfg.WriteTimeout = 3 * time.Second
	ts.el.lease.Store(true)
	ts.el.members.Store([]string{"n1", "n2"})
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 4}
	ts.waitRole(t, bus.RoleLeader)
	// n2 confirms every put while confirming is on.
	var confirming atomic.Bool
	confirming.Store(true)
	sub, err := ts.nc.Subscribe(ts.client.Subjects().Replication(), func(m *nats.Msg) {
		var u bus.Update
		if confirming.Load() && bus.Decode(m.Data, &u) == nil && u.Kind == bus.KindPut && u.Ack {
			_ = ts.nc.PublishMsg(testSigner.Msg(ts.client.Subjects().Ack(), bus.Encode(bus.Ack{Node: "n2", Epoch: u.Epoch, Seq: u.Seq})))
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Unsubscribe()
	if err := ts.nc.Flush(); err != nil {
		t.Fatal(err)
	}

	fillWaitingReads(t, ts, "n1", 10, 4)
	for i := range 8 {
		msg, err := ts.nc.Request(ts.client.Subjects().Write(), bus.Encode(bus.WriteRequest{Key: "a", Value: fmt.Sprint(i), Acks: bus.AcksAll}), 5*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var w bus.WriteReply
		if err := bus.DecodeReply(msg.Data, &w); err != nil || w.Confirmed != 2 {
			t.Fatalf("acks=all write %d while the waits are full: %s, %v", i, msg.Data, err)
		}
	}

	// n2 goes silent: four writes hold the ack_waits budget, the fifth is
	// refused unapplied.
	confirming.Store(false)
	got := &replies{}
	inbox := nats.NewInbox()
	isub, err := ts.nc.Subscribe(inbox, got.add)
	if err != nil {
		t.Fatal(err)
	}
	defer isub.Unsubscribe()
	for i := range 4 {
		body := bus.Encode(bus.WriteRequest{Key: "held", Value: fmt.Sprint(i), Acks: bus.AcksAll})
		if err := ts.nc.PublishRequest(ts.client.Subjects().Write(), inbox, body); err != nil {
			t.Fatal(err)
		}
	}
	testenv.WaitFor(t, 5*time.Second, "four writes waiting", func() error {
		if b := ts.srv.Status().Budgets.AckWaits; b.InUse != 4 {
			return fmt.Errorf("ack_waits %+v", b)
		}
		return nil
	})
	rev := ts.srv.Status().AppliedSeq
	msg, err := ts.nc.Request(ts.client.Subjects().Write(), bus.Encode(bus.WriteRequest{Key: "refused", Value: "x", Acks: bus.AcksAll}), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, msg.Data, bus.BudgetAckWaits)
	if !strings.Contains(string(msg.Data), "applied nothing") {
		t.Fatalf("refusal %s does not say it applied nothing", msg.Data)
	}
	if st := ts.srv.Status(); st.AppliedSeq != rev || st.Budgets.AckWaits.Rejected != 1 {
		t.Fatalf("after the refusal: applied_seq %d (was %d), budget %+v", st.AppliedSeq, rev, st.Budgets.AckWaits)
	}
	if _, ok := ts.srv.store.Get("refused"); ok {
		t.Fatal("the refused write was applied")
	}
	if _, err := ts.srv.Write(ctxTimeout(t, 5*time.Second), bus.WriteRequest{Key: "refused", Value: "y", Acks: bus.AcksMajority}); !errors.Is(err, bus.ErrUnavailable) || !strings.Contains(err.Error(), "applied nothing") {
		t.Fatalf("in-process majority write with ack_waits full: %v", err)
	}
	if _, ok := ts.srv.store.Get("refused"); ok || ts.srv.Status().AppliedSeq != rev {
		t.Fatal("the refused in-process write was applied")
	}
	// An acks=leader write needs no slot.
	if _, err := ts.writeOnce(t, "plain", "x"); err != nil {
		t.Fatalf("acks=leader write with ack_waits full: %v", err)
	}
	testenv.WaitFor(t, 10*time.Second, "the held writes to time out", func() error {
		if n := len(got.all()); n != 4 {
			return fmt.Errorf("%d replies", n)
		}
		return nil
	})
	for _, body := range got.all() {
		if err := bus.DecodeReply(body, &bus.WriteReply{}); !errors.Is(err, bus.ErrTimeout) {
			t.Fatalf("held write: %s, want timeout", body)
		}
	}
}

// A full lists budget refuses lists, over NATS and in process, naming it;
// a freed slot serves again.
func TestListsBudget(t *testing.T) {
	ts := startTestServer(t, "n2", func(c *Config) { c.MaxLists = 1 })
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	release, err := ts.srv.take(ts.srv.budgets.lists)
	if err != nil {
		t.Fatal(err)
	}
	msg, err := ts.nc.Request(ts.client.Subjects().NodeList("n2"), []byte(`{"prefix":"a/"}`), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	wantUnavailable(t, msg.Data, bus.BudgetLists)
	if _, err := ts.srv.List(bus.ListRequest{}); !errors.Is(err, bus.ErrUnavailable) || !strings.Contains(err.Error(), bus.BudgetLists) {
		t.Fatalf("in-process list with a full budget: %v", err)
	}
	release()
	if page, err := ts.client.List(t.Context(), "a/", client.FromNode("n2")); err != nil || page.Node != "n2" || len(page.Entries) != 0 {
		t.Fatalf("list after the slot was freed: %+v, %v", page, err)
	}
	if b := ts.srv.Status().Budgets.Lists; b.Limit != 1 || b.InUse != 0 || b.Rejected != 2 {
		t.Fatalf("lists budget %+v, want limit 1, none in use, 2 rejected", b)
	}
}
