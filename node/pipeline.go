package node

import (
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
	closed bool
	kick   chan struct{} // 1-buffered: the queue is not empty

	messages atomic.Uint64 // replication messages published
	updates  atomic.Uint64 // updates they carried
}

func newReplicator() *replicator { return &replicator{kick: make(chan struct{}, 1)} }

// enqueue adds o to the queue. After close it calls o.done(errStopping)
// at once instead.
func (r *replicator) enqueue(o outgoing) {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		if o.done != nil {
			o.done(errStopping)
		}
		return
	}
	r.queue = append(r.queue, o)
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
	r.queue = nil
	return q
}

// close refuses later entries and returns the ones not yet taken.
func (r *replicator) close() []outgoing {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	q := r.queue
	r.queue = nil
	return q
}

// replicateLoop publishes the replication queue until the server stops;
// then it fails what is left.
func (s *Server) replicateLoop() {
	for {
		select {
		case <-s.runCtx.Done():
			for _, o := range s.repl.close() {
				if o.done != nil {
					o.done(errStopping)
				}
			}
			return
		case <-s.repl.kick:
		}
		for q := s.repl.take(); len(q) > 0; q = s.repl.take() {
			s.publishQueue(q)
		}
	}
}

// publishQueue publishes q in order: runs of data updates of one epoch as
// batches within the bounds, epoch markers and heartbeats alone. Each
// entry's done runs after the message that holds it was handed to NATS.
func (s *Server) publishQueue(q []outgoing) {
	for len(q) > 0 {
		n, body := nextMessage(q)
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
// covers, and its body (nil when they are all barriers).
func nextMessage(q []outgoing) (int, []byte) {
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
		if !batchable(u) || u.Epoch != first.Epoch || u.Leader != first.Leader || u.Seq != last+1 || size+len(o.encoded) > bus.MaxBatchBytes {
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
