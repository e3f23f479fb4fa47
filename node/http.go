package node

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zkvstore/zkv/bus"
)

// SessionStatus is the ZooKeeper session as status and readiness report
// it.
type SessionStatus interface {
	// SessionState describes the ZooKeeper session for status output.
	SessionState() string
	// Connected reports whether the ZooKeeper session is usable.
	Connected() bool
}

// HTTP limits: a slow or huge client cannot hold a server.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 16 << 10
	// httpReplyMargin is the time left, after a /v1 request's deadline,
	// to write its reply before the server's write timeout cuts the
	// connection: an answer, even an error, is always sent.
	httpReplyMargin = 2 * time.Second
)

// httpBudget is how long a /v1 request may take: longer than a forwarded
// write (ForwardTimeout looking for a leader plus WriteTimeout waiting for
// its answer) and than the longest min_revision wait, so each of those
// ends on its own timer, with its own error, before the request's deadline.
func (c Config) httpBudget() time.Duration {
	return max(c.ForwardTimeout+c.WriteTimeout, bus.MaxReadWaitMS*time.Millisecond) + time.Second
}

// startHTTP serves the HTTP API on the bound listener, over TLS when
// configured:
//
//	GET /v1/kv?prefix=P&after=K&limit=N&keys_only=true
//	                  one page of the local copy's keys with prefix P
//	GET /v1/kv/{key}  local read: 200 with the value, 404 with found:false;
//	                  ?revision=R reads the key as it was at R
//	PUT /v1/kv/{key}  write (the raw body is the value), routed to the leader;
//	                  ?create=true creates, ?if_revision=R is a compare-and-set,
//	                  ?ttl=30s gives the key a time to live
//	DELETE /v1/kv/{key} delete, routed to the leader; ?if_revision=R,
//	                  ?prefix=true deletes every key with that prefix,
//	                  ?purge=true removes the key and its history
//	GET /v1/history/{key}?limit=N  the key's versions in the local copy
//	GET /v1/changes?after=R&prefix=P&limit=N&wait_ms=W
//	                  one page of the local copy's updates after R (long poll)
//	GET /v1/watch?prefix=P&after=R  the updates as server-sent events
//	POST /v1/compact?revision=R|age=1h  drop history, through the leader
//	GET /v1/status    the node's status
//	GET /v1/cluster   the cluster as this node sees it (http_page.go)
//	GET /             the status page, its files under /ui/
//	GET /healthz      200 while the process serves
//	GET /readyz       200 only while connected to ZooKeeper and NATS, with
//	                  the cluster record read, no other cluster on the
//	                  subjects and, with --catch-up, caught up
//	GET /metrics      Prometheus metrics (docs/metrics.md)
//	/debug/pprof/     with HTTPPprof only
//
// With an auth file, /v1, /debug and the page need credentials
// (requireAuth); /healthz, /readyz and /metrics never do.
func (s *Server) startHTTP() {
	v1 := http.NewServeMux()
	v1.HandleFunc("GET /v1/kv", s.httpList)
	v1.HandleFunc("GET /v1/kv/{key...}", s.httpGet)
	v1.HandleFunc("PUT /v1/kv/{key...}", s.httpPut)
	v1.HandleFunc("DELETE /v1/kv/{key...}", s.httpDelete)
	v1.HandleFunc("GET /v1/history/{key...}", s.httpHistory)
	v1.HandleFunc("GET /v1/changes", s.httpChanges)
	v1.HandleFunc("POST /v1/compact", s.httpCompact)
	v1.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	v1.HandleFunc("GET /v1/cluster", s.httpCluster)
	budget := s.cfg.httpBudget()
	mux := http.NewServeMux()
	mux.Handle("/v1/", s.metrics.http(s.requireAuth(withDeadline(budget, v1))))
	// A stream has its own lifetime: no request deadline, a write
	// deadline per event (httpWatch).
	mux.Handle("GET /v1/watch", s.metrics.http(s.requireAuth(http.HandlerFunc(s.httpWatch))))
	if s.cfg.HTTPPprof {
		mux.Handle("/debug/pprof/", s.requireAuth(pprofMux()))
	}
	page := s.requireAuth(pageHandler())
	mux.Handle("GET /{$}", page)
	mux.Handle("GET /ui/", page)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.cfg.ID})
	})
	mux.HandleFunc("GET /readyz", s.httpReady)
	mux.Handle("GET /metrics", s.metrics.handler())
	s.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		WriteTimeout:      budget + httpReplyMargin,
		IdleTimeout:       httpIdleTimeout,
		MaxHeaderBytes:    httpMaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	srv, ln := s.httpSrv, s.listener
	if tlsCfg := s.web.serverTLS(); tlsCfg != nil {
		ln = tls.NewListener(ln, tlsCfg)
	}
	users := 0
	if s.web.users != nil {
		users = s.web.users.Users()
	}
	s.log.Info("http api", "addr", s.HTTPAddr(), "tls", s.web.tls.Load() != nil,
		"client_certs", s.cfg.HTTPTLSClientCA != "", "auth_users", users, "pprof", s.cfg.HTTPPprof)
	if s.web.warning != "" {
		s.log.Warn("http api open to the network without authentication", "addr", s.HTTPAddr(),
			"fix", "bind --host to loopback, or give --http-auth-file or --http-tls-client-ca")
	}
	s.goFunc(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	})
}

