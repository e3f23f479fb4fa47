package node

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/retry"
)

// handleLeaderSnapshot serves one page of the leader's store on its own
// goroutine, in the snapshot_pages budget: pages are served side by side
// up to MaxSnapshotPages, and more are refused "unavailable".
func (s *Server) handleLeaderSnapshot(req micro.Request) {
	var r bus.SnapshotRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	if err := s.spawn(s.budgets.snapshotPages, func() { s.serveSnapshotPage(req, r) }); err != nil {
		s.respondError(req, err)
	}
}

func (s *Server) serveSnapshotPage(req micro.Request, r bus.SnapshotRequest) {
	epoch := s.leaderEpoch.Load()
	if epoch == 0 || !s.lease.LeaseValid() {
		s.respondError(req, s.notLeader(epoch))
		return
	}
	if r.Requests {
		s.respond(req, bus.Encode(s.requestsPage(epoch, r)))
		return
	}
	page := s.snapshotPage(r)
	page.Epoch, page.Leader = epoch, s.cfg.ID
	s.respond(req, encodePage(page))
}

// requestsPage is a page of the request-ID window (SnapshotRequest with
// Requests set).
func (s *Server) requestsPage(epoch uint64, r bus.SnapshotRequest) bus.SnapshotReply {
	limit := r.Limit
	if limit == 0 {
		limit = bus.MaxSnapshotPage
	}
	reqs, more := s.store.Requests(r.After, limit, bus.SnapshotPageBytes)
	page := bus.SnapshotReply{Epoch: epoch, Revision: s.store.Revision(), More: more, Leader: s.cfg.ID, Entries: []bus.SnapshotEntry{},
		Requests: make([]bus.RequestEntry, len(reqs))}
	for i, u := range reqs {
		page.Requests[i] = bus.RequestEntry{ID: u.RequestID, Epoch: u.Epoch, Revision: u.Seq, Key: u.Key, Value: u.Value, Delete: u.Delete}
	}
	return page
}

// snapshotPage reads the entries after r.After, up to r.Limit (default
// bus.MaxSnapshotPage) or about bus.SnapshotPageBytes, in one pass over the
// store's ordered index under its read lock (well under a millisecond for a
// full page of a million-key store), so the page is the store as of its
// revision.
func (s *Server) snapshotPage(r bus.SnapshotRequest) bus.SnapshotReply {
	limit := r.Limit
	if limit == 0 {
		limit = bus.MaxSnapshotPage
	}
	entries, rev, _, more := s.store.Snapshot(r.After, limit, bus.SnapshotPageBytes)
	page := bus.SnapshotReply{Revision: rev, More: more, Entries: make([]bus.SnapshotEntry, len(entries))}
	for i, e := range entries {
		page.Entries[i] = bus.SnapshotEntry{Key: e.Key, Value: e.Value, Revision: e.Revision, Expires: e.Expires}
	}
	return page
}

// fetchedPage is a snapshot page, or the error that ended the fetching.
type fetchedPage struct {
	page bus.SnapshotReply
	err  error
}

// fetchPages asks the leader for its store page after page, sending each
// to out, and closes out when the last page was sent, ctx ended or a page
// failed (the error is sent first). A page the leader refuses because its
// snapshot_pages budget is full is asked for again with backoff, for up
// to ForwardTimeout.
func (s *Server) fetchPages(ctx context.Context, out chan<- fetchedPage) {
	defer close(out)
	send := func(f fetchedPage) bool {
		select {
		case out <- f:
			return true
		case <-ctx.Done():
			return false
		}
	}
	after := ""
	for {
		page, err := s.fetchPage(ctx, after)
		if err != nil {
			send(fetchedPage{err: err})
			return
		}
		if len(page.Entries) == 0 && page.More {
			send(fetchedPage{err: errors.New("empty snapshot page with more to come")})
			return
		}
		if !send(fetchedPage{page: page}) || !page.More {
			return
		}
		after = page.Entries[len(page.Entries)-1].Key
	}
}

// fetchPage asks for one page, again while the leader says it is busy.
func (s *Server) fetchPage(ctx context.Context, after string) (bus.SnapshotReply, error) {
	giveUp := time.Now().Add(s.cfg.ForwardTimeout)
	body := bus.Encode(bus.SnapshotRequest{After: after})
	var page bus.SnapshotReply
	err := retry.Do(ctx, retry.BusyLeader.Until(giveUp), func() error {
		actx, cancel := context.WithTimeout(ctx, s.cfg.ForwardTimeout)
		msg, err := s.verifiedReply(actx, s.subj.LeaderSnapshot(), body, "snapshot page")
		cancel()
		if err != nil {
			return retry.Permanent(err)
		}
		page, err = decodePage(msg.Data)
		if err != nil && !errors.Is(err, bus.ErrUnavailable) {
			return retry.Permanent(err)
		}
		return err
	}, nil)
	if err != nil {
		return bus.SnapshotReply{}, fmt.Errorf("snapshot page after %q: %w", after, err)
	}
	return page, nil
}
