package node

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// In embedded mode the server runs its own NATS server: clients with the
// listener's credentials reach it, others are refused, and once Run
// returns the listener is gone.
func TestEmbeddedNATSLifecycle(t *testing.T) {
	port, err := harness.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	listen := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	url := "nats://" + listen
	el := newFakeElector()
	cfg := DefaultConfig()
	cfg.ID, cfg.ZooKeeper, cfg.NATSURL = "n1", []string{"127.0.0.1:1"}, "nats://127.0.0.1:1"
	cfg.NATSListen = listen
	cfg.NATSAuth = bus.Auth{User: "zkv", Password: "secret"}
	cfg.NATSOptions = []nats.Option{nats.UserInfo("zkv", "secret")}
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	cfg.newElector = func(election.Config) (Elector, error) { return el, nil }
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(context.Background()) }()

	var nc *nats.Conn
	testenv.WaitFor(t, 10*time.Second, "the embedded listener", func() error {
		var err error
		nc, err = nats.Connect(url, nats.UserInfo("zkv", "secret"))
		return err
	})
	defer nc.Close()
	kv, err := client.New(nc, client.WithRequestTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	el.lease.Store(true)
	el.terms <- election.Term{Role: election.RoleLeader, Epoch: 1}
	testenv.WaitFor(t, 5*time.Second, "leader", func() error {
		if st := srv.Status(); st.Role != bus.RoleLeader || st.NATS != "connected" {
			return errors.New(st.Role + " " + st.NATS)
		}
		return nil
	})
	if r, err := kv.Put(ctxTimeout(t, 5*time.Second), "a", "1"); err != nil || !r.OK {
		t.Fatalf("put through the embedded listener: %+v, %v", r, err)
	}
	if bad, err := nats.Connect(url, nats.UserInfo("zkv", "wrong")); err == nil {
		bad.Close()
		t.Fatal("the listener took a wrong password")
	}

	if err := srv.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := <-done; err != nil {
		t.Fatalf("Run: %v", err)
	}
	if c, err := net.DialTimeout("tcp", listen, time.Second); err == nil {
		c.Close()
		t.Fatalf("%s still accepts connections after Run returned", listen)
	}
}

// A listener that cannot bind fails Run with the reason, and leaves
// nothing running.
func TestEmbeddedNATSBusyPort(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	cfg := DefaultConfig()
	cfg.ID, cfg.ZooKeeper = "n1", []string{"127.0.0.1:1"}
	cfg.NATSListen = l.Addr().String()
	cfg.Logger = slog.New(slog.NewTextHandler(testWriter{t}, nil))
	cfg.newElector = func(election.Config) (Elector, error) { return newFakeElector(), nil }
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "embedded NATS") {
		t.Fatalf("Run on a busy NATS port = %v, want an embedded NATS error", err)
	}
}
