package client

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"
)

// runServer starts an embedded NATS server on a free local port and stops
// it when the test ends.
func runServer(t testing.TB) *server.Server {
	t.Helper()
	s, err := server.NewServer(&server.Options{Host: "127.0.0.1", Port: server.RANDOM_PORT, NoLog: true, NoSigs: true})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	s.Start()
	if !s.ReadyForConnections(10 * time.Second) {
		s.Shutdown()
		t.Fatal("nats server not ready")
	}
	t.Cleanup(func() {
		s.Shutdown()
		s.WaitForShutdown()
	})
	return s
}

// connect opens a connection to s, closed when the test ends.
func connect(t testing.TB, s *server.Server) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(s.ClientURL(), nats.NoReconnect())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// serve answers requests on subject with reply(n, body), n counting from 1;
// a nil answer sends no reply. It returns the number of requests seen.
func serve(t testing.TB, nc *nats.Conn, subject string, reply func(n int64, body []byte) []byte) *atomic.Int64 {
	t.Helper()
	var n atomic.Int64
	sub, err := nc.Subscribe(subject, func(m *nats.Msg) {
		if b := reply(n.Add(1), m.Data); b != nil {
			_ = m.Respond(b)
		}
	})
	if err != nil {
		t.Fatalf("subscribe %s: %v", subject, err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatalf("flush: %v", err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	return &n
}

// always answers every request with body.
func always(body []byte) func(int64, []byte) []byte {
	return func(int64, []byte) []byte { return body }
}

// withAttemptHook calls f after every request attempt, after the hooks
// given before it.
func withAttemptHook(f func(subject string, attempt int, err error)) Option {
	return func(o *options) error {
		prev := o.onAttempt
		o.onAttempt = func(subject string, attempt int, err error) {
			if prev != nil {
				prev(subject, attempt, err)
			}
			f(subject, attempt, err)
		}
		return nil
	}
}

// cancelAfter cancels the call's context once attempt n has finished.
func cancelAfter(n int, cancel context.CancelFunc) Option {
	return withAttemptHook(func(_ string, attempt int, _ error) {
		if attempt >= n {
			cancel()
		}
	})
}

// countAttempts counts the attempts into n.
func countAttempts(n *atomic.Int64) Option {
	return withAttemptHook(func(string, int, error) { n.Add(1) })
}

func newTestClient(t testing.TB, nc *nats.Conn, opts ...Option) *Client {
	t.Helper()
	opts = append([]Option{WithRetryBackoff(time.Millisecond, 5*time.Millisecond)}, opts...)
	c, err := New(nc, opts...)
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	return c
}

// testCtx is a context for one call that must not hang a broken test.
func testCtx(t testing.TB) (context.Context, context.CancelFunc) {
	return context.WithTimeout(t.Context(), 30*time.Second)
}

var (
	okWrite  = bus.Encode(bus.WriteReply{OK: true, Key: "a", Revision: 12, Epoch: 3, Leader: "n1"})
	okRead   = bus.Encode(bus.ReadReply{Found: true, Key: "a", Value: "1", Revision: 12, Node: "n2", Role: bus.RoleFollower, Epoch: 3})
	okList   = bus.Encode(bus.ListReply{Node: "n2", Role: bus.RoleFollower, Epoch: 3, Revision: 12, Entries: []bus.ListEntry{{Key: "a", Value: "1", Revision: 12}}})
	okStatus = bus.Encode(bus.Status{Node: "n2", Role: bus.RoleFollower, Epoch: 3, Leader: "n1", AppliedSeq: 12, Keys: 1})
)

// op is one client call under test, with the subject it uses and the
// success body a responder sends.
type op struct {
	name    string
	subject string
	ok      []byte
	write   bool // nobody answering means no leader
	call    func(ctx context.Context, c *Client) (any, error)
}

func ops() []op {
	s := bus.Subjects{}
	return []op{
		{"put", s.Write(), okWrite, true, func(ctx context.Context, c *Client) (any, error) { return c.Put(ctx, "a", "1") }},
		{"put via", s.NodeWrite("n2"), okWrite, false, func(ctx context.Context, c *Client) (any, error) { return c.Put(ctx, "a", "1", Via("n2")) }},
		{"get any", s.Read(), okRead, false, func(ctx context.Context, c *Client) (any, error) { return c.Read(ctx, "a") }},
		{"get node", s.NodeRead("n2"), okRead, false, func(ctx context.Context, c *Client) (any, error) { return c.Read(ctx, "a", FromNode("n2")) }},
		{"status", s.NodeStatus("n2"), okStatus, false, func(ctx context.Context, c *Client) (any, error) { return c.Status(ctx, "n2") }},
		{"list", s.NodeList("n2"), okList, false, func(ctx context.Context, c *Client) (any, error) { return c.List(ctx, "a", FromNode("n2")) }},
	}
}

func TestNew(t *testing.T) {
	nc := connect(t, runServer(t))
	tests := []struct {
		name       string
		nc         *nats.Conn
		opts       []Option
		wantPrefix string
		wantErr    bool
	}{
		{name: "defaults", nc: nc, wantPrefix: "kv"},
		{name: "all options", nc: nc, opts: []Option{WithPrefix("prod.zkv"), WithRequestTimeout(time.Second), WithRetryBackoff(time.Millisecond, time.Second)}, wantPrefix: "prod.zkv"},
		{name: "equal backoff bounds", nc: nc, opts: []Option{WithRetryBackoff(time.Second, time.Second)}, wantPrefix: "kv"},
		{name: "nil option skipped", nc: nc, opts: []Option{nil}, wantPrefix: "kv"},
		{name: "nil conn", nc: nil, wantErr: true},
		{name: "bad prefix", nc: nc, opts: []Option{WithPrefix("kv.*")}, wantErr: true},
		{name: "empty prefix", nc: nc, opts: []Option{WithPrefix("")}, wantErr: true},
		{name: "zero timeout", nc: nc, opts: []Option{WithRequestTimeout(0)}, wantErr: true},
		{name: "zero backoff", nc: nc, opts: []Option{WithRetryBackoff(0, time.Second)}, wantErr: true},
		{name: "max below initial", nc: nc, opts: []Option{WithRetryBackoff(time.Second, time.Millisecond)}, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := New(tt.nc, tt.opts...)
			if tt.wantErr {
				if !errors.Is(err, ErrInvalidOption) {
					t.Fatalf("NewClient = %v, want ErrInvalidOption", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			if got := c.Subjects().Prefix; got != tt.wantPrefix {
				t.Errorf("prefix %q, want %q", got, tt.wantPrefix)
			}
		})
	}
}

func TestClientSuccess(t *testing.T) {
	s := runServer(t)
	nc := connect(t, s)
	tests := []struct {
		op   op
		want any
	}{
		{ops()[0], bus.WriteReply{OK: true, Key: "a", Revision: 12, Epoch: 3, Leader: "n1"}},
		{ops()[1], bus.WriteReply{OK: true, Key: "a", Revision: 12, Epoch: 3, Leader: "n1"}},
		{ops()[2], bus.ReadReply{Found: true, Key: "a", Value: "1", Revision: 12, Node: "n2", Role: bus.RoleFollower, Epoch: 3}},
		{ops()[3], bus.ReadReply{Found: true, Key: "a", Value: "1", Revision: 12, Node: "n2", Role: bus.RoleFollower, Epoch: 3}},
		{ops()[4], bus.Status{Node: "n2", Role: bus.RoleFollower, Epoch: 3, Leader: "n1", AppliedSeq: 12, Keys: 1}},
		{ops()[5], bus.ListReply{Node: "n2", Role: bus.RoleFollower, Epoch: 3, Revision: 12, Entries: []bus.ListEntry{{Key: "a", Value: "1", Revision: 12}}}},
	}
	for _, tt := range tests {
		t.Run(tt.op.name, func(t *testing.T) {
			srv := connect(t, s)
			var gotBody atomic.Value
			serve(t, srv, tt.op.subject, func(_ int64, body []byte) []byte {
				gotBody.Store(string(body))
				return tt.op.ok
			})
			ctx, cancel := testCtx(t)
			defer cancel()
			got, err := tt.op.call(ctx, newTestClient(t, nc))
			if err != nil {
				t.Fatalf("call: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
			wantBody := map[string]string{
				"put": `{"key":"a","value":"1"}`, "put via": `{"key":"a","value":"1"}`,
				"get any": `{"key":"a"}`, "get node": `{"key":"a"}`, "status": ``, "list": `{"prefix":"a"}`,
			}[tt.op.name]
			b, _ := gotBody.Load().(string)
			if strings.HasPrefix(tt.op.name, "put") {
				// Writes carry a fresh request ID; check it, then compare the rest.
				var w bus.WriteRequest
				if err := bus.Decode([]byte(b), &w); err != nil || len(w.RequestID) != 32 {
					t.Fatalf("write body %q: request ID missing or malformed (%v)", b, err)
				}
				w.RequestID = ""
				b = string(bus.Encode(w))
			}
			if b != wantBody {
				t.Errorf("request body %q, want %q", b, wantBody)
			}
		})
	}
}

func TestClientGetNotFound(t *testing.T) {
	s := runServer(t)
	nc := connect(t, s)
	miss := bus.ReadReply{Key: "a", Node: "n2", Role: bus.RoleLeader, Epoch: 3}
	serve(t, connect(t, s), bus.Subjects{}.Read(), always(bus.Encode(miss)))
	ctx, cancel := testCtx(t)
	defer cancel()
	got, err := newTestClient(t, nc).Read(ctx, "a")
	if err != nil {
		t.Fatalf("Get of a missing key: %v", err)
	}
	if got != miss {
		t.Errorf("got %+v, want %+v", got, miss)
	}
}

func TestClientCustomPrefix(t *testing.T) {
	s := runServer(t)
	nc := connect(t, s)
	serve(t, connect(t, s), "prod.zkv.write", always(okWrite))
	ctx, cancel := testCtx(t)
	defer cancel()
	if _, err := newTestClient(t, nc, WithPrefix("prod.zkv")).Put(ctx, "a", "1"); err != nil {
		t.Fatalf("Put: %v", err)
	}
}

// TestClientRetriesUntilResponderAppears starts the responder only once the
// client's first attempt has failed with no responders.
func TestClientRetriesUntilResponderAppears(t *testing.T) {
	s := runServer(t)
	for _, o := range ops() {
		t.Run(o.name, func(t *testing.T) {
			nc := connect(t, s)
			failed := make(chan error, 1)
			hook := withAttemptHook(func(_ string, attempt int, err error) {
				if attempt == 1 {
					failed <- err
				}
			})
			ctx, cancel := testCtx(t)
			defer cancel()
			c := newTestClient(t, nc, hook)
			type result struct {
				v   any
				err error
			}
			done := make(chan result, 1)
			go func() {
				v, err := o.call(ctx, c)
				done <- result{v, err}
			}()
			if err := <-failed; !errors.Is(err, nats.ErrNoResponders) {
				t.Errorf("first attempt: %v, want no responders", err)
			}
			serve(t, connect(t, s), o.subject, always(o.ok))
			if r := <-done; r.err != nil {
				t.Fatalf("call after the responder appeared: %v", r.err)
			}
		})
	}
}

func TestClientRetriesRetryableReplies(t *testing.T) {
	s := runServer(t)
	tests := []struct {
		name  string
		first []byte // the reply to the first request; nil sends none
	}{
		{"not leader", bus.EncodeError(bus.Errorf(bus.CodeNotLeader, "n2 is a follower"))},
		{"no leader", bus.EncodeError(bus.Errorf(bus.CodeNoLeader, "election"))},
		{"unavailable", bus.EncodeError(bus.Errorf(bus.CodeUnavailable, "shutting down"))},
		{"lost reply", nil},
	}
	for _, tt := range tests {
		for _, o := range ops() {
			t.Run(tt.name+"/"+o.name, func(t *testing.T) {
				n := serve(t, connect(t, s), o.subject, func(n int64, _ []byte) []byte {
					if n == 1 {
						return tt.first
					}
					return o.ok
				})
				var attempts atomic.Int64
				timeout := DefaultRequestTimeout
				if tt.first == nil {
					timeout = 200 * time.Millisecond // the wait for the lost reply
				}
				c := newTestClient(t, connect(t, s), WithRequestTimeout(timeout), countAttempts(&attempts))
				ctx, cancel := testCtx(t)
				defer cancel()
				if _, err := o.call(ctx, c); err != nil {
					t.Fatalf("call: %v", err)
				}
				if got := attempts.Load(); got != 2 {
					t.Errorf("%d attempts, want 2", got)
				}
				if got := n.Load(); got != 2 {
					t.Errorf("%d requests, want 2", got)
				}
			})
		}
	}
}

// TestClientErrorCodes checks that every code reaches the caller, after
// retries (ended here by cancelling after the third attempt) for the
// retryable ones, and at once for the others.
func TestClientErrorCodes(t *testing.T) {
	s := runServer(t)
	retryable := map[bus.Code]bool{bus.CodeNotLeader: true, bus.CodeNoLeader: true, bus.CodeUnavailable: true, bus.CodeStale: true}
	for _, code := range bus.Codes() {
		for _, o := range ops() {
			t.Run(string(code)+"/"+o.name, func(t *testing.T) {
				n := serve(t, connect(t, s), o.subject, always(bus.EncodeError(bus.Errorf(code, "from the server"))))
				ctx, cancel := testCtx(t)
				defer cancel()
				c := newTestClient(t, connect(t, s), cancelAfter(3, cancel))
				_, err := o.call(ctx, c)
				if !errors.Is(err, code.Sentinel()) {
					t.Fatalf("error %v does not match %v", err, code.Sentinel())
				}
				var e *bus.Error
				if !errors.As(err, &e) || e.Code != code || e.Message != "from the server" {
					t.Errorf("error %v carries %+v, want code %q", err, e, code)
				}
				if got := bus.AsError(err).Code; got != code {
					t.Errorf("AsError code %q, want %q", got, code)
				}
				want := int64(1)
				if retryable[code] {
					want = 3
					if !errors.Is(err, context.Canceled) {
						t.Errorf("error %v does not say the context ended", err)
					}
				}
				if got := n.Load(); got != want {
					t.Errorf("%d requests, want %d", got, want)
				}
			})
		}
	}
}

func TestClientNobodyAnswers(t *testing.T) {
	s := runServer(t)
	for _, o := range ops() {
		t.Run(o.name, func(t *testing.T) {
			ctx, cancel := testCtx(t)
			defer cancel()
			var attempts atomic.Int64
			c := newTestClient(t, connect(t, s), countAttempts(&attempts), cancelAfter(2, cancel))
			_, err := o.call(ctx, c)
			want, notWant := bus.ErrUnavailable, bus.ErrNoLeader
			if o.write {
				want, notWant = bus.ErrNoLeader, bus.ErrUnavailable
			}
			if !errors.Is(err, want) || errors.Is(err, notWant) {
				t.Errorf("error %v: want %v, not %v", err, want, notWant)
			}
			if !errors.Is(err, nats.ErrNoResponders) {
				t.Errorf("error %v does not wrap nats.ErrNoResponders", err)
			}
			if !strings.Contains(err.Error(), o.subject) {
				t.Errorf("error %q does not name subject %s", err, o.subject)
			}
			if got := attempts.Load(); got != 2 {
				t.Errorf("%d attempts, want 2", got)
			}
		})
	}
}

func TestClientNobodyAnswersUntilDeadline(t *testing.T) {
	s := runServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := newTestClient(t, connect(t, s)).Put(ctx, "a", "1")
	if !errors.Is(err, bus.ErrNoLeader) || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v: want bus.ErrNoLeader and context.DeadlineExceeded", err)
	}
	if got := bus.AsError(err).Code; got != bus.CodeNoLeader {
		t.Errorf("code %q, want %q", got, bus.CodeNoLeader)
	}
}

func TestClientRequestTimeout(t *testing.T) {
	s := runServer(t)
	for _, o := range ops() {
		t.Run(o.name, func(t *testing.T) {
			n := serve(t, connect(t, s), o.subject, always(nil))
			ctx, cancel := testCtx(t)
			defer cancel()
			c := newTestClient(t, connect(t, s), WithRequestTimeout(20*time.Millisecond), cancelAfter(2, cancel))
			_, err := o.call(ctx, c)
			if !errors.Is(err, bus.ErrTimeout) || !errors.Is(err, nats.ErrTimeout) {
				t.Errorf("error %v: want bus.ErrTimeout and nats.ErrTimeout", err)
			}
			if got := n.Load(); got != 2 {
				t.Errorf("%d requests, want 2", got)
			}
		})
	}
}

func TestClientBadReplies(t *testing.T) {
	s := runServer(t)
	tests := []struct {
		name    string
		op      op
		reply   string
		wantErr error // a sentinel to match, or nil for any error
	}{
		{"write not ok", ops()[0], `{"ok":false,"key":"a"}`, bus.ErrInternal},
		{"garbage", ops()[0], `not json`, nil},
		{"empty", ops()[2], ``, nil},
		{"wrong shape", ops()[4], `{"node":7}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			n := serve(t, connect(t, s), tt.op.subject, always([]byte(tt.reply)))
			ctx, cancel := testCtx(t)
			defer cancel()
			_, err := tt.op.call(ctx, newTestClient(t, connect(t, s)))
			if err == nil || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
				t.Errorf("error %v, want %v", err, tt.wantErr)
			}
			if got := n.Load(); got != 1 {
				t.Errorf("%d requests, want 1 (no retry)", got)
			}
		})
	}
}

func TestClientValidatesLocally(t *testing.T) {
	s := runServer(t)
	tests := []struct {
		name string
		call func(ctx context.Context, c *Client) error
		want error
	}{
		{"put empty key", func(ctx context.Context, c *Client) error { _, err := c.Put(ctx, "", "1"); return err }, bus.ErrInvalidKey},
		{"put large value", func(ctx context.Context, c *Client) error {
			_, err := c.Put(ctx, "a", strings.Repeat("v", bus.MaxValueBytes+1))
			return err
		}, bus.ErrValueTooLarge},
		{"put via bad node", func(ctx context.Context, c *Client) error { _, err := c.Put(ctx, "a", "1", Via("n.*")); return err }, bus.ErrBadRequest},
		{"get control char", func(ctx context.Context, c *Client) error { _, err := c.Read(ctx, "a\n"); return err }, bus.ErrInvalidKey},
		{"get bad node", func(ctx context.Context, c *Client) error { _, err := c.Read(ctx, "a", FromNode(">")); return err }, bus.ErrBadRequest},
		{"status empty node", func(ctx context.Context, c *Client) error { _, err := c.Status(ctx, ""); return err }, bus.ErrBadRequest},
		{"watch bad key", func(ctx context.Context, c *Client) error { _, err := c.Watch(ctx, "\x00"); return err }, bus.ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var attempts atomic.Int64
			c := newTestClient(t, connect(t, s), countAttempts(&attempts))
			ctx, cancel := testCtx(t)
			defer cancel()
			if err := tt.call(ctx, c); !errors.Is(err, tt.want) {
				t.Errorf("error %v, want %v", err, tt.want)
			}
			if got := attempts.Load(); got != 0 {
				t.Errorf("%d requests sent for an invalid call", got)
			}
		})
	}
}

// addNode registers a NATS micro service as a zkv node does.
func addNode(t testing.TB, nc *nats.Conn, name string, metadata map[string]string) {
	t.Helper()
	svc, err := micro.AddService(nc, micro.Config{Name: name, Version: "1.0.0", Metadata: metadata})
	if err != nil {
		t.Fatalf("add service: %v", err)
	}
	t.Cleanup(func() { _ = svc.Stop() })
}

func TestClientNodes(t *testing.T) {
	s := runServer(t)
	srv := connect(t, s)
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n2"})
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n1", bus.MetadataPrefix: bus.DefaultPrefix})
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n1"})                              // the same node twice
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n9", bus.MetadataPrefix: "other"}) // another cluster
	addNode(t, srv, bus.NodeServiceName, nil)                                                                    // no node id
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "bad.id"})
	addNode(t, srv, bus.LeaderServiceName, map[string]string{bus.MetadataNode: "n7"}) // another service
	if err := srv.Flush(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := testCtx(t)
	defer cancel()
	got, err := newTestClient(t, connect(t, s)).Nodes(ctx)
	if err != nil {
		t.Fatalf("Nodes: %v", err)
	}
	if want := []string{"n1", "n2"}; !slices.Equal(got, want) {
		t.Errorf("Nodes = %v, want %v", got, want)
	}
}

func TestClientNodesNone(t *testing.T) {
	s := runServer(t)
	ctx, cancel := testCtx(t)
	defer cancel()
	_, err := newTestClient(t, connect(t, s)).Nodes(ctx)
	if !errors.Is(err, bus.ErrUnavailable) {
		t.Errorf("Nodes with no node = %v, want bus.ErrUnavailable", err)
	}
}

func TestClientNodesCancelled(t *testing.T) {
	s := runServer(t)
	// A ping subscriber that never answers: Nodes waits until ctx ends.
	serve(t, connect(t, s), "$SRV.PING."+bus.NodeServiceName, always(nil))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := newTestClient(t, connect(t, s)).Nodes(ctx)
	if !errors.Is(err, bus.ErrUnavailable) || !errors.Is(err, context.Canceled) {
		t.Errorf("Nodes = %v, want bus.ErrUnavailable and context.Canceled", err)
	}
}

func TestClientStatuses(t *testing.T) {
	s := runServer(t)
	srv := connect(t, s)
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n2"})
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n1"})
	addNode(t, srv, bus.NodeServiceName, map[string]string{bus.MetadataNode: "n3"})
	// n1 names the election's members: n4, which answers no ping and no
	// status (crashed), n5, which answers only its status, and an
	// invalid ID.
	n1 := bus.Status{Node: "n1", Role: bus.RoleLeader, Epoch: 3, Leader: "n1", AppliedSeq: 12, Keys: 4, ZooKeeper: "connected", NATS: "connected",
		Members: []string{"bad.id", "n1", "n2", "n3", "n4", "n5"}}
	n3 := bus.Status{Node: "n3", Role: bus.RoleFollower, Epoch: 3, Leader: "n1", AppliedSeq: 11, Keys: 4, Stale: true}
	n5 := bus.Status{Node: "n5", Role: bus.RoleFollower, Epoch: 3, Leader: "n1", AppliedSeq: 12, Keys: 4}
	serve(t, srv, bus.Subjects{}.NodeStatus("n1"), always(bus.Encode(n1)))
	serve(t, srv, bus.Subjects{}.NodeStatus("n3"), always(bus.Encode(n3)))
	serve(t, srv, bus.Subjects{}.NodeStatus("n5"), always(bus.Encode(n5)))
	// n2 is registered but does not answer status requests.
	ctx, cancel := testCtx(t)
	defer cancel()
	got, err := newTestClient(t, connect(t, s), WithRequestTimeout(200*time.Millisecond)).Statuses(ctx)
	if err != nil {
		t.Fatalf("Statuses: %v", err)
	}
	want := []bus.Status{n1, {Node: "n2", Role: RoleUnreachable}, n3, {Node: "n4", Role: RoleUnreachable}, n5}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Statuses =\n%+v\nwant\n%+v", got, want)
	}
}

// publish sends the bodies on the replication subject and flushes.
func publish(t testing.TB, nc *nats.Conn, bodies ...[]byte) {
	t.Helper()
	for _, b := range bodies {
		if err := nc.Publish(bus.Subjects{}.Replication(), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
}

// TestClientConcurrent runs many calls at once, for the race detector.
func TestClientConcurrent(t *testing.T) {
	s := runServer(t)
	serve(t, connect(t, s), bus.Subjects{}.Write(), always(okWrite))
	serve(t, connect(t, s), bus.Subjects{}.Read(), always(okRead))
	c := newTestClient(t, connect(t, s))
	ctx, cancel := testCtx(t)
	defer cancel()
	var wg sync.WaitGroup
	errs := make(chan error, 40)
	for i := range 20 {
		wg.Go(func() {
			_, err := c.Put(ctx, fmt.Sprint("k", i), "v")
			errs <- err
		})
		wg.Go(func() {
			_, err := c.Read(ctx, "a")
			errs <- err
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
}

// TestClientConditionalWrites checks what Delete, Create and
// WithIfRevision send, and that a conflict's revision reaches the caller.
func TestClientConditionalWrites(t *testing.T) {
	s := runServer(t)
	bodies := make(chan bus.WriteRequest, 8)
	serve(t, connect(t, s), "kv.write", func(_ int64, body []byte) []byte {
		var w bus.WriteRequest
		if err := bus.Decode(body, &w); err != nil {
			return bus.EncodeError(err)
		}
		bodies <- w
		if w.IfRevision != nil && *w.IfRevision == 1 {
			return bus.EncodeError(bus.ConditionFailed(bus.CodeConflict, w.Key, 7, "key %q is at revision 7", w.Key))
		}
		return okWrite
	})
	c := newTestClient(t, connect(t, s))
	ctx, cancel := testCtx(t)
	defer cancel()
	tests := []struct {
		name string
		call func() (bus.WriteReply, error)
		want bus.WriteRequest
	}{
		{"delete", func() (bus.WriteReply, error) { return c.Delete(ctx, "a") }, bus.WriteRequest{Op: bus.OpDelete, Key: "a"}},
		{"create", func() (bus.WriteReply, error) { return c.Create(ctx, "a", "") }, bus.WriteRequest{Op: bus.OpCreate, Key: "a"}},
		{"cas put", func() (bus.WriteReply, error) { return c.Put(ctx, "a", "v", WithIfRevision(0)) }, bus.WriteRequest{Key: "a", Value: "v", IfRevision: new(uint64)}},
		{"cas delete", func() (bus.WriteReply, error) { return c.Delete(ctx, "a", WithIfRevision(0)) }, bus.WriteRequest{Op: bus.OpDelete, Key: "a", IfRevision: new(uint64)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := tt.call(); err != nil {
				t.Fatal(err)
			}
			got := <-bodies
			if got.RequestID == "" {
				t.Error("no request ID")
			}
			got.RequestID = ""
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("sent %+v, want %+v", got, tt.want)
			}
		})
	}
	_, err := c.Put(ctx, "a", "v", WithIfRevision(1))
	var e *bus.Error
	if !errors.Is(err, bus.ErrConflict) || !errors.As(err, &e) {
		t.Fatalf("stale CAS = %v, want conflict", err)
	}
	if rev, ok := e.CurrentRevision(); !ok || rev != 7 {
		t.Errorf("conflict carries revision %d, %v, want 7", rev, ok)
	}
	if _, err := c.Create(ctx, "a", "v", WithIfRevision(1)); !errors.Is(err, bus.ErrBadRequest) {
		t.Errorf("create with if_revision = %v, want bad_request", err)
	}
}
