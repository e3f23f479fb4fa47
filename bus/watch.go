package bus

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
)

// WithRevision reads the key as it was at revision rev, from the node's
// history. A node that no longer holds rev answers an error matching
// ErrCompacted (one past its revision ErrFuture, and ErrStale if its copy
// missed updates).
func WithRevision(rev uint64) GetOption { return func(r *ReadRequest) { r.Revision = rev } }

// WithTTL gives a Put or Create a time to live, rounded down to whole
// milliseconds: the leader deletes the key once it passes, unless it was
// written again meanwhile.
func WithTTL(d time.Duration) PutOption {
	return func(w *WriteRequest) { w.TTLMS = int64(d / time.Millisecond) }
}

// DeletePrefix removes every key that begins with prefix at one revision,
// retrying like Put. WriteReply.Count says how many keys it removed.
func (c *Client) DeletePrefix(ctx context.Context, prefix string, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Op: OpDelete, Key: prefix, Prefix: true}, opts)
}

// Purge removes key and its history, retrying like Put.
func (c *Client) Purge(ctx context.Context, key string, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Op: OpPurge, Key: key}, opts)
}

// Compact drops every server's history below revision rev, retrying like
// Put.
func (c *Client) Compact(ctx context.Context, rev uint64, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Op: OpCompact, Revision: rev}, opts)
}

// CompactAge drops every server's history older than age, retrying like
// Put.
func (c *Client) CompactAge(ctx context.Context, age time.Duration, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Op: OpCompact, AgeMS: max(int64(age/time.Millisecond), 1)}, opts)
}

// History asks node (the first Nodes finds if "") for key's versions in
// its copy, oldest first, at most limit of the newest (0: all held).
func (c *Client) History(ctx context.Context, node, key string, limit int) (HistoryReply, error) {
	req := HistoryRequest{Key: key, Limit: limit}
	if err := req.Validate(); err != nil {
		return HistoryReply{}, err
	}
	node, err := c.pickNode(ctx, node)
	if err != nil {
		return HistoryReply{}, err
	}
	var reply HistoryReply
	err = c.request(ctx, opRead, c.subjects.NodeHistory(node), Encode(req), func(data []byte) error {
		reply = HistoryReply{}
		return DecodeReply(data, &reply)
	})
	return reply, err
}

// Changes asks node (the first Nodes finds if "") for one page of its
// recent updates after req.After, retrying like Get. A start older than
// the node holds fails with an error matching ErrCompacted.
func (c *Client) Changes(ctx context.Context, node string, req ChangesRequest) (ChangesReply, error) {
	if err := req.Validate(); err != nil {
		return ChangesReply{}, err
	}
	node, err := c.pickNode(ctx, node)
	if err != nil {
		return ChangesReply{}, err
	}
	var reply ChangesReply
	err = c.request(ctx, opRead, c.subjects.NodeChanges(node), Encode(req), func(data []byte) error {
		reply = ChangesReply{}
		return DecodeReply(data, &reply)
	})
	return reply, err
}

// pickNode returns node, or the first node Nodes finds if it is "".
func (c *Client) pickNode(ctx context.Context, node string) (string, error) {
	if node == "" {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return "", err
		}
		node = nodes[0]
	}
	return node, validNode(node)
}

// WatchOptions says what a Watcher follows.
type WatchOptions struct {
	// Prefix limits the updates to keys that begin with it ("" for all;
	// a key itself watches that key and the keys it is a prefix of).
	Prefix string
	// From, if not 0, starts at revision From: the node replays the
	// updates it holds from there, then the watch goes on live. 0 starts
	// with the next update (updates only).
	From uint64
	// Node is the server that replays and fills gaps ("" for the first
	// Nodes finds).
	Node string
}

// Watcher follows the updates of a cluster in revision order, each once:
// puts, deletes (Prefix set for a delete by prefix, Expired for an
// expiry) and purges. It replays from a node what it holds, then follows
// the replication subject; when it sees a revision skipped there (a lost
// message, or a slow consumer), it fetches the missing updates from the
// node, so the stream has no gap and no duplicate.
type Watcher struct {
	out  chan Update
	stop context.CancelFunc
	done chan struct{}
	err  error
}

// Updates is the stream. It is closed when the watch ends: ctx done,
// Stop, or an error (Err says which).
func (w *Watcher) Updates() <-chan Update { return w.out }

// Err is why the stream ended, once Updates is closed: nil after Stop or
// ctx's end, an error matching ErrCompacted if the start (or a gap to
// fill) is no longer held by the node, or the node's failure.
func (w *Watcher) Err() error {
	<-w.done
	return w.err
}

// Stop ends the watch and waits for it.
func (w *Watcher) Stop() {
	w.stop()
	<-w.done
}

// watchQueue bounds the live updates a Watcher holds before it processes
// them; past it they are dropped and fetched again from the node.
const watchQueue = 4096

