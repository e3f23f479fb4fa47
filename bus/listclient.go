package bus

import (
	"context"
	"iter"
	"slices"
)

// ListOption changes one list request.
type ListOption func(*ListRequest)

// ListAfter starts the page strictly after key (a ListReply's Next).
func ListAfter(key string) ListOption { return func(r *ListRequest) { r.After = key } }

// ListLimit asks for at most n entries a page (0: DefaultListPage).
func ListLimit(n int) ListOption { return func(r *ListRequest) { r.Limit = n } }

// ListKeysOnly leaves the values out.
func ListKeysOnly() ListOption { return func(r *ListRequest) { r.KeysOnly = true } }

// List asks node for one page of the keys of its own copy that begin with
// prefix, in key order, on Subjects.NodeList. An empty node is the first
// node Nodes finds. It retries like Get.
func (c *Client) List(ctx context.Context, node, prefix string, opts ...ListOption) (ListReply, error) {
	req := ListRequest{Prefix: prefix}
	for _, o := range opts {
		o(&req)
	}
	if err := req.Validate(); err != nil {
		return ListReply{}, err
	}
	if node == "" {
		nodes, err := c.Nodes(ctx)
		if err != nil {
			return ListReply{}, err
		}
		node = nodes[0]
	}
	if err := validNode(node); err != nil {
		return ListReply{}, err
	}
	var reply ListReply
	err := c.request(ctx, opRead, c.subjects.NodeList(node), Encode(req), func(data []byte) error {
		reply = ListReply{}
		return DecodeReply(data, &reply)
	})
	if err != nil {
		return ListReply{}, err
	}
	return reply, nil
}

// ListAll pages through every key of node's copy that begins with prefix,
// yielding the entries in key order, and the error that ended the paging
// if any (after which it stops). Every page comes from one node: an empty
// node is resolved once, by the first page's answer. It stops when ctx
// ends, or when the loop breaks.
func (c *Client) ListAll(ctx context.Context, node, prefix string, opts ...ListOption) iter.Seq2[ListEntry, error] {
	return func(yield func(ListEntry, error) bool) {
		next := ""
		for {
			pageOpts := opts
			if next != "" {
				pageOpts = append(slices.Clip(opts), ListAfter(next))
			}
			page, err := c.List(ctx, node, prefix, pageOpts...)
			if err == nil && page.More && page.Next == "" {
				err = Errorf(CodeInternal, "node %s: a page with more to come and no next key", page.Node)
			}
			if err != nil {
				yield(ListEntry{}, err)
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
