package node_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/testenv"
)

// httpList asks node for one list page over HTTP with query q.
func (c *cluster) httpList(node string, q url.Values) (int, bus.ListReply, *bus.Error) {
	c.t.Helper()
	resp, err := http.Get(c.nodes[node].URL() + "/v1/kv?" + q.Encode())
	if err != nil {
		c.t.Fatalf("list over http: %v", err)
	}
	defer resp.Body.Close()
	var body struct {
		bus.ListReply
		Error *bus.Error `json:"error"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		c.t.Fatalf("list over http: decode: %v", err)
	}
	return resp.StatusCode, body.ListReply, body.Error
}

// listAll pages through node's keys with prefix, over NATS or HTTP, in
// pages of limit, checking each page's cursor.
func (c *cluster) listAll(node, prefix string, limit int, overHTTP bool) []bus.ListEntry {
	c.t.Helper()
	var all []bus.ListEntry
	after := ""
	for pages := 0; ; pages++ {
		if pages > 10 {
			c.t.Fatalf("list of %q does not end", prefix)
		}
		var page bus.ListReply
		if overHTTP {
			status, p, e := c.httpList(node, url.Values{"prefix": {prefix}, "after": {after}, "limit": {fmt.Sprint(limit)}})
			if status != http.StatusOK {
				c.t.Fatalf("list %q after %q over http: %d %v", prefix, after, status, e)
			}
			page = p
		} else {
			p, err := c.client.List(ctxFor(c.t, 10*time.Second), prefix, client.FromNode(node), client.WithAfter(after), client.WithLimit(limit))
			if err != nil {
				c.t.Fatalf("list %q after %q: %v", prefix, after, err)
			}
			page = p
		}
		if page.Node != node || len(page.Entries) > limit {
			c.t.Fatalf("page from %s of %d entries, want %s and at most %d", page.Node, len(page.Entries), node, limit)
		}
		all = append(all, page.Entries...)
		if !page.More {
			return all
		}
		if page.Next != page.Entries[len(page.Entries)-1].Key {
			c.t.Fatalf("next %q is not the page's last key", page.Next)
		}
		after = page.Next
	}
}

func TestListThroughAFollower(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	follower := ""
	for id := range c.nodes {
		if id != leader {
			follower = id
			break
		}
	}
	var want []string
	for i := range 150 {
		want = append(want, fmt.Sprintf("a/k%03d", i))
	}
	for i := range 100 {
		want = append(want, fmt.Sprintf("b/k%03d", i))
	}
	for _, k := range want {
		c.put(k, "v-"+k)
	}
	c.waitValue(follower, want[len(want)-1], "v-"+want[len(want)-1])

	keysOf := func(es []bus.ListEntry) []string {
		ks := make([]string, len(es))
		for i, e := range es {
			ks[i] = e.Key
			if e.Value != "v-"+e.Key || e.Revision == 0 {
				t.Fatalf("entry %+v", e)
			}
		}
		return ks
	}
	for _, overHTTP := range []bool{false, true} {
		for _, tc := range []struct {
			prefix string
			want   []string
		}{{"", want}, {"a/", want[:150]}, {"b/", want[150:]}, {"c/", nil}, {"a/k14", want[140:150]}} {
			got := keysOf(c.listAll(follower, tc.prefix, 100, overHTTP))
			if !slices.Equal(got, tc.want) {
				t.Fatalf("http=%v prefix %q: %d keys %q..., want %d", overHTTP, tc.prefix, len(got), got[:min(3, len(got))], len(tc.want))
			}
		}
	}

	// A deleted key disappears from the lists.
	if _, err := c.client.Delete(ctxFor(t, 10*time.Second), "a/k100"); err != nil {
		t.Fatal(err)
	}
	c.waitAbsent(follower, "a/k100")
	if got := keysOf(c.listAll(follower, "a/k1", 100, false)); len(got) != 49 || slices.Contains(got, "a/k100") {
		t.Fatalf("after a delete: %d keys, want 49 without a/k100", len(got))
	}

	// Keys only, the default page, a cursor at the last key.
	page, err := c.client.List(ctxFor(t, 10*time.Second), "b/", client.FromNode(follower), client.WithKeysOnly())
	if err != nil || len(page.Entries) != 100 || page.More || page.Entries[0].Value != "" || page.Role != bus.RoleFollower || page.Epoch == 0 {
		t.Fatalf("keys only: %d entries more=%v %+v, %v", len(page.Entries), page.More, page.Entries[:1], err)
	}
	page, err = c.client.List(ctxFor(t, 10*time.Second), "b/", client.FromNode(follower), client.WithAfter("b/k099"))
	if err != nil || len(page.Entries) != 0 || page.More {
		t.Fatalf("after the last key: %+v, %v", page, err)
	}

	// A forged cursor outside the prefix, a bad limit, a bad prefix and
	// unknown fields or parameters are refused with their codes.
	for body, code := range map[string]bus.Code{
		`{"prefix":"a/","after":"b/k000"}`: bus.CodeBadRequest,
		`{"prefix":"a/","limit":1001}`:     bus.CodeBadRequest,
		`{"prefix":"a/","limit":-1}`:       bus.CodeBadRequest,
		`{"prefix":"a/","cursor":"a/k1"}`:  bus.CodeBadRequest,
		`{"prefix":"a\u0001"}`:             bus.CodeInvalidKey,
	} {
		msg, err := c.nc.Request(c.client.Subjects().NodeList(follower), []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r bus.ListReply
		if e := bus.AsError(bus.DecodeReply(msg.Data, &r)); e == nil || e.Code != code {
			t.Errorf("list %s: %v, want %s", body, e, code)
		}
	}
	for q, code := range map[string]bus.Code{
		"prefix=a/&after=b/k000": bus.CodeBadRequest,
		"prefix=a/&limit=x":      bus.CodeBadRequest,
		"prefix=a/&limit=5000":   bus.CodeBadRequest,
		"prefx=a/":               bus.CodeBadRequest,
		"prefix=a/&prefix=b/":    bus.CodeBadRequest,
		"prefix=a/&keys_only=1":  bus.CodeBadRequest,
		"prefix=a%01":            bus.CodeInvalidKey,
	} {
		v, _ := url.ParseQuery(q)
		status, _, e := c.httpList(follower, v)
		if e == nil || e.Code != code || status != e.HTTPStatus() {
			t.Errorf("GET /v1/kv?%s: %d %v, want %s", q, status, e, code)
		}
	}

	// The server keeps serving, and its status reports the lists budget.
	st, err := c.client.Status(ctxFor(t, 10*time.Second), follower)
	if err != nil || st.Budgets.Lists.Limit != 64 || st.Budgets.Lists.InUse != 0 {
		t.Fatalf("status after the lists: %+v, %v", st.Budgets.Lists, err)
	}
	testenv.WaitFor(t, 5*time.Second, "the follower to list a new key", func() error {
		c.put("a/new", "1")
		got := c.listAll(follower, "a/new", 10, true)
		if len(got) != 1 {
			return fmt.Errorf("%d entries", len(got))
		}
		return nil
	})
}