// withDeadline gives each request a context that ends after budget.
func withDeadline(budget time.Duration, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), budget)
		defer cancel()
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// pprofMux serves net/http/pprof's handlers.
func pprofMux() http.Handler {
	m := http.NewServeMux()
	m.HandleFunc("/debug/pprof/", pprof.Index)
	m.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	m.HandleFunc("/debug/pprof/profile", pprof.Profile)
	m.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	m.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return m
}

func (s *Server) httpGet(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, readParams); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	req := bus.ReadRequest{Key: r.PathValue("key"), Consistency: q.Get("consistency")}
	for name, dst := range map[string]any{"min_revision": &req.MinRevision, "wait_ms": &req.WaitMS, "revision": &req.Revision} {
		if v := q.Get(name); v != "" {
			if _, err := fmt.Sscan(v, dst); err != nil {
				writeError(w, bus.Errorf(bus.CodeBadRequest, "%s=%q: not a number", name, v))
				return
			}
		}
	}
	if err := req.Validate(); err != nil {
		writeError(w, err)
		return
	}
	capWait(r.Context(), &req)
	reply, err := s.Read(r.Context(), req)
	if err != nil {
		writeError(w, err)
		return
	}
	status := http.StatusOK
	if !reply.Found {
		status = http.StatusNotFound
	}
	writeJSON(w, status, reply)
}

func (s *Server) httpPut(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, bus.MaxValueBytes))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		writeError(w, bus.Errorf(bus.CodeValueTooLarge, "value is over %d bytes", bus.MaxValueBytes))
		return
	}
	if err != nil {
		writeError(w, bus.Errorf(bus.CodeBadRequest, "read body: %v", err))
		return
	}
	wr := bus.WriteRequest{Key: r.PathValue("key"), Value: string(body)}
	create, err := queryBool(r, "create")
	if err != nil {
		writeError(w, err)
		return
	}
	if create {
		wr.Op = bus.OpCreate
	}
	if wr.TTLMS, err = queryDuration(r, "ttl", bus.MaxTTLMS*time.Millisecond); err != nil {
		writeError(w, err)
		return
	}
	s.httpWrite(w, r, wr)
}

func (s *Server) httpDelete(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1))
	if err != nil || len(body) > 0 {
		writeError(w, bus.Errorf(bus.CodeBadRequest, "a delete takes no body"))
		return
	}
	wr := bus.WriteRequest{Op: bus.OpDelete, Key: r.PathValue("key")}
	prefix, err := queryBool(r, "prefix")
	if err != nil {
		writeError(w, err)
		return
	}
	purge, err := queryBool(r, "purge")
	if err != nil {
		writeError(w, err)
		return
	}
	switch {
	case prefix && purge:
		writeError(w, bus.Errorf(bus.CodeBadRequest, "prefix=true and purge=true: give one"))
		return
	case prefix:
		wr.Prefix = true
	case purge:
		wr.Op = bus.OpPurge
	}
	s.httpWrite(w, r, wr)
}

