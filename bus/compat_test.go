package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"
)

// The compatibility rule (docs/protocol.md, "Compatibility"): a request
// for an operation an older server has carries only the fields that server
// knows; a server refuses a field it does not know (it never ignores one);
// a client ignores reply and stream fields it does not know.

func fieldNames(t *testing.T, body []byte) []string {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil {
		t.Fatal(err)
	}
	var names []string
	for k := range m {
		names = append(names, k)
	}
	slices.Sort(names)
	return names
}

func TestOldOperationsSendOnlyOldFields(t *testing.T) {
	tests := []struct {
		name string
		req  any
		want []string
	}{
		{"put", WriteRequest{Key: "a", Value: "1", RequestID: "r"}, []string{"key", "request_id", "value"}},
		{"delete", WriteRequest{Op: OpDelete, Key: "a", RequestID: "r"}, []string{"key", "op", "request_id"}},
		{"read", ReadRequest{Key: "a"}, []string{"key"}},
		{"list", ListRequest{Prefix: "a"}, []string{"prefix"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := fieldNames(t, Encode(tt.req)); !slices.Equal(got, tt.want) {
				t.Errorf("fields %v, want %v", got, tt.want)
			}
		})
	}
}

func TestServerRefusesAFieldItDoesNotKnow(t *testing.T) {
	err := Decode([]byte(`{"key":"a","value":"1","if_version":3}`), new(WriteRequest))
	if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), `"if_version"`) {
		t.Fatalf("Decode = %v, want bad_request naming the field", err)
	}
}

func TestClientIgnoresNewReplyFields(t *testing.T) {
	var r WriteReply
	if err := DecodeReply([]byte(`{"ok":true,"key":"a","revision":3,"epoch":1,"leader":"n1","lease":{"id":7}}`), &r); err != nil || !r.OK || r.Revision != 3 {
		t.Fatalf("DecodeReply = %+v, %v", r, err)
	}
}

// TestWatcherPassesNewerStreams publishes, as a newer leader would, a put
// with a field this client does not know and an update of a kind it does
// not know: the watcher delivers both, in order, with no replay asked.
func TestWatcherPassesNewerStreams(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	pub := connect(t, s)
	replays := serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), always(EncodeError(Errorf(CodeInternal, "no replay expected"))))
	ctx, cancel := testCtx(t)
	defer cancel()
	w, err := c.WatchFrom(ctx, WatchOptions{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, body := range []string{
		`{"kind":"put","epoch":2,"seq":5,"key":"a","value":"1","leader":"n1","time":1,"lease":7}`,
		`{"kind":"lease_grant","epoch":2,"seq":6,"key":"a","leader":"n1","time":2}`,
		`{"kind":"put","epoch":2,"seq":7,"key":"b","value":"2","leader":"n1","time":3}`,
	} {
		if err := pub.Publish(c.Subjects().Replication(), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < 3 {
		select {
		case u := <-w.Updates():
			got = append(got, fmt.Sprintf("%d:%s:%s", u.Seq, u.Kind, u.Key))
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher delivered %v", got)
		}
	}
	if want := []string{"5:put:a", "6:lease_grant:a", "7:put:b"}; !slices.Equal(got, want) {
		t.Fatalf("watcher delivered %v, want %v", got, want)
	}
	if n := replays.Load(); n != 0 {
		t.Errorf("%d replays asked for a stream without gaps", n)
	}
}

// TestWatcherFillsGapsFromTheNode drops updates 6 and 7 on the way: the
// watcher fetches them from the node's replay and delivers 5 to 8 once
// each, in order.
func TestWatcherFillsGapsFromTheNode(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	pub := connect(t, s)
	var asked []string
	serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), func(_ int64, body []byte) []byte {
		var r ChangesRequest
		if err := Decode(body, &r); err != nil {
			return EncodeError(err)
		}
		asked = append(asked, fmt.Sprint(r.After))
		return Encode(ChangesReply{Node: "n1", Revision: 8, Next: 7, Updates: []Update{
			{Kind: KindPut, Epoch: 2, Seq: 6, Key: "a", Value: "6", Leader: "n1", Time: 1},
			{Kind: KindDelete, Epoch: 2, Seq: 7, Key: "a", Leader: "n1", Time: 1},
		}})
	})
	ctx, cancel := testCtx(t)
	defer cancel()
	w, err := c.WatchFrom(ctx, WatchOptions{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	for _, body := range []string{
		`{"kind":"put","epoch":2,"seq":5,"key":"a","value":"5","leader":"n1","time":1}`,
		`{"kind":"put","epoch":2,"seq":8,"key":"a","value":"8","leader":"n1","time":3}`,
		`{"kind":"put","epoch":2,"seq":7,"key":"a","value":"late","leader":"n1","time":3}`,
		`{"kind":"put","epoch":2,"seq":9,"key":"a","value":"9","leader":"n1","time":3}`,
	} {
		if err := pub.Publish(c.Subjects().Replication(), []byte(body)); err != nil {
			t.Fatal(err)
		}
	}
	var got []string
	for len(got) < 5 {
		select {
		case u := <-w.Updates():
			got = append(got, fmt.Sprintf("%d:%s:%s", u.Seq, u.Kind, u.Value))
		case <-time.After(10 * time.Second):
			t.Fatalf("watcher delivered %v", got)
		}
	}
	if want := []string{"5:put:5", "6:put:6", "7:delete:", "8:put:8", "9:put:9"}; !slices.Equal(got, want) {
		t.Fatalf("watcher delivered %v, want %v", got, want)
	}
	if want := []string{"5"}; !slices.Equal(asked, want) {
		t.Errorf("replays asked after %v, want %v", asked, want)
	}
}

// TestWatcherEndsWhenTheStartIsNotHeld: a start the node no longer holds
// ends the watch with an error matching ErrCompacted.
func TestWatcherEndsWhenTheStartIsNotHeld(t *testing.T) {
	s := runServer(t)
	c := newTestClient(t, connect(t, s))
	serve(t, connect(t, s), c.Subjects().NodeChanges("n1"), always(EncodeError(RevisionError(CodeCompacted, 40, "answers from 40"))))
	ctx, cancel := testCtx(t)
	defer cancel()
	w, err := c.WatchFrom(ctx, WatchOptions{Node: "n1", From: 3})
	if err != nil {
		t.Fatal(err)
	}
	for u := range w.Updates() {
		t.Errorf("delivered %+v", u)
	}
	if err := w.Err(); !errors.Is(err, ErrCompacted) {
		t.Fatalf("Err = %v, want compacted", err)
	}
}