// WatchFrom starts a Watcher. It returns once the live subscription is
// registered with the server, so nothing written after it returns is
// missed.
func (c *Client) WatchFrom(ctx context.Context, o WatchOptions) (*Watcher, error) {
	if err := ValidatePrefix(o.Prefix); err != nil {
		return nil, err
	}
	if o.From > MaxSeq {
		return nil, Errorf(CodeBadRequest, "from %d past %d", o.From, uint64(MaxSeq))
	}
	node, err := c.pickNode(ctx, o.Node)
	if err != nil {
		return nil, err
	}
	live := make(chan Update, watchQueue)
	var mu sync.Mutex
	closed := false
	sub, err := c.nc.Subscribe(c.subjects.Replication(), func(m *nats.Msg) {
		var u Update
		if !decodeStreamUpdate(m.Data, &u) {
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if closed {
			return
		}
		select {
		case live <- u:
		default: // dropped: the gap is filled from the node
			c.dropped.Add(1)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("watch: %w", err)
	}
	fctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		_ = sub.Unsubscribe()
		return nil, fmt.Errorf("watch: flush: %w", err)
	}
	wctx, stop := context.WithCancel(ctx)
	w := &Watcher{out: make(chan Update, c.opts.watchBuffer), stop: stop, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer close(w.out)
		defer func() {
			_ = sub.Unsubscribe()
			mu.Lock()
			closed = true
			mu.Unlock()
		}()
		ws := &watchState{c: c, node: node, prefix: o.Prefix, out: w.out}
		if err := ws.run(wctx, o.From, live); wctx.Err() == nil {
			w.err = err // not stopped: failed
		}
	}()
	return w, nil
}

// watchState is one Watcher's position: every update up to last was
// delivered (or did not match).
type watchState struct {
	c      *Client
	node   string
	prefix string
	out    chan<- Update
	last   uint64
	known  bool // last is set
}

func (ws *watchState) run(ctx context.Context, from uint64, live <-chan Update) error {
	if from > 0 {
		ws.last, ws.known = from-1, true
		if err := ws.fill(ctx, 0); err != nil {
			return err
		}
	}
	for {
		var u Update
		select {
		case <-ctx.Done():
			return ctx.Err()
		case u = <-live:
		}
		if err := ws.take(ctx, u); err != nil {
			return err
		}
	}
}

// take handles one live update.
func (ws *watchState) take(ctx context.Context, u Update) error {
	if !ws.known {
		ws.last, ws.known = u.Seq, true
		if u.Kind == KindEpoch || u.Kind == KindHeartbeat {
			return nil
		}
		ws.last = u.Seq - 1
	}
	switch u.Kind {
	case KindEpoch, KindHeartbeat:
		// The stream is at u.Seq: anything after last up to it that was
		// not seen was lost on the way, or never existed (revisions a new
		// leader skipped).
		if u.Seq > ws.last {
			return ws.fill(ctx, u.Seq)
		}
		return nil
	}
	if u.Seq <= ws.last {
		return nil // replayed already
	}
	if u.Seq > ws.last+1 {
		if err := ws.fill(ctx, u.Seq-1); err != nil {
			return err
		}
		if u.Seq <= ws.last {
			return nil
		}
	}
	ws.last = u.Seq
	if u.Kind == KindCompact || !touchesPrefix(u, ws.prefix) {
		return nil
	}
	u.Ack = false
	return ws.deliver(ctx, u)
}

// fill fetches from the node the updates after last, through at least
// through (0: whatever it holds now), and delivers the matching ones.
func (ws *watchState) fill(ctx context.Context, through uint64) error {
	for {
		page, err := ws.c.Changes(ctx, ws.node, ChangesRequest{After: ws.last, Prefix: ws.prefix, Limit: MaxChangesPage, WaitMS: 1000})
		if err != nil {
			return fmt.Errorf("watch: replay from node %s after revision %d: %w", ws.node, ws.last, err)
		}
		for _, u := range page.Updates {
			if u.Seq <= ws.last {
				continue
			}
			if err := ws.deliver(ctx, u); err != nil {
				return err
			}
			ws.last = u.Seq
		}
		ws.last = max(ws.last, page.Next)
		if !page.More && ws.last >= through {
			return nil
		}
	}
}

func (ws *watchState) deliver(ctx context.Context, u Update) error {
	select {
	case ws.out <- u:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// touchesPrefix reports whether u changes a key that begins with prefix.
func touchesPrefix(u Update, prefix string) bool {
	if u.Prefix {
		return strings.HasPrefix(u.Key, prefix) || strings.HasPrefix(prefix, u.Key)
	}
	return strings.HasPrefix(u.Key, prefix)
}

// decodeStreamUpdate decodes an update of the replication subject for a
// client: like a reply, it ignores fields this client does not know (a
// newer server's), checks the kinds it knows and passes on a kind it does
// not. Servers decode the same messages strictly.
func decodeStreamUpdate(data []byte, u *Update) bool {
	if DecodeReply(data, u) != nil {
		return false
	}
	switch u.Kind {
	case KindPut, KindDelete, KindPurge, KindCompact, KindEpoch, KindHeartbeat:
		return u.Validate() == nil
	}
	// A kind a newer server added: passed on if it names its place.
	return u.Kind != "" && u.Epoch != 0 && u.Epoch <= MaxSeq && u.Seq <= MaxSeq
}
