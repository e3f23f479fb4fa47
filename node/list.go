package node

import (
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
)

// handleList serves one page of the local copy's keys with a prefix on its
// own goroutine, in the lists budget.
func (s *Server) handleList(req micro.Request) {
	var r bus.ListRequest
	if err := bus.Decode(req.Data(), &r); err != nil {
		s.respondError(req, err)
		return
	}
	if err := s.spawn(s.budgets.lists, func() { s.respond(req, bus.Encode(s.listPage(r))) }); err != nil {
		s.respondError(req, err)
	}
}

// List is the list path for callers in this process (the HTTP API): one
// page, holding a slot of the lists budget like the bus path.
func (s *Server) List(r bus.ListRequest) (bus.ListReply, error) {
	if err := r.Validate(); err != nil {
		return bus.ListReply{}, err
	}
	release, err := s.take(s.budgets.lists)
	if err != nil {
		return bus.ListReply{}, err
	}
	defer release()
	return s.listPage(r), nil
}

// listPage reads one page of a validated request from the local copy,
// stale or not, like a local read: one pass over the store's ordered
// index under its read lock (the walk of a snapshot page), up to r.Limit
// entries or about bus.ListPageBytes.
func (s *Server) listPage(r bus.ListRequest) bus.ListReply {
	limit := r.Limit
	if limit == 0 {
		limit = bus.DefaultListPage
	}
	entries, rev, _, more := s.store.List(r.Prefix, r.After, limit, bus.ListPageBytes)
	role, epoch, _ := s.role()
	page := bus.ListReply{Node: s.cfg.ID, Role: role, Epoch: epoch, Revision: rev, More: more, Entries: make([]bus.ListEntry, len(entries))}
	for i, e := range entries {
		page.Entries[i] = bus.ListEntry{Key: e.Key, Revision: e.Revision}
		if !r.KeysOnly {
			page.Entries[i].Value = e.Value
		}
	}
	if more {
		page.Next = entries[len(entries)-1].Key
	}
	return page
}
