package client

import (
	"context"
	"iter"
	"slices"

	"github.com/zkvstore/zkv/bus"
)

// List returns one page of the keys of one node's copy that begin with
// prefix, in key order (WithLimit entries at most, after WithAfter). It
// retries like Get.
func (c *Client) List(ctx context.Context, prefix string, opts ...ReadOption) (bus.ListReply, error) {
	r := readOptions(opts)
	req := r.list
	req.Prefix = prefix
	if err := req.Validate(); err != nil {
		return bus.ListReply{}, err
	}
	node, err := c.pickNode(ctx, r.node)
	if err != nil {
		return bus.ListReply{}, err
	}
	var reply bus.ListReply
	err = c.request(ctx, opRead, c.subjects.NodeList(node), bus.Encode(req), func(data []byte) error {
		reply = bus.ListReply{}
		return bus.DecodeReply(data, &reply)
	})
	if err != nil {
		return bus.ListReply{}, err
	}
	return reply, nil
}

// ListAll pages through every key of one node's copy that begins with
// prefix, yielding the entries in key order, and the error that ended the
// paging if any (after which it stops). Every page comes from one node:
// without FromNode, the node that answers the first page. It stops when
// ctx ends, or when the loop breaks.
func (c *Client) ListAll(ctx context.Context, prefix string, opts ...ReadOption) iter.Seq2[bus.ListEntry, error] {
	return func(yield func(bus.ListEntry, error) bool) {
		var node, next string
		for {
			pageOpts := slices.Clip(opts)
			if next != "" {
				pageOpts = append(pageOpts, FromNode(node), WithAfter(next))
			}
			page, err := c.List(ctx, prefix, pageOpts...)
			if err == nil && page.More && page.Next == "" {
				err = bus.Errorf(bus.CodeInternal, "node %s: a page with more to come and no next key", page.Node)
			}
			if err != nil {
				yield(bus.ListEntry{}, err)
				return
			}
			for _, e := range page.Entries {
				if !yield(e, nil) {
					return
				}
			}
			if !page.More {
				return
			}
			node, next = page.Node, page.Next
		}
	}
}
