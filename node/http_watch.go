package node

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// Limits of a /v1/watch stream.
const (
	// httpWatchMaxDuration ends a stream after an hour: an EventSource,
	// or kvctl, reconnects with Last-Event-ID and goes on where it
	// stopped, and no stream outlives a credential or a client that
	// stopped reading by more than that.
	httpWatchMaxDuration = time.Hour
	// httpWatchPoll is the longest wait of each changes request a stream
	// makes; when it passes with no update the stream sends a comment
	// line, so a client that went away is noticed and proxies see
	// traffic.
	httpWatchPoll = 15 * time.Second
	// httpWatchWriteTimeout is how long one event may take to write.
	httpWatchWriteTimeout = 10 * time.Second
)

// Query parameters of the history, changes, watch and compact requests.
var (
	historyParams = []string{"limit"}
	changesParams = []string{"after", "prefix", "limit", "wait_ms"}
	watchParams   = []string{"after", "prefix"}
	compactParams = []string{"revision", "age", "acks", "request_id"}
)

// serveCtx is ctx ending also when the server stops, so that a long poll
// or a stream does not hold up the HTTP server's shutdown.
func (s *Server) serveCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(s.runCtx, cancel)
	return ctx, func() { stop(); cancel() }
}

// queryUint parses query parameter name as a revision (0 if absent).
func queryUint(r *http.Request, name string) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > bus.MaxSeq {
		return 0, bus.Errorf(bus.CodeBadRequest, "%s %q: want a revision from 0 to %d", name, v, uint64(bus.MaxSeq))
	}
	return n, nil
}

// queryInt parses query parameter name as a number from 0 to most (0 if
// absent).
func queryInt(r *http.Request, name string, most int) (int, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 || n > most {
		return 0, bus.Errorf(bus.CodeBadRequest, "%s %q: want a number from 0 to %d", name, v, most)
	}
	return n, nil
}

// queryDuration parses query parameter name as a Go duration of at least
// a millisecond, in whole milliseconds (0 if absent).
func queryDuration(r *http.Request, name string, most time.Duration) (int64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < time.Millisecond || d > most {
		return 0, bus.Errorf(bus.CodeBadRequest, "%s %q: want a duration such as 30s or 1h, from 1ms to %s", name, v, most)
	}
	return int64(d / time.Millisecond), nil
}

// queryBool parses query parameter name as true or false (false if
// absent).
func queryBool(r *http.Request, name string) (bool, error) {
	switch v := r.URL.Query().Get(name); v {
	case "", "false":
		return false, nil
	case "true":
		return true, nil
	default:
		return false, bus.Errorf(bus.CodeBadRequest, "%s %q: want true or false", name, v)
	}
}

// httpHistory answers a key's versions from the local copy.
func (s *Server) httpHistory(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, historyParams); err != nil {
		writeError(w, err)
		return
	}
	limit, err := queryInt(r, "limit", bus.MaxHistory)
	if err != nil {
		writeError(w, err)
		return
	}
	reply, err := s.History(bus.HistoryRequest{Key: r.PathValue("key"), Limit: limit})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// changesRequest reads a changes request from the query.
func changesRequest(r *http.Request) (bus.ChangesRequest, error) {
	req := bus.ChangesRequest{Prefix: r.URL.Query().Get("prefix")}
	var err error
	if req.After, err = queryUint(r, "after"); err != nil {
		return req, err
	}
	if req.Limit, err = queryInt(r, "limit", bus.MaxChangesPage); err != nil {
		return req, err
	}
	if req.WaitMS, err = queryInt(r, "wait_ms", bus.MaxChangesWaitMS); err != nil {
		return req, err
	}
	return req, req.Validate()
}

// httpChanges answers one page of the local copy's updates after a
// revision; with wait_ms it is a long poll in the watches budget.
func (s *Server) httpChanges(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, changesParams); err != nil {
		writeError(w, err)
		return
	}
	req, err := changesRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	ctx, cancel := s.serveCtx(r.Context())
	defer cancel()
	reply, err := s.Changes(ctx, req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// httpCompact drops every server's history below a revision, or older
// than an age, through the leader.
func (s *Server) httpCompact(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, compactParams); err != nil {
		writeError(w, err)
		return
	}
	wr := bus.WriteRequest{Op: bus.OpCompact}
	var err error
	if wr.Revision, err = queryUint(r, "revision"); err != nil {
		writeError(w, err)
		return
	}
	if wr.AgeMS, err = queryDuration(r, "age", bus.MaxTTLMS*time.Millisecond); err != nil {
		writeError(w, err)
		return
	}
	if (wr.Revision == 0) == (wr.AgeMS == 0) {
		writeError(w, bus.Errorf(bus.CodeBadRequest, "a compact takes one of revision=R (R > 0) or age=DURATION"))
		return
	}
	s.httpWrite(w, r, wr)
}

// httpWatch streams the local copy's updates after a revision as
// server-sent events, one "data:" line of Update JSON with "id:" its
// revision each, until the client goes away, the server stops or
// httpWatchMaxDuration passes. It is a loop of changes requests, each
// wait of which holds a slot of the watches budget. An error (a start the
// copy no longer holds: compacted; a full budget; the server stopping)
// ends the stream with an "error" event carrying the JSON error body.
//
// The start is Last-Event-ID if the client sends one (a reconnecting
// EventSource), else ?after=R, else the copy's revision now: updates
// after it.
func (s *Server) httpWatch(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, watchParams); err != nil {
		writeError(w, err)
		return
	}
	req, err := changesRequest(r)
	if err != nil {
		writeError(w, err)
		return
	}
	switch id := r.Header.Get("Last-Event-ID"); {
	case id != "":
		req.After, err = strconv.ParseUint(id, 10, 64)
		if err != nil || req.After > bus.MaxSeq {
			writeError(w, bus.Errorf(bus.CodeBadRequest, "Last-Event-ID %q: want a revision", id))
			return
		}
	case !r.URL.Query().Has("after"):
		req.After = s.store.Revision()
	}
	req.Limit = bus.MaxChangesPage
	req.WaitMS = int(httpWatchPoll / time.Millisecond)

	ctx, cancel := s.serveCtx(r.Context())
	defer cancel()
	ctx, cancelMax := context.WithTimeout(ctx, httpWatchMaxDuration)
	defer cancelMax()
	rc := http.NewResponseController(w)
	send := func(format string, args ...any) bool {
		_ = rc.SetWriteDeadline(time.Now().Add(httpWatchWriteTimeout))
		if _, err := fmt.Fprintf(w, format, args...); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	// An id alone moves a client's resume point without an event: here
	// to the start, in a keepalive past the updates that did not match.
	if !send(": zkv watch of %q from node %s\nid: %d\n\n", req.Prefix, s.cfg.ID, req.After) {
		return
	}
	for {
		page, err := s.Changes(ctx, req)
		if r.Context().Err() != nil {
			return // the client went away
		}
		if ctx.Err() != nil && err == nil {
			return // the stream's time is up: the client reconnects
		}
		if err != nil {
			if ctx.Err() != nil && s.runCtx.Err() == nil {
				return // the stream's time is up
			}
			send("event: error\ndata: %s\n\n", bus.EncodeError(err))
			return
		}
		for _, u := range page.Updates {
			if !send("id: %d\ndata: %s\n\n", u.Seq, bus.Encode(u)) {
				return
			}
		}
		if len(page.Updates) == 0 && !send(": keepalive\nid: %d\n\n", page.Next) {
			return
		}
		req.After, req.AfterEpoch = page.Next, page.NextEpoch
	}
}
