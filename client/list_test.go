package client

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/zkvstore/zkv/bus"
)

func fakeLister(keys []string) func(int64, []byte) []byte {
	return func(_ int64, body []byte) []byte {
		var r bus.ListRequest
		if err := bus.Decode(body, &r); err != nil {
			return bus.EncodeError(err)
		}
		limit := cmp0(r.Limit, bus.DefaultListPage)
		reply := bus.ListReply{Node: "n2", Role: bus.RoleFollower, Entries: []bus.ListEntry{}}
		for _, k := range keys {
			if !strings.HasPrefix(k, r.Prefix) || k <= r.After {
				continue
			}
			if len(reply.Entries) == limit {
				reply.More, reply.Next = true, reply.Entries[limit-1].Key
				break
			}
			reply.Entries = append(reply.Entries, bus.ListEntry{Key: k, Value: "v"})
		}
		return bus.Encode(reply)
	}
}

func cmp0(n, def int) int {
	if n == 0 {
		return def
	}
	return n
}

func TestClientListAll(t *testing.T) {
	s := runServer(t)
	keys := []string{"a/1", "a/2", "a/3", "a/4", "a/5", "b/1"}
	serve(t, connect(t, s), bus.Subjects{}.NodeList("n2"), fakeLister(keys))
	c := newTestClient(t, connect(t, s))
	ctx, cancel := testCtx(t)
	defer cancel()
	for _, limit := range []int{1, 2, 5, 100} {
		var got []string
		for e, err := range c.ListAll(ctx, "a/", FromNode("n2"), WithLimit(limit)) {
			if err != nil {
				t.Fatalf("limit %d: %v", limit, err)
			}
			got = append(got, e.Key)
		}
		if want := keys[:5]; !slices.Equal(got, want) {
			t.Errorf("limit %d: %q, want %q", limit, got, want)
		}
	}
	// Breaking out of the loop stops the paging.
	n := 0
	for range c.ListAll(ctx, "", FromNode("n2"), WithLimit(1)) {
		if n++; n == 2 {
			break
		}
	}
	// A forged cursor is refused before it is sent.
	_, err := c.List(ctx, "a/", FromNode("n2"), WithAfter("b/1"))
	if !errors.Is(err, bus.ErrBadRequest) {
		t.Errorf("cursor outside the prefix: %v, want bad_request", err)
	}
}

func TestClientListAllEndsWithContext(t *testing.T) {
	s := runServer(t)
	serve(t, connect(t, s), bus.Subjects{}.NodeList("n2"), fakeLister([]string{"a", "b", "c"}))
	c := newTestClient(t, connect(t, s))
	ctx, cancel := testCtx(t)
	n := 0
	var last error
	for _, err := range c.ListAll(ctx, "", FromNode("n2"), WithLimit(1)) {
		if err != nil {
			last = err
			continue
		}
		if n++; n == 1 {
			cancel()
		}
	}
	if n != 1 || last == nil {
		t.Fatalf("after cancel: %d entries, error %v; want 1 and an error", n, last)
	}
}
