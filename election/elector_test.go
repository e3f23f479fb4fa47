package election

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"syscall"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/testenv"
)

// testLogger sends an elector's logs to t.Log.
type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(string(p))
	return len(p), nil
}

// running is an Elector whose Run is going.
type running struct {
	*Elector
	done chan error
}

func startElector(t *testing.T, addr, id string, session time.Duration) *running {
	t.Helper()
	e, err := New(Config{
		Servers:        []string{addr},
		SessionTimeout: session,
		ID:             id,
		Logger:         slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", id),
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Elector: e, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- e.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("%s: Run: %v", id, err)
			}
		case <-time.After(10 * time.Second):
			t.Errorf("%s: Run did not return after cancel", id)
		}
	})
	return r
}

// waitTerm polls e's current Term until ok accepts it.
func waitTerm(t *testing.T, e *running, what string, ok func(Term) bool) Term {
	t.Helper()
	var last Term
	testenv.WaitFor(t, 15*time.Second, e.cfg.ID+" "+what, func() error {
		last = e.Current()
		if !ok(last) {
			return fmt.Errorf("term %+v", last)
		}
		return nil
	})
	return last
}

func isLeader(t Term) bool { return t.Role == RoleLeader }

func seq(name string) int64 {
	n, _ := ParseSeq(name)
	return n
}
func isFollower(t Term) bool { return t.Role == RoleFollower }

