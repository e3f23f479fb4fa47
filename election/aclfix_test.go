package election

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// connectZK opens a plain client, with digest credentials if auth is set.
func connectZK(t *testing.T, addr, auth string) *zk.Conn {
	t.Helper()
	c, _, err := zk.Connect([]string{addr}, 2*time.Second, zk.WithLogInfo(false))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	if auth != "" {
		if err := c.AddAuth("digest", []byte(auth)); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

func authConfig(addr string, logs io.Writer, t *testing.T) Config {
	return Config{
		Servers:        []string{addr},
		SessionTimeout: 2 * time.Second,
		Path:           "/zkv/election",
		LeaderPath:     "/zkv/leader",
		ID:             "a",
		Auth:           "zkv:s3cret",
		Logger:         slog.New(slog.NewTextHandler(io.MultiWriter(testWriter{t}, logs), nil)),
	}
}

// An election path created earlier with an open ACL is given zkv's ACL when
// the Elector starts with auth, with a warning, after which a client
// without the password can no longer create or delete there.
func TestAuthFixesOpenACL(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	open := connectZK(t, z.Addr(), "")
	for _, p := range []string{"/zkv", "/zkv/election"} {
		if _, err := open.Create(p, nil, 0, zk.WorldACL(zk.PermAll)); err != nil {
			t.Fatal(err)
		}
	}
	var logs harness.SyncBuffer
	cfg := authConfig(z.Addr(), &logs, t)
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	r := &running{Elector: e, done: make(chan error, 1)}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { r.done <- e.Run(ctx) }()
	defer func() {
		cancel()
		if err := <-r.done; err != nil {
			t.Errorf("Run: %v", err)
		}
	}()
	term := waitTerm(t, r, "to lead", isLeader)
	if err := e.Announce(ctx, LeaderData{ID: "a", Epoch: term.Epoch, Znode: term.Znode}); err != nil {
		t.Fatal(err)
	}

	for _, p := range []string{"/zkv/election", "/zkv"} {
		acl, _, err := open.GetACL(p)
		if err != nil {
			t.Fatal(err)
		}
		// ZooKeeper hides digest hashes from other users: compare users and
		// rights.
		if got, want := formatACL(acl), formatACL(cfg.acl()); got != want {
			t.Errorf("ACL of %s is %s, want %s", p, got, want)
		}
		if !strings.Contains(logs.String(), "fixed an open ACL") || !strings.Contains(logs.String(), "path="+p) {
			t.Errorf("no warning about fixing %s in the log", p)
		}
	}
	attempts := []struct {
		what string
		err  error
	}{
		{"delete the leader's election znode", open.Delete("/zkv/election/"+term.Znode, -1)},
		{"delete the leader znode", open.Delete("/zkv/leader", -1)},
		{"forge an election znode", func() error {
			_, err := open.Create("/zkv/election/server_", nil, zk.FlagEphemeral|zk.FlagSequence, zk.WorldACL(zk.PermAll))
			return err
		}()},
		{"create beside the leader znode", func() error {
			_, err := open.Create("/zkv/other", nil, 0, zk.WorldACL(zk.PermAll))
			return err
		}()},
		{"open the ACL again", func() error {
			_, err := open.SetACL("/zkv/election", zk.WorldACL(zk.PermAll), -1)
			return err
		}()},
	}
	for _, a := range attempts {
		if !errors.Is(a.err, zk.ErrNoAuth) {
			t.Errorf("a client without the password could %s: err = %v, want zk.ErrNoAuth", a.what, a.err)
		}
	}
}

// An open ACL this client may not change (another user holds ADMIN) makes
// Run fail with ErrOpenACL instead of running unprotected.
func TestAuthRefusesOpenACLItCannotFix(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	other := connectZK(t, z.Addr(), "other:pw")
	acl := append(zk.DigestACL(zk.PermAll, "other", "pw"), zk.WorldACL(zk.PermAll&^zk.PermAdmin)...)
	for _, p := range []string{"/zkv", "/zkv/election"} {
		if _, err := other.Create(p, nil, 0, acl); err != nil {
			t.Fatal(err)
		}
	}
	var logs harness.SyncBuffer
	e, err := New(authConfig(z.Addr(), &logs, t))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	err = e.Run(ctx)
	if !errors.Is(err, ErrOpenACL) {
		t.Fatalf("Run = %v, want ErrOpenACL", err)
	}
	t.Logf("Run: %v", err)
	if !strings.Contains(err.Error(), "/zkv/election") {
		t.Errorf("Run = %v, want the message to name the path", err)
	}
	if children, _, err := other.Children("/zkv/election"); err != nil || len(children) != 0 {
		t.Errorf("the election has children %v (%v); want the refusing server not registered", children, err)
	}
}
