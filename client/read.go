package client

import (
	"context"
	"fmt"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// Entry is a node's answer to a read: the key's value and revision, and
// which node answered from which copy (Node, Role, Epoch; Stale when that
// copy knows it missed updates).
type Entry = bus.ReadReply

// ReadOption changes one read: Get, History, Changes, List, ListAll or
// Watch. Each option says which calls it applies to; the others ignore it.
type ReadOption func(*readCall)

type readCall struct {
	node  string
	req   bus.ReadRequest
	limit int
	list  bus.ListRequest
	from  uint64
}

// FromNode asks node's own copy (every call). Without it Get asks any one
// node, and the other calls the first node Nodes finds.
func FromNode(id string) ReadOption { return func(r *readCall) { r.node = id } }

// WithLeaderRead asks the leader, which answers at its current epoch while
// it holds its lease: the answer reflects every acknowledged write (Get).
func WithLeaderRead() ReadOption {
	return func(r *readCall) { r.req.Consistency = bus.ConsistencyLeader }
}

// WithMinRevision makes the node answer once it has applied rev, waiting
// up to wait (0: the server's default) each attempt (Get). A stale answer
// is retried until ctx ends; then the error matches ErrStale. Give ctx a
// deadline.
func WithMinRevision(rev uint64, wait time.Duration) ReadOption {
	return func(r *readCall) {
		r.req.Consistency, r.req.MinRevision, r.req.WaitMS = bus.ConsistencyMinRevision, rev, int(wait/time.Millisecond)
	}
}

// WithRevision reads the key as it was at revision rev, from the node's
// history (Get). A node that no longer holds rev answers an error matching
// ErrCompacted; one past its revision ErrFuture; one whose copy missed
// updates ErrStale.
func WithRevision(rev uint64) ReadOption { return func(r *readCall) { r.req.Revision = rev } }

// WithLimit asks for at most n versions, the newest (History), or n
// entries a page (List, ListAll).
func WithLimit(n int) ReadOption {
	return func(r *readCall) { r.limit, r.list.Limit = n, n }
}

// WithKeysOnly leaves the values out (List, ListAll).
func WithKeysOnly() ReadOption { return func(r *readCall) { r.list.KeysOnly = true } }

// WithAfter starts a page strictly after key, a ListReply's Next (List).
func WithAfter(key string) ReadOption { return func(r *readCall) { r.list.After = key } }

// FromRevision starts a Watch at revision rev: the node replays the updates
// it holds from there (Watch). Without it a watch starts with the next
// update.
func FromRevision(rev uint64) ReadOption { return func(r *readCall) { r.from = rev } }

func readOptions(opts []ReadOption) readCall {
	var r readCall
	for _, o := range opts {
		if o != nil {
			o(&r)
		}
	}
	return r
}

// Get reads key from one copy: any one node's, or FromNode's, or the
// leader's (WithLeaderRead). A key the copy does not hold returns
// ErrNotFound, with the Entry saying which node answered. Get retries like
// Put, and also on a stale answer to a WithMinRevision read; when nobody
// answers until ctx is done, the error matches ErrUnavailable.
func (c *Client) Get(ctx context.Context, key string, opts ...ReadOption) (Entry, error) {
	e, err := c.Read(ctx, key, opts...)
	if err == nil && !e.Found {
		err = fmt.Errorf("%w: %q (node %s)", ErrNotFound, key, e.Node)
	}
	return e, err
}

// Read is Get as the wire has it: a missing key is no error, only Found
// false (the "empty" answer).
func (c *Client) Read(ctx context.Context, key string, opts ...ReadOption) (Entry, error) {
	r := readOptions(opts)
	r.req.Key = key
	if err := r.req.Validate(); err != nil {
		return Entry{}, err
	}
	subject := c.subjects.Read()
	if r.node != "" {
		if err := validNode(r.node); err != nil {
			return Entry{}, err
		}
		subject = c.subjects.NodeRead(r.node)
	}
	var reply Entry
	err := c.request(ctx, opRead, subject, bus.Encode(r.req), func(data []byte) error {
		reply = Entry{}
		return bus.DecodeReply(data, &reply)
	})
	if err != nil {
		return Entry{}, err
	}
	return reply, nil
}

// History returns key's versions in one node's copy, oldest first (at most
// WithLimit of the newest).
func (c *Client) History(ctx context.Context, key string, opts ...ReadOption) (bus.HistoryReply, error) {
	r := readOptions(opts)
	req := bus.HistoryRequest{Key: key, Limit: r.limit}
	if err := req.Validate(); err != nil {
		return bus.HistoryReply{}, err
	}
	node, err := c.pickNode(ctx, r.node)
	if err != nil {
		return bus.HistoryReply{}, err
	}
	var reply bus.HistoryReply
	err = c.request(ctx, opRead, c.subjects.NodeHistory(node), bus.Encode(req), func(data []byte) error {
		reply = bus.HistoryReply{}
		return bus.DecodeReply(data, &reply)
	})
	return reply, err
}

// Changes asks one node for a page of its recent updates after req.After,
// retrying like Get; with req.WaitMS it waits for the next update (a long
// poll). A start older than the node holds fails with ErrCompacted.
func (c *Client) Changes(ctx context.Context, req bus.ChangesRequest, opts ...ReadOption) (bus.ChangesReply, error) {
	if err := req.Validate(); err != nil {
		return bus.ChangesReply{}, err
	}
	node, err := c.pickNode(ctx, readOptions(opts).node)
	if err != nil {
		return bus.ChangesReply{}, err
	}
	var reply bus.ChangesReply
	err = c.requestWithin(ctx, opRead, c.subjects.NodeChanges(node), bus.Encode(req), time.Duration(req.WaitMS)*time.Millisecond, func(data []byte) error {
		reply = bus.ChangesReply{}
		return bus.DecodeReply(data, &reply)
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
