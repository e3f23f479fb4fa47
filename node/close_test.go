package node

import (
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
)

// Close stops a running server once, whoever calls it and however often:
// concurrent and repeated calls all wait for the same stop and return
// the same result, and Run returns as it does when its ctx ends.
func TestCloseIsIdempotent(t *testing.T) {
	ts := startTestServer(t, "n1")
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 1}
	ts.waitRole(t, bus.RoleLeader)

	const callers = 4
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = ts.srv.Close()
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("Close call %d: %v", i, err)
		}
	}
	select {
	case err := <-ts.done:
		ts.done <- err // for the cleanup of startTestServer
		if err != nil {
			t.Fatalf("Run after Close: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Run did not return after Close")
	}
	if err := ts.srv.Close(); err != nil {
		t.Errorf("Close after Run returned: %v", err)
	}
	if !ts.el.resigned.Load() {
		t.Error("Close did not resign")
	}
}

// Close before Run releases what New holds, and Run then refuses.
func TestCloseBeforeRun(t *testing.T) {
	cfg := DefaultConfig()
	cfg.ID, cfg.ZooKeeper, cfg.NATSURL = "n1", []string{"127.0.0.1:1"}, "nats://127.0.0.1:1"
	cfg.HTTPAddr = "127.0.0.1:0"
	cfg.newElector = func(election.Config) (Elector, error) { return newFakeElector(), nil }
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	addr := srv.HTTPAddr()
	for i := 0; i < 2; i++ {
		if err := srv.Close(); err != nil {
			t.Fatalf("Close %d before Run: %v", i, err)
		}
	}
	if err := srv.Run(t.Context()); !errors.Is(err, ErrClosed) {
		t.Fatalf("Run after Close = %v, want ErrClosed", err)
	}
	// The listener New bound is free again.
	cfg.HTTPAddr = addr
	again, err := New(cfg)
	if err != nil {
		t.Fatalf("bind %s again after Close: %v", addr, err)
	}
	if err := again.Close(); err != nil {
		t.Fatal(err)
	}
}
