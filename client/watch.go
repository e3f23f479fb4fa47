package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// watchWait is how long one of a Watcher's requests waits at the node for
// the next update. It also bounds how long a watch waits on a node that
// died with its request (then the request timeout more): an idle watcher
// asks once per watchWait.
const watchWait = 2 * time.Second

// Watcher follows the updates of a cluster in revision order, each once:
// puts, deletes (Prefix set for a delete by prefix, Expired for an expiry)
// and purges, as one node's copy applied them. It asks the node for the
// updates after the last one it delivered, waiting at the node for the
// next (a long poll on bus.Subjects.NodeChanges), so the stream has no
// gap and no duplicate, across leader failovers too. It never reads the
// replication subject itself: what it delivers is what a server verified
// and applied, not what any NATS client published there. (On a NATS
// without permissions another client could still answer a node's
// requests in its place; see the project's security notes.) A stream that
// a crashed leader's successor rewrote (revisions it reused) ends with an
// error matching ErrCompacted rather than skipping updates.
type Watcher struct {
	out  chan bus.Update
	stop context.CancelFunc
	done chan struct{}
	err  error
	last uint64
}

// Updates is the stream. It is closed when the watch ends: ctx done, Stop,
// or an error (Err says which).
func (w *Watcher) Updates() <-chan bus.Update { return w.out }

// Err is why the stream ended, once Updates is closed: nil after Stop or
// the end of ctx; an error matching ErrCompacted if the start is no longer
// held by any node tried; or the last node's failure.
func (w *Watcher) Err() error {
	<-w.done
	return w.err
}

// Last is the revision through which the watch has followed the stream,
// once Updates is closed: Watch with FromRevision(Last()+1) resumes it.
func (w *Watcher) Last() uint64 {
	<-w.done
	return w.last
}

// Stop ends the watch and waits for it.
func (w *Watcher) Stop() {
	w.stop()
	<-w.done
}

// Watch follows the updates of the keys that begin with prefix ("" for
// every key; a delete by prefix counts when its prefix and this one
// overlap). With FromRevision it starts there, replaying what the node
// holds; without, it starts after the node's revision now. With FromNode
// it follows that node only; without, it follows the first node Nodes
// finds, and moves to the next one, from the same revision, if that node
// stops answering or no longer holds the revisions to go on.
//
// Watch returns once the start is fixed and a node answered for it:
// nothing applied after it returns is missed, and a start that no node
// holds fails here with an error matching ErrCompacted.
func (c *Client) Watch(ctx context.Context, prefix string, opts ...ReadOption) (*Watcher, error) {
	if err := bus.ValidatePrefix(prefix); err != nil {
		return nil, err
	}
	r := readOptions(opts)
	if r.from > bus.MaxSeq {
		return nil, bus.Errorf(bus.CodeBadRequest, "from %d past %d", r.from, uint64(bus.MaxSeq))
	}
	nodes := []string{r.node}
	if r.node == "" {
		var err error
		if nodes, err = c.Nodes(ctx); err != nil {
			return nil, err
		}
	}
	for _, n := range nodes {
		if err := validNode(n); err != nil {
			return nil, err
		}
	}
	ws := &watchState{c: c, nodes: nodes, prefix: prefix}
	if r.from > 0 {
		ws.last = r.from - 1
	} else {
		st, err := c.Status(ctx, nodes[0])
		if err != nil {
			return nil, fmt.Errorf("watch: the revision of node %s: %w", nodes[0], err)
		}
		ws.last = st.AppliedSeq
	}
	// The start is checked before Watch returns: a start no node holds is
	// an error here, not a stream that ends at once.
	first, err := ws.start(ctx)
	if err != nil {
		return nil, err
	}
	wctx, stop := context.WithCancel(ctx)
	w := &Watcher{out: make(chan bus.Update, c.opts.watchBuffer), stop: stop, done: make(chan struct{})}
	ws.out = w.out
	go func() {
		defer close(w.done)
		defer close(w.out)
		err := ws.deliver(wctx, first)
		if err == nil {
			err = ws.run(wctx)
		}
		if wctx.Err() == nil {
			w.err = err // not stopped: failed
		}
		w.last = ws.last
	}()
	return w, nil
}