func TestElectionOrderResignAndLease(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	a := startElector(t, z.Addr(), "a", 2*time.Second)
	ta := waitTerm(t, a, "to lead", isLeader)
	b := startElector(t, z.Addr(), "b", 2*time.Second)
	c := startElector(t, z.Addr(), "c", 2*time.Second)
	if err := a.Announce(context.Background(), LeaderData{ID: "a", Epoch: ta.Epoch, Znode: ta.Znode}); err != nil {
		t.Fatal(err)
	}
	tb := waitTerm(t, b, "to follow a", func(t Term) bool { return isFollower(t) && t.Leader.ID == "a" })
	tc := waitTerm(t, c, "to follow a", func(t Term) bool { return isFollower(t) && t.Leader.ID == "a" })
	// b and c registered concurrently: call the next in line b.
	if seq(tc.Znode) < seq(tb.Znode) {
		b, c = c, b
	}
	testenv.WaitFor(t, 10*time.Second, "a's lease", func() error {
		if !a.LeaseValid() {
			return errors.New("lease not valid")
		}
		return nil
	})
	if b.LeaseValid() || c.LeaseValid() {
		t.Fatal("a follower has a valid lease")
	}

	// A clean resign hands over to the next in line (b), not c.
	if err := a.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	tb = waitTerm(t, b, "to lead after a resigned", isLeader)
	if tb.Epoch <= ta.Epoch {
		t.Fatalf("b leads epoch %d, not above a's %d", tb.Epoch, ta.Epoch)
	}
	if got := c.Current(); got.Role == RoleLeader {
		t.Fatalf("c leads too: %+v", got)
	}
	if err := b.Announce(context.Background(), LeaderData{ID: b.cfg.ID, Epoch: tb.Epoch, Znode: tb.Znode}); err != nil {
		t.Fatal(err)
	}
	waitTerm(t, c, "to see b lead", func(t Term) bool { return t.Leader.ID == b.cfg.ID && t.Epoch == tb.Epoch })

	// ZooKeeper stops answering (SIGSTOP): the leader's lease lapses without
	// any session event, within half the session timeout and a margin.
	if err := syscall.Kill(z.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	resumed := false
	defer func() {
		if !resumed {
			syscall.Kill(z.PID(), syscall.SIGCONT)
		}
	}()
	testenv.WaitFor(t, 5*time.Second, "b's lease to lapse", func() error {
		if b.LeaseValid() {
			return errors.New("lease still valid")
		}
		return nil
	})
	// Past the session timeout, ZooKeeper expires the sessions when it
	// resumes: the servers register again and someone leads.
	<-time.After(3 * time.Second) // the fault lasts past the 2s session timeout
	syscall.Kill(z.PID(), syscall.SIGCONT)
	resumed = true
	testenv.WaitFor(t, 20*time.Second, "a leader with a valid lease after the pause", func() error {
		for _, e := range []*running{b, c} {
			if e.LeaseValid() {
				return nil
			}
		}
		return fmt.Errorf("b %+v, c %+v", b.Current(), c.Current())
	})
	for _, e := range []*running{b, c} {
		if tm := e.Current(); tm.Znode == tb.Znode && e == b {
			// b may keep its znode only if its session survived.
			t.Logf("b kept %s", tm.Znode)
		}
	}
}

func TestLostCreateReplyIsFoundByToken(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	e := startElector(t, z.Addr(), "a", 2*time.Second)
	first := waitTerm(t, e, "to lead", isLeader)

	// Simulate a create whose reply was lost: our znode exists (made on our
	// session, with our token) but we do not know its name.
	e.mu.Lock()
	conn := e.conn
	e.mu.Unlock()
	data, _ := json.Marshal(NodeData{ID: "a", Token: e.token})
	created, err := conn.Create("/election/"+Prefix, data, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
	if err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	e.znode, e.znodeSession, e.lostCreate = "", 0, true
	e.mu.Unlock()
	if err := e.ensureRegistered(conn); err != nil {
		t.Fatal(err)
	}
	e.mu.Lock()
	got := e.znode
	e.mu.Unlock()
	// Two znodes of ours on one session: the first is kept, the other
	// deleted, and no third one is created.
	if got != first.Znode {
		t.Fatalf("adopted %q, want the first of ours, %q", got, first.Znode)
	}
	children, _, err := conn.Children("/election")
	if err != nil {
		t.Fatal(err)
	}
	if len(children) != 1 || children[0] != first.Znode {
		t.Fatalf("children %v: want only %s (the duplicate %s deleted)", children, first.Znode, created)
	}
}

func TestAnnounceReplacesStaleLeaderAndDetectsNewer(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	e := startElector(t, z.Addr(), "a", 2*time.Second)
	term := waitTerm(t, e, "to lead", isLeader)

	other, _, err := zk.Connect([]string{z.Addr()}, 2*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	stale, _ := json.Marshal(LeaderData{ID: "old", Epoch: term.Epoch - 1})
	if _, err := other.Create("/leader", stale, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if err := e.Announce(context.Background(), LeaderData{ID: "a", Epoch: term.Epoch}); err != nil {
		t.Fatalf("announce over a stale leader znode: %v", err)
	}
	b, _, err := other.Get("/leader")
	if err != nil {
		t.Fatal(err)
	}
	if d, _ := decodeLeader(b); d.ID != "a" || d.Epoch != term.Epoch {
		t.Fatalf("leader znode %s after announce", b)
	}

	// Someone with a higher epoch: we are deposed.
	if err := other.Delete("/leader", -1); err != nil {
		t.Fatal(err)
	}
	newer, _ := json.Marshal(LeaderData{ID: "new", Epoch: term.Epoch + 5})
	if _, err := other.Create("/leader", newer, zk.FlagEphemeral, zk.WorldACL(zk.PermAll)); err != nil {
		t.Fatal(err)
	}
	if err := e.Announce(context.Background(), LeaderData{ID: "a", Epoch: term.Epoch}); !errors.Is(err, ErrDeposed) {
		t.Fatalf("announce under a newer leader znode = %v, want ErrDeposed", err)
	}
	// Announce for an epoch that is not ours is refused.
	if err := e.Announce(context.Background(), LeaderData{ID: "a", Epoch: term.Epoch + 1}); !errors.Is(err, ErrNotLeader) {
		t.Fatalf("announce of a wrong epoch = %v, want ErrNotLeader", err)
	}
}

func TestMembersFollowTheElection(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	a := startElector(t, z.Addr(), "a", 2*time.Second)
	b := startElector(t, z.Addr(), "b", 2*time.Second)
	want := func(e *running, ids ...string) {
		t.Helper()
		testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("members %v", ids), func() error {
			if got := e.Members(); fmt.Sprint(got) != fmt.Sprint(ids) {
				return fmt.Errorf("members %v", got)
			}
			return nil
		})
	}
	want(a, "a", "b")
	want(b, "a", "b")
	if err := b.Resign(context.Background()); err != nil {
		t.Fatal(err)
	}
	want(a, "a")
}

// TestLeaseAloneStopsALeader holds back the session events (a test hook),
// so the Elector never hears that its session is in trouble; the lease
// alone must stop it from acknowledging once ZooKeeper stops answering.
func TestLeaseAloneStopsALeader(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	a := startElector(t, z.Addr(), "a", 2*time.Second)
	waitTerm(t, a, "to lead", isLeader)
	testenv.WaitFor(t, 10*time.Second, "a's lease", func() error {
		if !a.LeaseValid() {
			return errors.New("lease not valid")
		}
		return nil
	})
	a.mu.Lock()
	a.holdEvents = true
	a.mu.Unlock()
	if err := syscall.Kill(z.PID(), syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	defer syscall.Kill(z.PID(), syscall.SIGCONT)
	stopped := time.Now()
	testenv.WaitFor(t, 5*time.Second, "the lease to lapse", func() error {
		if a.LeaseValid() {
			return errors.New("lease still valid")
		}
		return nil
	})
	t.Logf("lease lapsed %s after ZooKeeper stopped (session timeout 2s)", time.Since(stopped).Round(time.Millisecond))
	if got := a.Current(); got.Role != RoleLeader {
		t.Fatalf("term %+v: a session event got through; the test proves nothing", got)
	}
}

// A live leader deposed by the next in line (a false positive of the
// failover detector) loses its lease, re-registers at the back, and the
// next in line leads a higher epoch; a server further back is refused.
func TestDeposeByNextInLine(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	a := startElector(t, z.Addr(), "a", 4*time.Second)
	ta := waitTerm(t, a, "to lead", isLeader)
	b := startElector(t, z.Addr(), "b", 4*time.Second)
	waitTerm(t, b, "to register", func(t Term) bool { return t.Watching != "" })
	c := startElector(t, z.Addr(), "c", 4*time.Second)
	if err := a.Announce(context.Background(), LeaderData{ID: "a", Epoch: ta.Epoch, Znode: ta.Znode}); err != nil {
		t.Fatal(err)
	}
	tb := waitTerm(t, b, "to follow a, next in line", func(t Term) bool {
		return isFollower(t) && t.Leader.ID == "a" && t.Watching == ta.Znode
	})
	tc := waitTerm(t, c, "to follow a, watching b", func(t Term) bool {
		return isFollower(t) && t.Leader.ID == "a" && t.Watching == tb.Znode
	})
	testenv.WaitFor(t, 10*time.Second, "a's lease", func() error {
		if !a.LeaseValid() {
			return errors.New("lease not valid")
		}
		return nil
	})

	ctx := context.Background()
	if err := c.Depose(ctx, ta.Znode); !errors.Is(err, ErrNotNext) {
		t.Fatalf("c deposed a: %v, want ErrNotNext", err)
	}
	if err := b.Depose(ctx, tb.Znode); !errors.Is(err, ErrNotNext) {
		t.Fatalf("b deposed itself: %v, want ErrNotNext", err)
	}
	if err := b.Depose(ctx, ta.Znode); err != nil {
		t.Fatal(err)
	}
	tb = waitTerm(t, b, "to lead after deposing a", isLeader)
	if tb.Epoch <= ta.Epoch {
		t.Fatalf("b leads epoch %d, not above a's %d", tb.Epoch, ta.Epoch)
	}
	if a.LeaseValid() {
		// The watch may not have fired yet; the lease must end anyway.
		testenv.WaitFor(t, 10*time.Second, "a's lease to end", func() error {
			if a.LeaseValid() {
				return errors.New("a's lease is still valid")
			}
			return nil
		})
	}
	got := waitTerm(t, a, "to register again at the back", func(t Term) bool {
		return t.Znode != "" && t.Znode != ta.Znode && t.Role != RoleLeader
	})
	if seq(got.Znode) <= seq(tc.Znode) {
		t.Fatalf("a registered %s, not behind c's %s", got.Znode, tc.Znode)
	}
	a.mu.Lock()
	conn := a.conn
	a.mu.Unlock()
	if d, _, err := conn.Get(a.cfg.LeaderPath); err == nil {
		if ld, _ := decodeLeader(d); ld.Znode == ta.Znode {
			t.Fatalf("the leader znode still names the deposed %s", ta.Znode)
		}
	}
	testenv.WaitFor(t, 10*time.Second, "one lease, b's", func() error {
		if !b.LeaseValid() || a.LeaseValid() || c.LeaseValid() {
			return fmt.Errorf("leases a=%v b=%v c=%v", a.LeaseValid(), b.LeaseValid(), c.LeaseValid())
		}
		return nil
	})
}