// writeParams are the query parameters a write takes, by method.
var writeParams = map[string][]string{
	http.MethodPut:    {"acks", "if_revision", "create", "request_id", "ttl"},
	http.MethodDelete: {"acks", "if_revision", "request_id", "prefix", "purge"},
	http.MethodPost:   compactParams,
}

// readParams are the query parameters a read takes.
var readParams = []string{"consistency", "min_revision", "wait_ms", "revision"}

// listParams are the query parameters a list takes.
var listParams = []string{"prefix", "after", "limit", "keys_only"}

// checkParams refuses a query parameter the request does not take, or one
// given twice: a misspelt if_revision must not turn a conditional write
// into an unconditional one, nor a misspelt prefix a list of some keys
// into a list of all.
func checkParams(r *http.Request, allowed []string) error {
	for name, vals := range r.URL.Query() {
		if !slices.Contains(allowed, name) {
			return bus.Errorf(bus.CodeBadRequest, "query parameter %q: a %s of %s takes %s", name, r.Method, r.URL.Path, strings.Join(allowed, ", "))
		}
		if len(vals) > 1 {
			return bus.Errorf(bus.CodeBadRequest, "query parameter %q given %d times", name, len(vals))
		}
	}
	return nil
}

// httpWrite adds the query's acks, if_revision and request_id to wr and
// sends it to the leader.
func (s *Server) httpWrite(w http.ResponseWriter, r *http.Request, wr bus.WriteRequest) {
	if err := checkParams(r, writeParams[r.Method]); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	wr.RequestID = q.Get("request_id")
	wr.Acks = q.Get("acks")
	if wr.Acks != "" {
		if err := bus.ValidAcks(wr.Acks); err != nil {
			writeError(w, bus.Errorf(bus.CodeBadRequest, "acks: %v", err))
			return
		}
	}
	if q.Has("if_revision") {
		rev, err := strconv.ParseUint(q.Get("if_revision"), 10, 64)
		if err != nil {
			writeError(w, bus.Errorf(bus.CodeBadRequest, "if_revision %q: want a revision, 0 or more", q.Get("if_revision")))
			return
		}
		wr.IfRevision = &rev
	}
	reply, err := s.Write(r.Context(), wr)
	if err != nil {
		if r.Context().Err() != nil {
			err = bus.Errorf(bus.CodeTimeout, "no answer within %s: %v", s.cfg.httpBudget(), err)
		}
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// httpList answers one page of a list from the local copy.
func (s *Server) httpList(w http.ResponseWriter, r *http.Request) {
	if err := checkParams(r, listParams); err != nil {
		writeError(w, err)
		return
	}
	q := r.URL.Query()
	req := bus.ListRequest{Prefix: q.Get("prefix"), After: q.Get("after")}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil {
			writeError(w, bus.Errorf(bus.CodeBadRequest, "limit %q: want a number from 0 to %d", v, bus.MaxListPage))
			return
		}
		req.Limit = n
	}
	switch v := q.Get("keys_only"); v {
	case "", "false":
	case "true":
		req.KeysOnly = true
	default:
		writeError(w, bus.Errorf(bus.CodeBadRequest, "keys_only %q: want true or false", v))
		return
	}
	reply, err := s.List(req)
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

// capWait shortens a min_revision read's wait so that it ends, answering
// stale, a little before ctx does; the budget normally exceeds the longest
// wait, so this is a safety net.
func capWait(ctx context.Context, req *bus.ReadRequest) {
	dl, ok := ctx.Deadline()
	if !ok || req.Consistency != bus.ConsistencyMinRevision {
		return
	}
	wait := time.Duration(req.WaitMS) * time.Millisecond
	if wait == 0 {
		wait = bus.DefaultReadWaitMS * time.Millisecond
	}
	if left := time.Until(dl) - 100*time.Millisecond; wait > left {
		req.WaitMS = max(int(left/time.Millisecond), 1)
	}
}

func (s *Server) httpReady(w http.ResponseWriter, _ *http.Request) {
	ready, why := s.readiness()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "zookeeper": s.zk.Connected(), "nats": s.natsState() == "connected", "not_ready": why})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func writeError(w http.ResponseWriter, err error) {
	e := bus.AsError(err)
	writeJSON(w, e.HTTPStatus(), bus.ErrorBody{Error: e})
}
