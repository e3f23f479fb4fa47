package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
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

// fakeElector stands in for the ZooKeeper election so a test decides the
// terms and the lease; NATS stays real.
type fakeElector struct {
	terms     chan election.Term
	lease     atomic.Bool
	announced chan election.LeaderData
	resigned  atomic.Bool
	members   atomic.Value // []string
	requeued  atomic.Int32
	recMu     sync.Mutex
	rec       election.Record // epoch and revision raised so far
}

// The fake stands in for every part of the election the server uses.
var _ Elector = (*fakeElector)(nil)

func newFakeElector() *fakeElector {
	return &fakeElector{terms: make(chan election.Term, 1), announced: make(chan election.LeaderData, 8)}
}

func (f *fakeElector) Run(ctx context.Context) error    { <-ctx.Done(); return nil }
func (f *fakeElector) Leadership() <-chan election.Term { return f.terms }
func (f *fakeElector) LeaseValid() bool                 { return f.lease.Load() }
func (f *fakeElector) Resign(context.Context) error     { f.resigned.Store(true); return nil }
func (f *fakeElector) SessionState() string             { return "connected" }
func (f *fakeElector) Connected() bool                  { return true }
func (f *fakeElector) Requeue(context.Context) error    { f.requeued.Add(1); return nil }
func (f *fakeElector) Members() []string {
	m, _ := f.members.Load().([]string)
	return m
}
func (f *fakeElector) Announce(_ context.Context, d election.LeaderData) error {
	f.announced <- d
	return nil
}

// testRecord is the cluster record every fake election hands out.
var testRecord = election.Record{ClusterID: "test-cluster", Key: []byte("0123456789abcdef0123456789abcdef")}

// testSigner signs what a test sends as if it were a server of testRecord's
// cluster.
var testSigner, _ = bus.NewSigner(testRecord.ClusterID, testRecord.Key)

// respondSigned answers m as a server of testRecord's cluster would.
func respondSigned(m *nats.Msg, data []byte) {
	_ = m.RespondMsg(&nats.Msg{Data: data, Header: testSigner.Header(bus.DomainReply, m.Reply, data)})
}

func (f *fakeElector) Record(context.Context) (election.Record, error) { return f.record(), nil }
func (f *fakeElector) LastRecord() (election.Record, bool)             { return f.record(), true }
func (f *fakeElector) ReadRecord(context.Context) (election.Record, error) {
	return f.record(), nil
}
func (f *fakeElector) RecordProblem() string { return "" }
func (f *fakeElector) RaiseRecord(_ context.Context, epoch, reserved, acked uint64) (election.Record, error) {
	f.recMu.Lock()
	f.rec.Epoch, f.rec.Revision, f.rec.Acked = max(f.rec.Epoch, epoch), max(f.rec.Revision, reserved, acked), max(f.rec.Acked, acked)
	f.recMu.Unlock()
	return f.record(), nil
}
func (f *fakeElector) record() election.Record {
	f.recMu.Lock()
	defer f.recMu.Unlock()
	r := testRecord
	r.Epoch, r.Revision, r.Acked = f.rec.Epoch, f.rec.Revision, f.rec.Acked
	return r
}

type testServer struct {
	srv    *Server
	el     *fakeElector
	nc     *nats.Conn
	client *client.Client
	done   chan error
}

