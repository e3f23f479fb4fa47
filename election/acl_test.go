package election

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/testenv"
)

// With digest auth, another client can read the election but can neither
// delete nor forge its znodes.
func TestACLProtectsElectionZnodes(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	e, err := New(Config{
		Servers:        []string{z.Addr()},
		SessionTimeout: 2 * time.Second,
		Path:           "/zkv/election",
		LeaderPath:     "/zkv/leader",
		ID:             "a",
		Auth:           "zkv:s3cret",
	})
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Elector: e, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- e.Run(ctx) }()
	defer func() { cancel(); <-r.done }()
	term := waitTerm(t, r, "to lead", isLeader)
	if err := e.Announce(ctx, LeaderData{ID: "a", Epoch: term.Epoch, Znode: term.Znode}); err != nil {
		t.Fatal(err)
	}

	for _, who := range []string{"", "mallory:guess"} {
		other, _, err := zk.Connect([]string{z.Addr()}, 2*time.Second, zk.WithLogInfo(false))
		if err != nil {
			t.Fatal(err)
		}
		if who != "" {
			if err := other.AddAuth("digest", []byte(who)); err != nil {
				t.Fatal(err)
			}
		}
		children, _, err := other.Children("/zkv/election")
		if err != nil || len(children) != 1 || children[0] != term.Znode {
			t.Fatalf("%q: reading the election: %v, %v", who, children, err)
		}
		if _, _, err := other.Get("/zkv/leader"); err != nil {
			t.Fatalf("%q: reading the leader znode: %v", who, err)
		}
		attempts := []struct {
			what string
			err  error
		}{
			{"delete the leader's election znode", other.Delete("/zkv/election/"+term.Znode, -1)},
			{"delete the leader znode", other.Delete("/zkv/leader", -1)},
			{"forge an election znode", func() error {
				_, err := other.Create("/zkv/election/server_", []byte(`{"id":"evil"}`), zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
				return err
			}()},
			{"rewrite the leader znode", func() error {
				_, err := other.Set("/zkv/leader", []byte(`{"id":"evil","epoch":999}`), -1)
				return err
			}()},
			{"read the cluster key", func() error {
				_, _, err := other.Get("/zkv/election-cluster")
				return err
			}()},
			{"replace the cluster record", other.Delete("/zkv/election-cluster", -1)},
		}
		for _, a := range attempts {
			if !errors.Is(a.err, zk.ErrNoAuth) {
				t.Errorf("%q could %s: err = %v, want zk.ErrNoAuth", who, a.what, a.err)
			}
		}
		other.Close()
	}
	if !e.LeaseValid() {
		t.Fatal("leader lost its lease during the attempts")
	}
}

func TestAuthNeedsProtectableLeaderParent(t *testing.T) {
	_, err := New(Config{Servers: []string{"127.0.0.1:2181"}, ID: "a", Auth: "zkv:pw"})
	if err == nil {
		t.Fatal("auth with leader path /leader accepted; anyone could delete it")
	}
	if _, err := New(Config{Servers: []string{"127.0.0.1:2181"}, ID: "a", Auth: "nopassword", LeaderPath: "/zkv/leader"}); err == nil {
		t.Fatal("auth without a password accepted")
	}
}
