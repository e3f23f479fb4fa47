package election

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/testenv"
)

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
