package node

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"

	"github.com/zkvstore/zkv/bus"
)

// errStopping is what a write still queued for replication gets when the
// server stops before publishing it.
var errStopping = errors.New("the server is stopping")

// outgoing is one entry of the replication queue: an update to publish
// (or none, a barrier), and what to do once it, and everything queued
// before it, was handed to NATS or could not be.
type outgoing struct {
	update  bus.Update
	encoded []byte // update, encoded; nil for a barrier
	done    func(error)
}

// replicator is the leader's write pipeline past the store. The handler of
// the write subject decodes and applies writes in revision order (under
// writeMu) and queues each update here; one goroutine, replicateLoop,
// publishes the queue in that order, several contiguous updates in one
// batch message while writes arrive faster than it publishes, and then
// answers the writers. So the next write is applied while the last one is
// being published and answered, and under load one message carries many
// updates to the replicas.
type replicator struct {
	mu     sync.Mutex
	queue  []outgoing
	bytes  int        // encoded bytes in queue
	room   *sync.Cond // signalled when the queue is taken or closed
	closed bool
	kick   chan struct{} // 1-buffered: the queue is not empty

	stop     chan struct{} // closed by stopReplication
	stopOnce sync.Once
	started  atomic.Bool
	stopped  chan struct{} // closed when replicateLoop returns

	messages atomic.Uint64 // replication messages published
	updates  atomic.Uint64 // updates they carried
}

// maxQueueBytes bounds the encoded updates waiting to be published: past
// it the write path waits (it holds writeMu, so no write is applied
// meanwhile) until the publisher takes the queue. A NATS connection that
// stalls thus slows writes down instead of growing the leader's memory.
const maxQueueBytes = 16 * bus.MaxBatchBytes

func newReplicator() *replicator {
	r := &replicator{kick: make(chan struct{}, 1), stop: make(chan struct{}), stopped: make(chan struct{})}
	r.room = sync.NewCond(&r.mu)
	return r
}

// enqueue adds o to the queue, first waiting while the queue is full.
// After close it calls o.done(errStopping) at once instead.
func (r *replicator) enqueue(o outgoing) {
	r.mu.Lock()
	for !r.closed && r.bytes > maxQueueBytes {
		r.room.Wait()
	}
	if r.closed {
		r.mu.Unlock()
		if o.done != nil {
			o.done(errStopping)
		}
		return
	}
	r.queue = append(r.queue, o)
	r.bytes += len(o.encoded)
	r.mu.Unlock()
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// take removes and returns the whole queue.
func (r *replicator) take() []outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	q := r.queue
	r.queue, r.bytes = nil, 0
	r.room.Broadcast()
	return q
}

// close refuses later entries and returns the ones not yet taken.
func (r *replicator) close() []outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	q := r.queue
	r.queue, r.bytes = nil, 0
	r.room.Broadcast()
	return q
}

// replicateLoop publishes the replication queue until stopReplication;
// then it publishes what is still queued (the connection is still up) and
// refuses anything later.
func (s *Server) replicateLoop() {
	s.repl.started.Store(true)
	defer close(s.repl.stopped)
	for {
		select {
		case <-s.repl.stop:
			for q := s.repl.take(); len(q) > 0; q = s.repl.take() {
				s.publishQueue(q)
			}
			s.publishQueue(s.repl.close())
			return
		case <-s.repl.kick:
		}
		for q := s.repl.take(); len(q) > 0; q = s.repl.take() {
			s.publishQueue(q)
		}
	}
}

// stopReplication ends replicateLoop once it has published what the
// leader queued, and waits for it (at most until ctx ends). Shutdown calls
// it after stepping down, so no write is applied after the queue closes
// and none that was applied is left unpublished.
func (s *Server) stopReplication(ctx context.Context) {
	s.repl.stopOnce.Do(func() { close(s.repl.stop) })
	if !s.repl.started.Load() {
		s.repl.close()
		return
	}
	select {
	case <-s.repl.stopped:
	case <-ctx.Done():
		s.log.Warn("replication queue not drained before the shutdown timeout")
	}
}

// publishQueue publishes q in order: runs of data updates of one epoch as
// batches within the bounds, epoch markers and heartbeats alone. Each
// entry's done runs after the message that holds it was handed to NATS.
func (s *Server) publishQueue(q []outgoing) {
	// A NATS server configured with a smaller max_payload than the
	// default still takes every batch (room left for the headers).
	limit := bus.MaxBatchBytes
	if mp := int(s.nc.MaxPayload()) - 4096; mp > 0 && mp < limit {
		limit = mp
	}
	for len(q) > 0 {
		n, body := nextMessage(q, limit)
		var err error
		if body != nil {
			if err = s.publish(s.subj.Replication(), body); err == nil {
				s.repl.messages.Add(1)
				s.repl.updates.Add(uint64(countUpdates(q[:n])))
			}
		}
		for _, o := range q[:n] {
			if o.done != nil {
				o.done(err)
			}
		}
		q = q[n:]
	}
}

// nextMessage returns how many entries at the head of q the next message
// covers, and its body (nil when they are all barriers). A batch holds at
// most maxBytes of encoded updates.
func nextMessage(q []outgoing, maxBytes int) (int, []byte) {
	if q[0].encoded == nil {
		n := 1
		for n < len(q) && q[n].encoded == nil {
			n++
		}
		return n, nil
	}
	first := q[0].update
	if !batchable(first) {
		return 1, q[0].encoded
	}
	parts := [][]byte{q[0].encoded}
	size, last, n := len(q[0].encoded), first.Seq, 1
	for ; n < len(q) && len(parts) < bus.MaxBatchUpdates; n++ {
		o := q[n]
		if o.encoded == nil {
			continue // a barrier rides along
		}
		u := o.update
		if !batchable(u) || u.Epoch != first.Epoch || u.Leader != first.Leader || u.Seq != last+1 || size+len(o.encoded) > maxBytes {
			break
		}
		parts = append(parts, o.encoded)
		size += len(o.encoded)
		last = u.Seq
	}
	if len(parts) == 1 {
		return n, q[0].encoded
	}
	return n, bus.EncodeBatch(first.Epoch, first.Leader, parts)
}

// batchable reports whether u may travel in a batch.
func batchable(u bus.Update) bool {
	return u.Kind != bus.KindEpoch && u.Kind != bus.KindHeartbeat
}

// replicate queues u for publishing after every update queued before it;
// done runs once it was handed to NATS (nil) or could not be.
func (s *Server) replicate(u bus.Update, done func(error)) {
	s.repl.enqueue(outgoing{update: u, encoded: bus.Encode(u), done: done})
}

// afterQueued runs done once everything queued so far was published (or
// could not be): a reply that must not overtake an update, such as a
// retried write's answer, waits this way.
func (s *Server) afterQueued(done func(error)) {
	s.repl.enqueue(outgoing{done: done})
}

// replicateSync publishes u after everything queued before it and waits
// for the outcome.
func (s *Server) replicateSync(u bus.Update) error {
	ch := make(chan error, 1)
	s.replicate(u, func(err error) { ch <- err })
	return <-ch
}

// countUpdates is how many entries of q carry an update.
func countUpdates(q []outgoing) int {
	n := 0
	for _, o := range q {
		if o.encoded != nil {
			n++
		}
	}
	return n
}