func startTestServer(t *testing.T, id string, opts ...func(*Config)) *testServer {
	t.Helper()
	ns := testenv.StartNATS(t)
	el := newFakeElector()
	cfg := DefaultConfig()
	cfg.ID, cfg.ZooKeeper, cfg.NATSURL = id, []string{"127.0.0.1:1"}, ns.URL()
	cfg.ForwardTimeout = 150 * time.Millisecond // below the client's request timeout
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	cfg.newElector = func(election.Config) (Elector, error) { return el, nil }
	for _, o := range opts {
		o(&cfg)
	}
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	ts := &testServer{srv: srv, el: el, done: make(chan error, 1)}
	go func() { ts.done <- srv.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-ts.done; err != nil {
			t.Errorf("Run: %v", err)
		}
		if !el.resigned.Load() {
			t.Error("server stopped without resigning")
		}
	})
	nc, err := nats.Connect(ns.URL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	ts.nc = nc
	ts.client, err = client.New(nc, client.WithRequestTimeout(300*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	return ts
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) { w.t.Log(string(p)); return len(p), nil }

func (ts *testServer) waitRole(t *testing.T, role string) {
	t.Helper()
	testenv.WaitFor(t, 5*time.Second, "role "+role, func() error {
		if st := ts.srv.Status(); st.Role != role {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}

// writeOnce sends one raw write on the leader subject and decodes the reply.
func (ts *testServer) writeOnce(t *testing.T, key, value string) (bus.WriteReply, error) {
	t.Helper()
	msg, err := ts.nc.Request(ts.client.Subjects().Write(), bus.Encode(bus.WriteRequest{Key: key, Value: value}), 2*time.Second)
	if err != nil {
		return bus.WriteReply{}, err
	}
	var r bus.WriteReply
	return r, bus.DecodeReply(msg.Data, &r)
}

func (ts *testServer) publish(t *testing.T, u bus.Update) {
	t.Helper()
	if err := ts.nc.PublishMsg(testSigner.Msg(ts.client.Subjects().Replication(), bus.Encode(u))); err != nil {
		t.Fatal(err)
	}
	if err := ts.nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

func TestLeaderAcknowledgesOnlyWithLease(t *testing.T) {
	ts := startTestServer(t, "n1")
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3, Znode: "server_0000000002"}
	ts.waitRole(t, bus.RoleLeader)
	if d := <-ts.el.announced; d.ID != "n1" || d.Epoch != 3 {
		t.Fatalf("announced %+v", d)
	}

	r, err := ts.writeOnce(t, "a", "1")
	if err != nil || !r.OK || r.Epoch != 3 || r.Revision != 1 || r.Leader != "n1" {
		t.Fatalf("write with a lease: %+v, %v", r, err)
	}
	ts.el.lease.Store(false) // ZooKeeper silent too long: no acknowledgements
	for _, key := range []string{"b", "c"} {
		if _, err := ts.writeOnce(t, key, "x"); !errors.Is(err, bus.ErrNotLeader) {
			t.Fatalf("write without a lease = %v, want not_leader", err)
		}
	}
	if _, ok := ts.srv.store.Get("b"); ok {
		t.Fatal("a write refused for want of a lease was applied")
	}
	ts.el.lease.Store(true)
	if r, err := ts.writeOnce(t, "d", "1"); err != nil || r.Revision != 2 {
		t.Fatalf("write after the lease returned: %+v, %v", r, err)
	}
}

func TestLeaderStepsDownOnHigherEpochFromTheBus(t *testing.T) {
	ts := startTestServer(t, "n1")
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3}
	ts.waitRole(t, bus.RoleLeader)

	ts.publish(t, bus.Update{Kind: bus.KindEpoch, Epoch: 9, Seq: 0, Leader: "n2"})
	testenv.WaitFor(t, 5*time.Second, "step-down", func() error {
		if st := ts.srv.Status(); st.Role == bus.RoleLeader || st.Epoch != 9 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	// The leader subject is no longer served (a request the stopping
	// service still drains is refused), and the old epoch cannot write.
	if _, err := ts.writeOnce(t, "a", "1"); !errors.Is(err, nats.ErrNoResponders) && !errors.Is(err, bus.ErrNotLeader) {
		t.Fatalf("write after step-down = %v, want no responders or not_leader", err)
	}
	if _, _, err := ts.srv.applyWrite(bus.WriteRequest{Key: "a", Value: "1"}); !errors.Is(err, bus.ErrNotLeader) {
		t.Fatalf("applyWrite after step-down = %v, want not_leader", err)
	}
}

func TestFollowerAppliesInOrderDropsOldEpochsAndReportsGaps(t *testing.T) {
	ts := startTestServer(t, "n2")
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 5, Leader: election.LeaderData{ID: "n1", Epoch: 5}}
	ts.waitRole(t, bus.RoleFollower)

	for _, u := range []bus.Update{
		{Kind: bus.KindEpoch, Epoch: 5, Seq: 0, Leader: "n1"},
		{Kind: bus.KindPut, Epoch: 5, Seq: 1, Key: "a", Value: "1", Leader: "n1"},
		{Kind: bus.KindPut, Epoch: 4, Seq: 2, Key: "a", Value: "deposed", Leader: "n0"}, // old epoch
		{Kind: bus.KindPut, Epoch: 5, Seq: 2, Key: "b", Value: "2", Leader: "n1"},
		{Kind: bus.KindPut, Epoch: 5, Seq: 5, Key: "c", Value: "5", Leader: "n1"}, // 3 and 4 lost
	} {
		ts.publish(t, u)
	}
	testenv.WaitFor(t, 5*time.Second, "updates applied", func() error {
		if st := ts.srv.Status(); st.AppliedSeq != 5 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
	st := ts.srv.Status()
	if !st.Stale || st.Gaps != 2 || st.Keys != 3 || st.Leader != "n1" || st.Epoch != 5 {
		t.Fatalf("status %+v: want stale with 2 missed, 3 keys, leader n1 epoch 5", st)
	}
	if r := ts.srv.read("a"); r.Value != "1" {
		t.Fatalf("a = %+v: an old-epoch update was applied", r)
	}
	if got := ts.srv.droppedOld.Load(); got != 1 {
		t.Fatalf("dropped old-epoch updates = %d, want 1", got)
	}
	// A follower forwards writes; with no leader it answers no_leader.
	_, err := ts.client.Put(ctxTimeout(t, 3*time.Second), "k", "v", client.Via("n2"))
	if !errors.Is(err, bus.ErrNoLeader) {
		t.Fatalf("write via a follower with no leader = %v, want no_leader", err)
	}
}

func TestConfigValidate(t *testing.T) {
	base := func() Config {
		c := DefaultConfig()
		c.ID, c.ZooKeeper = "n1", []string{"127.0.0.1:2181"}
		return c
	}
	tests := []struct {
		name   string
		mutate func(*Config)
		ok     bool
	}{
		{"defaults", func(*Config) {}, true},
		{"bad id", func(c *Config) { c.ID = "n.1" }, false},
		{"bad prefix", func(c *Config) { c.SubjectPrefix = "kv..x" }, false},
		{"bad http", func(c *Config) { c.HTTPAddr = "nope" }, false},
		{"no zookeeper", func(c *Config) { c.ZooKeeper = nil }, false},
		{"zero forwards", func(c *Config) { c.MaxForwards = -1 }, false},
		{"no waiting reads", func(c *Config) { c.MaxWaitingReads = -1 }, false},
		{"no leader reads", func(c *Config) { c.MaxLeaderReads = -1 }, false},
		{"no ack waits", func(c *Config) { c.MaxAckWaits = -1 }, false},
		{"no snapshot pages", func(c *Config) { c.MaxSnapshotPages = -1 }, false},
		{"no lists", func(c *Config) { c.MaxLists = -1 }, false},
		{"embedded nats", func(c *Config) {
			c.NATSListen, c.NATSClusterListen, c.NATSRoutes = "127.0.0.1:4222", "127.0.0.1:6222", []string{"nats-route://127.0.0.1:6223"}
		}, true},
		{"bad nats listen", func(c *Config) { c.NATSListen = "4222" }, false},
		{"bad nats route", func(c *Config) {
			c.NATSListen, c.NATSClusterListen, c.NATSRoutes = "127.0.0.1:4222", "127.0.0.1:6222", []string{"127.0.0.1:6223"}
		}, false},
		{"nats routes without listen", func(c *Config) { c.NATSRoutes = []string{"nats-route://127.0.0.1:6223"} }, false},
	}
	for _, tt := range tests {
		c := base()
		tt.mutate(&c)
		c.setDefaults()
		if err := c.Validate(); (err == nil) != tt.ok {
			t.Errorf("%s: Validate() = %v, want ok=%v", tt.name, err, tt.ok)
		}
	}
}

func ctxTimeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

func TestRequestIDSurvivesFailover(t *testing.T) {
	ts := startTestServer(t, "n2")
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	// The old leader n1 applied a write with a request ID; n2 replicated it.
	ts.publish(t, bus.Update{Kind: bus.KindEpoch, Epoch: 2, Seq: 0, Leader: "n1"})
	ts.publish(t, bus.Update{Kind: bus.KindPut, Epoch: 2, Seq: 1, Key: "a", Value: "1", Leader: "n1", RequestID: "client-7"})
	testenv.WaitFor(t, 5*time.Second, "update applied", func() error {
		if ts.srv.Status().AppliedSeq != 1 {
			return errors.New("not yet")
		}
		return nil
	})
	// n2 takes over; the client, whose reply was lost, retries.
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3}
	ts.waitRole(t, bus.RoleLeader)
	msg, err := ts.nc.Request(ts.client.Subjects().Write(), []byte(`{"key":"a","value":"1","request_id":"client-7"}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r bus.WriteReply
	if err := bus.DecodeReply(msg.Data, &r); err != nil || !r.Duplicate || r.Revision != 1 || r.Epoch != 2 {
		t.Fatalf("retry after failover: %s (%v): want the first reply, marked duplicate", msg.Data, err)
	}
	if ts.srv.Status().AppliedSeq != 1 {
		t.Fatal("the retried write was applied again")
	}
	// The same ID for another write is refused.
	msg, err = ts.nc.Request(ts.client.Subjects().Write(), []byte(`{"key":"b","value":"2","request_id":"client-7"}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrBadRequest) {
		t.Fatalf("reused request ID for another key: %s, want bad_request", msg.Data)
	}
}

// TestAcksWaitForReplicas plays two replicas, n2 (which confirms) and n3
// (which does not), against a leader n1.
func TestAcksWaitForReplicas(t *testing.T) {
	ts := startTestServer(t, "n1")
	ts.srv.cfg.WriteTimeout = 500 * time.Millisecond
	ts.el.lease.Store(true)
	ts.el.members.Store([]string{"n1", "n2", "n3"})
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 4}
	ts.waitRole(t, bus.RoleLeader)

	// n2 confirms every put that asks for it.
	sub, err := ts.nc.Subscribe(ts.client.Subjects().Replication(), func(m *nats.Msg) {
		var u bus.Update
		if bus.Decode(m.Data, &u) == nil && u.Kind == bus.KindPut && u.Ack {
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
	write := func(body string) (bus.WriteReply, error) {
		msg, err := ts.nc.Request(ts.client.Subjects().Write(), []byte(body), 3*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r bus.WriteReply
		return r, bus.DecodeReply(msg.Data, &r)
	}

	r, err := write(`{"key":"a","value":"1","acks":"majority"}`)
	if err != nil || r.Acks != bus.AcksMajority || r.Confirmed < 2 || r.Members != 3 {
		t.Fatalf("majority write: %+v, %v; want 2 of 3 confirmed", r, err)
	}
	_, err = write(`{"key":"b","value":"2","acks":"all"}`)
	var be *bus.Error
	if !errors.As(err, &be) || be.Code != bus.CodeTimeout {
		t.Fatalf("all write with a silent replica = %v, want timeout", err)
	}
	t.Logf("acks=all with n3 silent: %v", err)

	// n3's session expires: it leaves the election, and stops holding writes.
	ts.el.members.Store([]string{"n1", "n2"})
	r, err = write(`{"key":"c","value":"3","acks":"all"}`)
	if err != nil || r.Confirmed != 2 || r.Members != 2 {
		t.Fatalf("all write after n3 left: %+v, %v", r, err)
	}
	// acks=leader replies without waiting and says nothing of confirmations.
	r, err = write(`{"key":"d","value":"4"}`)
	if err != nil || r.Acks != "" || r.Confirmed != 0 {
		t.Fatalf("leader write: %+v, %v", r, err)
	}
	if _, err := write(`{"key":"e","value":"5","acks":"some"}`); !errors.Is(err, bus.ErrBadRequest) {
		t.Fatalf("acks=some: %v, want bad_request", err)
	}
}

func TestReadConsistency(t *testing.T) {
	ts := startTestServer(t, "n2")
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	ts.publish(t, bus.Update{Kind: bus.KindEpoch, Epoch: 2, Seq: 0, Leader: "n1"})
	ts.publish(t, bus.Update{Kind: bus.KindPut, Epoch: 2, Seq: 1, Key: "a", Value: "1", Leader: "n1"})

	// min_revision: waits for the revision, then answers from the local copy.
	got := make(chan error, 1)
	go func() {
		r, err := ts.client.Read(ctxTimeout(t, 5*time.Second), "a", client.FromNode("n2"), client.WithMinRevision(2, 3*time.Second))
		if err == nil && (r.Value != "2" || r.Revision != 2) {
			err = fmt.Errorf("read %+v, want a=2 at revision 2", r)
		}
		got <- err
	}()
	ts.publish(t, bus.Update{Kind: bus.KindPut, Epoch: 2, Seq: 2, Key: "a", Value: "2", Leader: "n1"})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	// ...and answers stale when the revision does not come in time.
	msg, err := ts.nc.Request(ts.client.Subjects().NodeRead("n2"), []byte(`{"key":"a","consistency":"min_revision","min_revision":9,"wait_ms":50}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r bus.ReadReply
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrStale) {
		t.Fatalf("min_revision past the copy: %s, want stale", msg.Data)
	}
	// leader: a follower forwards; with no leader serving, no_leader.
	msg, err = ts.nc.Request(ts.client.Subjects().NodeRead("n2"), []byte(`{"key":"a","consistency":"leader"}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrNoLeader) {
		t.Fatalf("leader read with no leader: %s, want no_leader", msg.Data)
	}
	// Once n2 leads with a lease, it answers leader reads itself...
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3}
	ts.waitRole(t, bus.RoleLeader)
	r, err = ts.client.Read(ctxTimeout(t, 2*time.Second), "a", client.FromNode("n2"), client.WithLeaderRead())
	if err != nil || r.Value != "2" || r.Role != bus.RoleLeader || r.Epoch != 3 {
		t.Fatalf("leader read on the leader: %+v, %v", r, err)
	}
	// ...but not without its lease.
	ts.el.lease.Store(false)
	msg, err = ts.nc.Request(ts.client.Subjects().LeaderRead(), []byte(`{"key":"a","consistency":"leader"}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrNotLeader) {
		t.Fatalf("leader read without a lease: %s, want not_leader", msg.Data)
	}
	// Bad combinations are bad requests.
	for _, body := range []string{`{"key":"a","consistency":"eventual"}`, `{"key":"a","min_revision":3}`, `{"key":"a","consistency":"min_revision"}`, `{"key":"a","consistency":"min_revision","min_revision":1,"wait_ms":999999}`} {
		msg, err := ts.nc.Request(ts.client.Subjects().NodeRead("n2"), []byte(body), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrBadRequest) {
			t.Errorf("%s: %s, want bad_request", body, msg.Data)
		}
	}
}

func TestStaleServerRefusesToLeadWithCatchUp(t *testing.T) {
	ts := startTestServer(t, "n3", func(c *Config) { c.CatchUp = true })
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	ts.publish(t, bus.Update{Kind: bus.KindEpoch, Epoch: 2, Seq: 0, Leader: "n1"})
	ts.publish(t, bus.Update{Kind: bus.KindPut, Epoch: 2, Seq: 5, Key: "a", Value: "1", Leader: "n1"}) // 1..4 missed
	testenv.WaitFor(t, 5*time.Second, "the gap to show", func() error {
		if !ts.srv.Status().Stale {
			return errors.New("not stale yet")
		}
		return nil
	})
	// Every other server is gone; this stale copy wins the election.
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3}
	testenv.WaitFor(t, 10*time.Second, "a requeue", func() error {
		if ts.el.requeued.Load() == 0 {
			return errors.New("not requeued")
		}
		return nil
	})
	if st := ts.srv.Status(); st.Role == bus.RoleLeader {
		t.Fatalf("a stale copy leads: %+v", st)
	}
	if _, _, err := ts.srv.applyWrite(bus.WriteRequest{Key: "b", Value: "2"}); !errors.Is(err, bus.ErrNotLeader) {
		t.Fatalf("write on a stale elected copy = %v, want not_leader", err)
	}
}

func TestAdvertised(t *testing.T) {
	host, _ := os.Hostname()
	for _, tt := range []struct{ in, want string }{
		{"127.0.0.1:8001", "127.0.0.1:8001"},
		{"0.0.0.0:8001", net.JoinHostPort(host, "8001")},
		{"[::]:8001", net.JoinHostPort(host, "8001")},
		{":8001", net.JoinHostPort(host, "8001")},
		{"127.0.0.1:0", "127.0.0.1:0"},
	} {
		if got := advertised(tt.in); got != tt.want {
			t.Errorf("advertised(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// A copy that skipped updates through a gap must not answer a min_revision
// read past the gap: its revision moved, but it does not hold them.
func TestMinRevisionIsNotPromisedAcrossAGap(t *testing.T) {
	ts := startTestServer(t, "n2")
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	ts.publish(t, bus.Update{Kind: bus.KindEpoch, Epoch: 2, Seq: 0, Leader: "n1"})
	ts.publish(t, bus.Update{Kind: bus.KindPut, Epoch: 2, Seq: 4, Key: "b", Value: "4", Leader: "n1"}) // 1..3 missed
	testenv.WaitFor(t, 5*time.Second, "the gap", func() error {
		if ts.srv.Status().AppliedSeq != 4 {
			return errors.New("not yet")
		}
		return nil
	})
	msg, err := ts.nc.Request(ts.client.Subjects().NodeRead("n2"), []byte(`{"key":"a","consistency":"min_revision","min_revision":2,"wait_ms":50}`), 2*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var r bus.ReadReply
	if err := bus.DecodeReply(msg.Data, &r); !errors.Is(err, bus.ErrStale) {
		t.Fatalf("min_revision 2 on a copy that skipped 1..3: %s, want stale", msg.Data)
	}
}

// TestCatchUpServerIsReadyOnlyOnceCompared: a restarted --catch-up server
// that has not yet compared its copy with the leader's is not ready, even
// though it knows of no gap; a heartbeat at its revision makes it ready,
// one past it makes it stale.
func TestCatchUpServerIsReadyOnlyOnceCompared(t *testing.T) {
	ts := startTestServer(t, "n2", func(c *Config) { c.CatchUp = true })
	// A leader whose status nobody answers: the probe cannot compare.
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 2, Leader: election.LeaderData{ID: "n1", Epoch: 2}}
	ts.waitRole(t, bus.RoleFollower)
	if st := ts.srv.Status(); st.Ready || !strings.Contains(st.NotReady, "not yet compared") {
		t.Fatalf("ready before comparing with the leader: %+v", st)
	}
	ts.publish(t, bus.Update{Kind: bus.KindHeartbeat, Epoch: 2, Seq: 0, Leader: "n1"})
	testenv.WaitFor(t, 5*time.Second, "ready after a heartbeat at its revision", func() error {
		if st := ts.srv.Status(); !st.Ready {
			return errors.New(st.NotReady)
		}
		return nil
	})
	ts.publish(t, bus.Update{Kind: bus.KindHeartbeat, Epoch: 2, Seq: 3, Leader: "n1"})
	testenv.WaitFor(t, 5*time.Second, "stale after a heartbeat past its revision", func() error {
		if st := ts.srv.Status(); st.Ready || !st.Stale || st.Gaps != 3 {
			return fmt.Errorf("status %+v", st)
		}
		return nil
	})
}
