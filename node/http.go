package node

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"zkv/bus"
)

// HTTP limits: a slow or huge client cannot hold a server.
const (
	httpReadHeaderTimeout = 5 * time.Second
	httpReadTimeout       = 10 * time.Second
	httpIdleTimeout       = 60 * time.Second
	httpMaxHeaderBytes    = 16 << 10
)

// startHTTP serves the HTTP API on the bound listener:
//
//	GET /v1/kv/{key}  local read: 200 with the value, 404 with found:false
//	PUT /v1/kv/{key}  write (the raw body is the value), routed to the leader
//	GET /v1/status    the node's status
//	GET /healthz      200 while the process serves
//	GET /readyz       200 only while connected to ZooKeeper and NATS, with
//	                  the cluster record read, no other cluster on the
//	                  subjects and, with --catch-up, caught up
func (s *Server) startHTTP() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/kv/{key...}", s.httpGet)
	mux.HandleFunc("PUT /v1/kv/{key...}", s.httpPut)
	mux.HandleFunc("GET /v1/status", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, s.Status())
	})
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok", "node": s.cfg.ID})
	})
	mux.HandleFunc("GET /readyz", s.httpReady)
	s.httpSrv = &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: httpReadHeaderTimeout,
		ReadTimeout:       httpReadTimeout,
		// A write may wait ForwardTimeout for a leader.
		WriteTimeout:   s.cfg.ForwardTimeout + 5*time.Second,
		IdleTimeout:    httpIdleTimeout,
		MaxHeaderBytes: httpMaxHeaderBytes,
	}
	srv, ln := s.httpSrv, s.listener
	s.goFunc(func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			s.log.Error("http server stopped", "err", err)
		}
	})
}

func (s *Server) httpGet(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	req := bus.ReadRequest{Key: r.PathValue("key"), Consistency: q.Get("consistency")}
	for name, dst := range map[string]any{"min_revision": &req.MinRevision, "wait_ms": &req.WaitMS} {
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
	reply, err := s.Write(r.Context(), bus.WriteRequest{Key: r.PathValue("key"), Value: string(body)})
	if err != nil {
		writeError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, reply)
}

func (s *Server) httpReady(w http.ResponseWriter, _ *http.Request) {
	ready, why := s.readiness()
	status := http.StatusOK
	if !ready {
		status = http.StatusServiceUnavailable
	}
	writeJSON(w, status, map[string]any{"ready": ready, "zookeeper": s.elect.Connected(), "nats": s.natsState() == "connected", "not_ready": why})
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
