package client

import (
	"context"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// WriteOption changes one write.
type WriteOption func(*writeCall)

type writeCall struct {
	req  bus.WriteRequest
	node string
}

// WithAcks holds the write to level (bus.AcksLeader, bus.AcksMajority or
// bus.AcksAll) instead of the servers' default (kvserver --acks).
func WithAcks(level string) WriteOption { return func(w *writeCall) { w.req.Acks = level } }

// WithIfRevision makes a Put or Delete conditional: the key's revision
// must be rev (0: the key must not exist), or the error matches
// ErrConflict and carries the key's revision (CurrentRevision).
func WithIfRevision(rev uint64) WriteOption {
	return func(w *writeCall) { w.req.IfRevision = &rev }
}

// WithTTL gives a Put or Create a time to live, rounded up to whole
// milliseconds: the leader deletes the key once it passes, unless it was
// written again meanwhile. A d of 0 or less is refused (ErrBadRequest).
func WithTTL(d time.Duration) WriteOption {
	return func(w *writeCall) {
		w.req.TTLMS = int64((d + time.Millisecond - 1) / time.Millisecond)
		if d <= 0 {
			w.req.TTLMS = -1 // refused by Validate
		}
	}
}

// Via sends the write to node, which forwards it to the leader, instead
// of to the leader's subject directly. When node does not answer, the
// error matches ErrUnavailable rather than ErrNoLeader.
func Via(node string) WriteOption { return func(w *writeCall) { w.node = node } }

// Put writes value under key and returns the leader's reply: the revision
// the write created and the epoch it was taken in.
//
// Each attempt is one request, bounded by the request timeout and ctx. Put
// retries with backoff, until ctx is done, when no leader answers, a request
// times out, or the reply is not_leader, no_leader or unavailable; any
// other error (a bad request, a failed condition, a timeout waiting for
// replicas) is returned at once. When ctx ends, the last error is returned
// wrapped; if nobody answered, it matches ErrNoLeader.
//
// Every call sends a fresh random request ID, so a retry after a lost reply
// is applied once: the leader, or a new leader after a failover, answers it
// with the first reply (Duplicate set).
func (c *Client) Put(ctx context.Context, key, value string, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Key: key, Value: value}, opts...)
}

// Create writes value under key only if the key does not exist; otherwise
// the error matches ErrExists and carries the key's revision. A retry of a
// create that was applied gets its first reply, not ErrExists.
func (c *Client) Create(ctx context.Context, key, value string, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Op: bus.OpCreate, Key: key, Value: value}, opts...)
}

// Update writes value under key only if the key is at revision rev (a
// compare-and-set); otherwise the error matches ErrConflict and carries the
// key's revision.
func (c *Client) Update(ctx context.Context, key, value string, rev uint64, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Put(ctx, key, value, append(opts, WithIfRevision(rev))...)
}

// Delete removes key with a tombstone at a new revision. Deleting a key
// that does not exist succeeds with Deleted false and takes no revision.
func (c *Client) Delete(ctx context.Context, key string, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Op: bus.OpDelete, Key: key}, opts...)
}

// DeletePrefix removes every key that begins with prefix, at one revision;
// Count says how many.
func (c *Client) DeletePrefix(ctx context.Context, prefix string, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Op: bus.OpDelete, Key: prefix, Prefix: true}, opts...)
}

// Purge removes key and its history.
func (c *Client) Purge(ctx context.Context, key string, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Op: bus.OpPurge, Key: key}, opts...)
}

// Compact drops every server's history below revision rev.
func (c *Client) Compact(ctx context.Context, rev uint64, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Op: bus.OpCompact, Revision: rev}, opts...)
}

// CompactAge drops every server's history older than age.
func (c *Client) CompactAge(ctx context.Context, age time.Duration, opts ...WriteOption) (bus.WriteReply, error) {
	return c.Write(ctx, bus.WriteRequest{Op: bus.OpCompact, AgeMS: max(int64(age/time.Millisecond), 1)}, opts...)
}

// Write sends req as it is (its request ID replaced by a fresh one), with
// the retries of Put: the general form of the calls above.
func (c *Client) Write(ctx context.Context, req bus.WriteRequest, opts ...WriteOption) (bus.WriteReply, error) {
	w := writeCall{req: req}
	w.req.RequestID = bus.NewRequestID()
	for _, o := range opts {
		o(&w)
	}
	if err := w.req.Validate(); err != nil {
		return bus.WriteReply{}, err
	}
	kind, subject := opWrite, c.subjects.Write()
	if w.node != "" {
		if err := validNode(w.node); err != nil {
			return bus.WriteReply{}, err
		}
		kind, subject = opRead, c.subjects.NodeWrite(w.node)
	}
	var reply bus.WriteReply
	err := c.request(ctx, kind, subject, bus.Encode(w.req), func(data []byte) error {
		reply = bus.WriteReply{}
		if err := bus.DecodeReply(data, &reply); err != nil {
			return err
		}
		if !reply.OK {
			return bus.Errorf(bus.CodeInternal, "write reply on %s is not ok: %s", subject, bus.Truncate(data, 80))
		}
		return nil
	})
	if err != nil {
		return bus.WriteReply{}, err
	}
	return reply, nil
}
