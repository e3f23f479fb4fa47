package node_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/testenv"
)

// sseEvent is one server-sent event.
type sseEvent struct{ id, event, data string }

// sseStream reads the events of one /v1/watch response.
type sseStream struct {
	t    *testing.T
	resp *http.Response
	r    *bufio.Reader
}

// openWatch starts GET url (a /v1/watch URL) with Last-Event-ID lastID if
// not "", and checks that it is an event stream.
func openWatch(t *testing.T, ctx context.Context, url, lastID string) *sseStream {
	t.Helper()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if lastID != "" {
		req.Header.Set("Last-Event-ID", lastID)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("watch %s: %v", url, err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("watch %s: status %d, content type %q", url, resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	return &sseStream{t: t, resp: resp, r: bufio.NewReader(resp.Body)}
}

// next returns the next event (comments skipped), or ok false at the end
// of the stream.
func (s *sseStream) next() (e sseEvent, ok bool) {
	s.t.Helper()
	for {
		line, err := s.r.ReadString('\n')
		if err != nil {
			return e, false
		}
		line = strings.TrimSuffix(line, "\n")
		name, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch name {
		case "":
			if line == "" && (e.data != "" || e.event != "") {
				return e, true
			}
		case "id":
			e.id = value
		case "event":
			e.event = value
		case "data":
			e.data += value
		}
	}
}

// update returns the next event as an Update, failing on anything else.
func (s *sseStream) update() bus.Update {
	s.t.Helper()
	e, ok := s.next()
	if !ok || e.event != "" {
		s.t.Fatalf("want an update, got %+v (open %v)", e, ok)
	}
	var u bus.Update
	if err := json.Unmarshal([]byte(e.data), &u); err != nil {
		s.t.Fatalf("event data %q: %v", e.data, err)
	}
	if e.id != fmt.Sprint(u.Seq) {
		s.t.Fatalf("event id %q for revision %d", e.id, u.Seq)
	}
	return u
}

// errorEvent returns the code of the next event, which must be an error.
func (s *sseStream) errorEvent() bus.Code {
	s.t.Helper()
	e, ok := s.next()
	if !ok || e.event != "error" {
		s.t.Fatalf("want an error event, got %+v (open %v)", e, ok)
	}
	return errorCode(s.t, e.data)
}

// decodeInto decodes a JSON body, failing the test.
func decodeInto(t *testing.T, body string, v any) {
	t.Helper()
	if err := json.Unmarshal([]byte(body), v); err != nil {
		t.Fatalf("decode %q: %v", body, err)
	}
}

// TestHTTPHistoryChangesAndWatch runs the HTTP face of history, reads at
// a revision, changes, the event-stream watch, deletes by prefix, purges,
// compaction and time to live against a real cluster: each answers like
// its NATS form, a stream resumes from Last-Event-ID, ends with an error
// event when its start is compacted, and ends when the server stops.
func TestHTTPHistoryChangesAndWatch(t *testing.T) {
	c := startCluster(t, 1, stableTimeout, "--watch-window", "32")
	leader, _ := c.waitLeader("", 20*time.Second)
	base := c.nodes[leader].URL()
	ctx := ctxFor(t, 2*time.Minute)
	put := func(path, body string) bus.WriteReply {
		t.Helper()
		var r bus.WriteReply
		decodeInto(t, httpDo(t, "PUT", base+path, body, http.StatusOK), &r)
		return r
	}

	r1 := put("/v1/kv/h", "1")
	r2 := put("/v1/kv/h", "2")

	// Reads at a revision, and their errors.
	var rr bus.ReadReply
	decodeInto(t, httpDo(t, "GET", fmt.Sprintf("%s/v1/kv/h?revision=%d", base, r1.Revision), "", http.StatusOK), &rr)
	if rr.Value != "1" || rr.AtRevision != r1.Revision || rr.Node != leader {
		t.Fatalf("read at %d: %+v", r1.Revision, rr)
	}
	if code := errorCode(t, httpDo(t, "GET", base+"/v1/kv/h?revision=9000000", "", http.StatusBadRequest)); code != bus.CodeFuture {
		t.Fatalf("read at a future revision: %s", code)
	}
	for _, q := range []string{"revision=x", "revison=1", "revision=1&revision=2"} {
		if code := errorCode(t, httpDo(t, "GET", base+"/v1/kv/h?"+q, "", http.StatusBadRequest)); code != bus.CodeBadRequest {
			t.Fatalf("GET ?%s: %s", q, code)
		}
	}

	// History.
	var h bus.HistoryReply
	decodeInto(t, httpDo(t, "GET", base+"/v1/history/h", "", http.StatusOK), &h)
	if len(h.Versions) != 2 || h.Versions[1].Value != "2" || h.Versions[1].Revision != r2.Revision || h.Key != "h" {
		t.Fatalf("history: %+v", h)
	}
	decodeInto(t, httpDo(t, "GET", base+"/v1/history/h?limit=1", "", http.StatusOK), &h)
	if len(h.Versions) != 1 || !h.Trimmed {
		t.Fatalf("history limit=1: %+v", h)
	}
	httpDo(t, "GET", base+"/v1/history/h?limit=65", "", http.StatusBadRequest)

	// Changes, and a long poll that a write answers.
	var ch bus.ChangesReply
	decodeInto(t, httpDo(t, "GET", fmt.Sprintf("%s/v1/changes?after=%d&prefix=h", base, r1.Revision), "", http.StatusOK), &ch)
	if len(ch.Updates) != 1 || ch.Updates[0].Seq != r2.Revision || ch.Next != r2.Revision || ch.More {
		t.Fatalf("changes: %+v", ch)
	}
	polled := make(chan string, 1)
	go func() {
		resp, err := http.Get(fmt.Sprintf("%s/v1/changes?after=%d&prefix=p&wait_ms=20000", base, r2.Revision))
		if err != nil {
			polled <- err.Error()
			return
		}
		defer resp.Body.Close()
		var reply bus.ChangesReply
		if err := json.NewDecoder(resp.Body).Decode(&reply); err != nil || len(reply.Updates) != 1 {
			polled <- fmt.Sprintf("%+v, %v", reply, err)
			return
		}
		polled <- reply.Updates[0].Key
	}()
	testenv.WaitFor(t, 10*time.Second, "the long poll to wait", func() error {
		st, err := c.client.Status(ctx, leader)
		if err != nil || st.Budgets.Watches.InUse != 1 {
			return fmt.Errorf("watches budget %+v, %v", st.Budgets.Watches, err)
		}
		return nil
	})
	put("/v1/kv/x", "not matched")
	put("/v1/kv/p1", "1")
	if got := <-polled; got != "p1" {
		t.Fatalf("long poll: %s", got)
	}

	// A stream from r2: the replay, then live updates of every kind.
	w := openWatch(t, ctx, fmt.Sprintf("%s/v1/watch?prefix=w/&after=%d", base, r2.Revision), "")
	wa := put("/v1/kv/w/a", "1")
	put("/v1/kv/w/b", "2")
	var dp, pu bus.WriteReply
	decodeInto(t, httpDo(t, "DELETE", base+"/v1/kv/w/?prefix=true", "", http.StatusOK), &dp)
	if dp.Count != 2 || !dp.Deleted {
		t.Fatalf("delete by prefix: %+v", dp)
	}
	put("/v1/kv/w/c", "3")
	decodeInto(t, httpDo(t, "DELETE", base+"/v1/kv/w/c?purge=true", "", http.StatusOK), &pu)
	if pu.Op != bus.OpPurge || !pu.Deleted {
		t.Fatalf("purge: %+v", pu)
	}
	httpDo(t, "DELETE", base+"/v1/kv/w/c?purge=true&prefix=true", "", http.StatusBadRequest)
	httpDo(t, "DELETE", base+"/v1/kv/w/c?purge=yes", "", http.StatusBadRequest)
	var got []string
	for range 5 {
		u := w.update()
		got = append(got, fmt.Sprintf("%d:%s:%s:%t", u.Seq, u.Kind, u.Key, u.Prefix))
	}
	want := []string{
		fmt.Sprintf("%d:put:w/a:false", wa.Revision), fmt.Sprintf("%d:put:w/b:false", wa.Revision+1),
		fmt.Sprintf("%d:delete:w/:true", dp.Revision), fmt.Sprintf("%d:put:w/c:false", dp.Revision+1),
		fmt.Sprintf("%d:purge:w/c:false", pu.Revision),
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("stream\n%v\nwant\n%v", got, want)
	}

	// Resuming with Last-Event-ID starts after that event, whatever after says.
	resumed := openWatch(t, ctx, base+"/v1/watch?prefix=w/&after=1", fmt.Sprint(dp.Revision))
	if u := resumed.update(); u.Seq != dp.Revision+1 || u.Key != "w/c" {
		t.Fatalf("resumed at %+v", u)
	}

	// A time to live: the reply's deadline, then the expiry on the stream.
	var tr bus.WriteReply
	decodeInto(t, httpDo(t, "PUT", base+"/v1/kv/w/t?ttl=300ms", "v", http.StatusOK), &tr)
	if tr.Expires <= time.Now().Add(-time.Minute).UnixMilli() {
		t.Fatalf("put with ttl: %+v", tr)
	}
	if u := w.update(); u.Key != "w/t" || u.Kind != bus.KindPut || u.Expires == 0 {
		t.Fatalf("put with ttl on the stream: %+v", u)
	}
	if u := w.update(); u.Key != "w/t" || u.Kind != bus.KindDelete || !u.Expired {
		t.Fatalf("expiry on the stream: %+v", u)
	}
	httpDo(t, "GET", base+"/v1/kv/w/t", "", http.StatusNotFound)
	httpDo(t, "PUT", base+"/v1/kv/w/t?ttl=soon", "v", http.StatusBadRequest)
	httpDo(t, "PUT", base+"/v1/kv/w/t?create=true&ttl=1h", "v", http.StatusOK)

	// Compaction: reads below it are refused; replays and streams only
	// past the window (32 updates here).
	httpDo(t, "POST", base+"/v1/compact", "", http.StatusBadRequest)
	httpDo(t, "POST", base+"/v1/compact?revision=1&age=1h", "", http.StatusBadRequest)
	var cp bus.WriteReply
	decodeInto(t, httpDo(t, "POST", fmt.Sprintf("%s/v1/compact?revision=%d", base, dp.Revision), "", http.StatusOK), &cp)
	if cp.Compacted != dp.Revision || cp.Op != bus.OpCompact {
		t.Fatalf("compact: %+v", cp)
	}
	if code := errorCode(t, httpDo(t, "GET", fmt.Sprintf("%s/v1/kv/h?revision=%d", base, r1.Revision), "", http.StatusGone)); code != bus.CodeCompacted {
		t.Fatalf("read below the compaction: %s", code)
	}
	httpDo(t, "GET", fmt.Sprintf("%s/v1/changes?after=%d", base, r1.Revision), "", http.StatusOK)
	for i := range 40 {
		httpDo(t, "PUT", fmt.Sprintf("%s/v1/kv/fill%d", base, i), "x", http.StatusOK)
	}
	httpDo(t, "GET", fmt.Sprintf("%s/v1/changes?after=%d", base, r1.Revision), "", http.StatusGone)
	if code := openWatch(t, ctx, base+"/v1/watch?after=1", "").errorEvent(); code != bus.CodeCompacted {
		t.Fatalf("stream from a compacted start ended with %s", code)
	}
	httpDo(t, "POST", base+"/v1/compact?age=1h", "", http.StatusOK)
	httpDo(t, "GET", base+"/v1/watch?limit=3", "", http.StatusBadRequest)

	// The server stops: the stream ends promptly.
	ended := make(chan struct{})
	go func() {
		defer close(ended)
		for {
			if _, ok := w.next(); !ok {
				return
			}
		}
	}()
	stopCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	if err := c.nodes[leader].Stop(stopCtx); err != nil {
		t.Fatalf("stop with a stream open: %v", err)
	}
	select {
	case <-ended:
	case <-time.After(10 * time.Second):
		t.Fatal("the stream outlived the server")
	}
}
