package bus

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestListRequestDecode(t *testing.T) {
	for _, tc := range []struct {
		body string
		code Code // "" for a valid request
	}{
		{`{}`, ""},
		{`{"prefix":"a/","after":"a/k042","limit":100,"keys_only":true}`, ""},
		{`{"prefix":"a/","after":"a/"}`, ""},
		{`{"limit":1000}`, ""},
		{`{"prefix":"a/","after":"b/k1"}`, CodeBadRequest},
		{`{"prefix":"a/","after":"a"}`, CodeBadRequest},
		{`{"after":"a\u0001"}`, CodeBadRequest},
		{`{"limit":-1}`, CodeBadRequest},
		{`{"limit":1001}`, CodeBadRequest},
		{`{"prefix":"a","Prefix":"b"}`, CodeBadRequest},
		{`{"prefix":null}`, CodeBadRequest},
		{`{"prefix":"a","cursor":"a1"}`, CodeBadRequest},
		{`{"prefix":"a\u0000"}`, CodeInvalidKey},
		{`{"prefix":"` + strings.Repeat("k", MaxKeyBytes+1) + `"}`, CodeInvalidKey},
	} {
		var r ListRequest
		err := Decode([]byte(tc.body), &r)
		if tc.code == "" {
			if err != nil {
				t.Errorf("Decode(%s) = %v, want nil", tc.body, err)
			}
			continue
		}
		if e := AsError(err); err == nil || e.Code != tc.code {
			t.Errorf("Decode(%s) = %v, want code %s", tc.body, err, tc.code)
		}
	}
}

func TestValidatePrefix(t *testing.T) {
	if err := ValidatePrefix(""); err != nil {
		t.Errorf("empty prefix: %v", err)
	}
	for _, p := range []string{"a\xff", "a\n", strings.Repeat("k", MaxKeyBytes+1)} {
		if e := AsError(ValidatePrefix(p)); e == nil || e.Code != CodeInvalidKey {
			t.Errorf("ValidatePrefix(%q) = %v, want invalid_key", p, e)
		}
	}
}

// fakeLister answers list requests on node n2 from keys (sorted), like a
// node's copy.
func fakeLister(keys []string) func(int64, []byte) []byte {
	return func(_ int64, body []byte) []byte {
		var r ListRequest
		if err := Decode(body, &r); err != nil {
			return EncodeError(err)
		}
		limit := cmp0(r.Limit, DefaultListPage)
		reply := ListReply{Node: "n2", Role: RoleFollower, Entries: []ListEntry{}}
		for _, k := range keys {
			if !strings.HasPrefix(k, r.Prefix) || k <= r.After {
				continue
			}
			if len(reply.Entries) == limit {
				reply.More, reply.Next = true, reply.Entries[limit-1].Key
				break
			}
			reply.Entries = append(reply.Entries, ListEntry{Key: k, Value: "v"})
		}
		return Encode(reply)
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
	serve(t, connect(t, s), Subjects{}.NodeList("n2"), fakeLister(keys))
	c := newTestClient(t, connect(t, s))
	ctx, cancel := testCtx(t)
	defer cancel()
	for _, limit := range []int{1, 2, 5, 100} {
		var got []string
		for e, err := range c.ListAll(ctx, "n2", "a/", ListLimit(limit)) {
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
	for range c.ListAll(ctx, "n2", "", ListLimit(1)) {
		if n++; n == 2 {
			break
		}
	}
	// A forged cursor is refused before it is sent.
	_, err := c.List(ctx, "n2", "a/", ListAfter("b/1"))
	if !errors.Is(err, ErrBadRequest) {
		t.Errorf("cursor outside the prefix: %v, want bad_request", err)
	}
}

func TestClientListAllEndsWithContext(t *testing.T) {
	s := runServer(t)
	serve(t, connect(t, s), Subjects{}.NodeList("n2"), fakeLister([]string{"a", "b", "c"}))
	c := newTestClient(t, connect(t, s))
	ctx, cancel := testCtx(t)
	n := 0
	var last error
	for _, err := range c.ListAll(ctx, "n2", "", ListLimit(1)) {
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