// watchState is one Watcher's position: every update up to last was
// delivered (or did not match), from nodes[at].
type watchState struct {
	c      *Client
	nodes  []string
	at     int
	prefix string
	out    chan<- bus.Update
	last   uint64
	// epoch wrote revision last in the stream followed (0: not known),
	// so a node that holds last from another epoch says so.
	epoch uint64
}

// start asks the nodes in turn, without waiting, for the first page after
// the start, until one answers.
func (ws *watchState) start(ctx context.Context) (bus.ChangesReply, error) {
	var last error
	for range ws.nodes {
		page, err := ws.page(ctx, ws.nodes[ws.at], 0)
		if err == nil {
			return page, nil
		}
		last = fmt.Errorf("watch: node %s after revision %d: %w", ws.nodes[ws.at], ws.last, err)
		if ctx.Err() != nil || !errors.Is(err, ErrCompacted) && !retryable(err) {
			break
		}
		ws.at = (ws.at + 1) % len(ws.nodes)
	}
	return bus.ChangesReply{}, last
}

func (ws *watchState) run(ctx context.Context) error {
	failed := 0 // nodes that failed in a row
	for {
		node := ws.nodes[ws.at]
		page, err := ws.page(ctx, node, watchWait)
		switch {
		case ctx.Err() != nil:
			return ctx.Err()
		case err != nil:
			failed++
			if failed >= 3*len(ws.nodes) || !errors.Is(err, ErrCompacted) && !retryable(err) {
				return fmt.Errorf("watch: node %s after revision %d: %w", node, ws.last, err)
			}
			ws.at = (ws.at + 1) % len(ws.nodes)
			if failed%len(ws.nodes) == 0 {
				// Every node failed once: pause before the next round.
				select {
				case <-time.After(ws.c.opts.retryMax):
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			continue
		}
		failed = 0
		if err := ws.deliver(ctx, page); err != nil {
			return err
		}
	}
}

// deliver hands the page's updates after last to the consumer and moves
// last to the page's end.
func (ws *watchState) deliver(ctx context.Context, page bus.ChangesReply) error {
	for _, u := range page.Updates {
		if u.Seq <= ws.last {
			continue
		}
		u.Ack = false
		select {
		case ws.out <- u:
		case <-ctx.Done():
			return ctx.Err()
		}
		ws.last, ws.epoch = u.Seq, u.Epoch
	}
	if page.Next > ws.last {
		ws.last, ws.epoch = page.Next, page.NextEpoch
	}
	return nil
}

// page asks node, once, for the updates after last, waiting there up to
// wait for one. A node that does not answer (no responders, a timeout)
// fails at once, so the watch moves on without waiting out retries.
func (ws *watchState) page(ctx context.Context, node string, wait time.Duration) (bus.ChangesReply, error) {
	req := bus.ChangesRequest{After: ws.last, AfterEpoch: ws.epoch, Prefix: ws.prefix, Limit: bus.MaxChangesPage, WaitMS: int(wait / time.Millisecond)}
	var page bus.ChangesReply
	err := ws.c.attempt(ctx, ws.c.subjects.NodeChanges(node), bus.Encode(req), wait, func(data []byte) error {
		page = bus.ChangesReply{}
		if err := bus.DecodeReply(data, &page); err != nil {
			return err
		}
		// A reply can only move the watch to what its node holds; one
		// claiming more (not from a node) would make it skip updates.
		if page.Next > max(req.After, page.Revision) || page.Next > bus.MaxSeq {
			return bus.Errorf(bus.CodeInternal, "changes reply from %s: next %d past its revision %d", node, page.Next, page.Revision)
		}
		for _, u := range page.Updates {
			if u.Seq <= req.After || u.Seq > page.Next {
				return bus.Errorf(bus.CodeInternal, "changes reply from %s: update %d outside (%d, %d]", node, u.Seq, req.After, page.Next)
			}
		}
		return nil
	})
	return page, err
}
