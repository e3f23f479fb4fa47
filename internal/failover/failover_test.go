package failover

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/internal/testenv"
)

// connect opens a connection to url that reconnects forever, closed at
// cleanup.
func connect(t *testing.T, url string) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(url, nats.MaxReconnects(-1), nats.ReconnectWait(50*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// responder answers every request on subject over its own connection, as
// a server's per-node subject does.
func responder(t *testing.T, url, subject string) (*nats.Conn, *nats.Subscription) {
	t.Helper()
	nc := connect(t, url)
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) { _ = m.Respond(nil) })
	if err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	return nc, sub
}

func newDetector(t *testing.T, nc *nats.Conn, stable time.Duration) *Detector {
	t.Helper()
	d, err := New(nc, Config{Stable: stable, Logger: testenv.Logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func witnesses(s ...string) func() []string { return func() []string { return s } }

// watchFor runs Watch for at most d and returns its result.
func watchFor(t *testing.T, det *Detector, d time.Duration, target string, w func() []string) (Death, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), d)
	defer cancel()
	return det.Watch(ctx, target, w)
}

func TestDeadServerIsDeclared(t *testing.T) {
	n := testenv.StartNATS(t)
	leader, _ := responder(t, n.URL(), "kv.node.a.ping")
	responder(t, n.URL(), "kv.node.c.ping")
	det := newDetector(t, connect(t, n.URL()), 10*time.Millisecond)

	done := make(chan struct{})
	var death Death
	var err error
	go func() {
		defer close(done)
		death, err = watchFor(t, det, 30*time.Second, "kv.node.a.ping", witnesses("kv.node.b.ping", "kv.node.c.ping"))
	}()
	// Alive for a while: Watch must still be probing.
	select {
	case <-done:
		t.Fatalf("declared a live server dead: %+v %v", death, err)
	case <-time.After(300 * time.Millisecond):
	}
	leader.Close() // the process dies: its connection drops
	<-done
	if err != nil {
		t.Fatal(err)
	}
	if death.Witness != "kv.node.c.ping" || death.Probes < DefaultConfig().MinProbes {
		t.Fatalf("death %+v: want witness kv.node.c.ping and at least %d probes", death, DefaultConfig().MinProbes)
	}
}

// A paused server keeps its subscription: its probes time out, which is
// not a death.
func TestPausedServerIsNotDead(t *testing.T) {
	n := testenv.StartNATS(t)
	paused := connect(t, n.URL())
	if _, err := paused.Subscribe("kv.node.a.ping", func(*nats.Msg) {}); err != nil {
		t.Fatal(err)
	}
	if err := paused.Flush(); err != nil {
		t.Fatal(err)
	}
	responder(t, n.URL(), "kv.node.c.ping")
	det := newDetector(t, connect(t, n.URL()), 10*time.Millisecond)
	death, err := watchFor(t, det, 2*time.Second, "kv.node.a.ping", witnesses("kv.node.c.ping"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("paused server: death %+v, err %v; want probing until the deadline", death, err)
	}
}

// Without a witness answering, no run of "no responders" is a death: the
// prober may be the one cut off from the others.
func TestNoWitnessNoDeath(t *testing.T) {
	n := testenv.StartNATS(t)
	det := newDetector(t, connect(t, n.URL()), 10*time.Millisecond)
	death, err := watchFor(t, det, time.Second, "kv.node.a.ping", witnesses("kv.node.c.ping"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("no witness: death %+v, err %v; want probing until the deadline", death, err)
	}
	death, err = watchFor(t, det, 200*time.Millisecond, "kv.node.a.ping", nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("nil witnesses: death %+v, err %v", death, err)
	}
}

// A NATS server restart drops every subscription at once; the servers
// reconnect and subscribe again. That must not look like a death.
func TestNATSRestartIsNotADeath(t *testing.T) {
	n := testenv.StartNATS(t)
	responder(t, n.URL(), "kv.node.a.ping")
	responder(t, n.URL(), "kv.node.c.ping")
	det := newDetector(t, connect(t, n.URL()), 0) // the default Stable

	result := make(chan error, 1)
	go func() {
		death, err := watchFor(t, det, 4*time.Second, "kv.node.a.ping", witnesses("kv.node.c.ping"))
		if err == nil {
			err = errors.New("declared dead")
			t.Logf("death %+v", death)
		}
		result <- err
	}()
	<-time.After(1500 * time.Millisecond) // the prober's connection is stable by now
	if err := n.Restart(); err != nil {
		t.Fatal(err)
	}
	if err := <-result; !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("after a NATS restart: %v; want probing until the deadline", err)
	}
}

func TestConfigValidate(t *testing.T) {
	for _, c := range []Config{
		{Interval: -time.Millisecond},
		{Interval: 50 * time.Millisecond, Window: 10 * time.Millisecond},
		{MinProbes: -1},
	} {
		if _, err := New(&nats.Conn{}, c); err == nil {
			t.Errorf("config %+v accepted", c)
		}
	}
	if _, err := New(nil, Config{}); err == nil {
		t.Error("nil connection accepted")
	}
}
