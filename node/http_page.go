package node

import (
	"cmp"
	"context"
	"embed"
	"fmt"
	"io/fs"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// The status page: static files built into the binary, no toolchain.
//
//go:embed web
var webFiles embed.FS

// Limits of the cluster view.
const (
	// memberStatusTimeout is how long a member has to answer its status
	// subject before the view calls it unreachable.
	memberStatusTimeout = time.Second
	// clusterViewMaxAge is how long a collected view is served again: a
	// page open in many browsers, or a client polling in a loop, costs
	// the cluster at most one status request per member this often.
	clusterViewMaxAge = 500 * time.Millisecond
	// maxStatusRequests bounds the status requests in flight per view.
	maxStatusRequests = 16
)

// pageSecurityHeaders keep the page to its own files: no script,
// style or frame from anywhere else.
var pageSecurityHeaders = map[string]string{
	"Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; base-uri 'none'; frame-ancestors 'none'; form-action 'none'",
	"X-Content-Type-Options":  "nosniff",
	"Referrer-Policy":         "no-referrer",
	"Cache-Control":           "no-cache",
}

// pageHandler serves the status page: GET / is web/index.html and GET
// /ui/NAME the other files of web/.
func pageHandler() http.Handler {
	sub, err := fs.Sub(webFiles, "web")
	if err != nil {
		panic(fmt.Sprintf("node: embedded web files: %v", err)) // a build without web/ is broken
	}
	files := http.StripPrefix("/ui/", http.FileServerFS(sub))
	mux := http.NewServeMux()
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.ServeFileFS(w, r, sub, "index.html")
	})
	mux.Handle("GET /ui/", files)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for k, v := range pageSecurityHeaders {
			w.Header().Set(k, v)
		}
		mux.ServeHTTP(w, r)
	})
}

// clusterViews keeps the last cluster view for clusterViewMaxAge and
// collects one at a time: callers that come while one is collected wait
// for it. The zero value is ready.
type clusterViews struct {
	mu       sync.Mutex
	last     bus.ClusterView
	at       time.Time
	inflight chan struct{} // closed when the running collection ends
}

// get returns a view at most clusterViewMaxAge old, collecting one with
// collect if needed. It blocks until then or until ctx ends.
func (v *clusterViews) get(ctx context.Context, collect func() bus.ClusterView) (bus.ClusterView, error) {
	for {
		v.mu.Lock()
		if !v.at.IsZero() && time.Since(v.at) < clusterViewMaxAge {
			view := v.last
			v.mu.Unlock()
			return view, nil
		}
		if ch := v.inflight; ch != nil {
			v.mu.Unlock()
			select {
			case <-ch:
				continue
			case <-ctx.Done():
				return bus.ClusterView{}, ctx.Err()
			}
		}
		ch := make(chan struct{})
		v.inflight = ch
		v.mu.Unlock()

		view := collect()

		v.mu.Lock()
		v.last, v.at, v.inflight = view, time.Now(), nil
		v.mu.Unlock()
		close(ch)
		return view, nil
	}
}

// clusterView reports the cluster as this server sees it: every member
// registered in the election in ZooKeeper, and this server, each with its
// status or marked unreachable if it does not answer within
// memberStatusTimeout; the leader; and the recent leader changes. It
// blocks for at most about memberStatusTimeout; it is called by the HTTP
// handlers, which run only while Run does.
func (s *Server) clusterView(ctx context.Context) (bus.ClusterView, error) {
	return s.views.get(ctx, s.collectClusterView)
}

func (s *Server) collectClusterView() bus.ClusterView {
	self := s.Status()
	view := bus.ClusterView{Node: s.cfg.ID, Leader: self.Leader, Epoch: self.Epoch, Elections: s.elections.list()}
	inZK := make(map[string]bool, len(self.Members))
	for _, id := range self.Members {
		inZK[id] = true
	}
	ids := append([]string(nil), self.Members...)
	if !inZK[s.cfg.ID] {
		ids = append(ids, s.cfg.ID)
	}
	rows := make([]bus.MemberView, len(ids))
	ctx, cancel := context.WithTimeout(s.runCtx, memberStatusTimeout)
	defer cancel()
	sem := make(chan struct{}, maxStatusRequests)
	var wg sync.WaitGroup
	for i, id := range ids {
		if id == s.cfg.ID {
			rows[i] = bus.MemberView{Status: self, Reachable: true}
			continue
		}
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			rows[i] = s.memberStatus(ctx, id)
		})
	}
	wg.Wait()
	for i := range rows {
		rows[i].InZooKeeper = inZK[rows[i].Node]
		if rows[i].Node == view.Leader && rows[i].Reachable {
			view.LeaderRevision = rows[i].AppliedSeq
		}
	}
	for i := range rows {
		if r := &rows[i]; r.Reachable && view.LeaderRevision > r.AppliedRevision {
			r.Lag = view.LeaderRevision - r.AppliedRevision
		}
	}
	slices.SortFunc(rows, func(a, b bus.MemberView) int { return cmp.Compare(a.Node, b.Node) })
	view.Members = rows
	view.Time = time.Now().UnixMilli()
	return view
}

// memberStatus asks node id for its status over NATS.
func (s *Server) memberStatus(ctx context.Context, id string) bus.MemberView {
	row := bus.MemberView{Status: bus.Status{Node: id}}
	nc := s.ncReady.Load()
	if nc == nil {
		row.Error = "this node is not connected to NATS"
		return row
	}
	msg, err := nc.RequestWithContext(ctx, s.subj.NodeStatus(id), nil)
	if err != nil {
		row.Error = fmt.Sprintf("no status answer: %v", err)
		return row
	}
	var st bus.Status
	if err := bus.DecodeReply(msg.Data, &st); err != nil {
		row.Error = fmt.Sprintf("bad status answer: %v", err)
		return row
	}
	if st.Node != id {
		row.Error = fmt.Sprintf("status answer names node %q", st.Node)
		return row
	}
	return bus.MemberView{Status: st, Reachable: true}
}

func (s *Server) httpCluster(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, nil); err != nil {
		writeError(w, err)
		return
	}
	view, err := s.clusterView(r.Context())
	if err != nil {
		writeError(w, bus.Errorf(bus.CodeTimeout, "cluster view: %v", err))
		return
	}
	writeJSON(w, http.StatusOK, view)
}
