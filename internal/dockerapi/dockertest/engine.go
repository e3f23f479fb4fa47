// Package dockertest fakes the Docker Engine for tests: Engine serves the
// few Docker Engine API endpoints of package dockerapi on a unix socket,
// for containers a test adds and changes.
package dockertest

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/zkvstore/zkv/internal/dockerapi"
)

// Container is one container of an Engine. Tests change its fields only
// through Engine.With, as the engine's handlers run on other goroutines.
type Container struct {
	ID, Name    string
	Labels      map[string]string
	Env         []string
	Ports       map[string]string // "8001/tcp" -> published host port
	Running     bool
	ExitCode    int
	IgnoreTerm  bool   // SIGTERM does nothing
	ExitOnStart bool   // the process exits at once after a start
	Logs        string // what the process printed
	stopped     chan struct{}
}

// Engine serves GET /containers/json, GET /containers/{id}/json,
// GET /containers/{id}/logs and POST /containers/{id}/{kill,start,wait}
// (also under /v1.41) on a unix socket, and records every call.
type Engine struct {
	socket string

	mu         sync.Mutex
	containers []*Container
	calls      []string
}

// New starts an engine on a socket in a temporary directory of t; it
// stops when t ends.
func New(t testing.TB) *Engine {
	t.Helper()
	e := &Engine{socket: filepath.Join(t.TempDir(), "docker.sock")}
	l, err := net.Listen("unix", e.socket)
	if err != nil {
		t.Fatalf("listen on %s: %v", e.socket, err)
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /containers/json", e.list)
	mux.HandleFunc("GET /containers/{id}/json", e.inspect)
	mux.HandleFunc("GET /containers/{id}/logs", e.logs)
	mux.HandleFunc("POST /containers/{id}/kill", e.kill)
	mux.HandleFunc("POST /containers/{id}/start", e.start)
	mux.HandleFunc("POST /containers/{id}/wait", e.wait)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		e.mu.Lock()
		e.calls = append(e.calls, r.Method+" "+r.URL.Path+queryNote(r))
		e.mu.Unlock()
		// Versioned paths ("/v1.41/containers/...") are served alike.
		if rest, ok := strings.CutPrefix(r.URL.Path, "/v1.41"); ok {
			r.URL.Path = rest
		}
		mux.ServeHTTP(w, r)
	}))
	srv.Listener = l
	srv.Start()
	t.Cleanup(srv.Close)
	return e
}

// Socket is the path of the engine's unix socket.
func (e *Engine) Socket() string { return e.socket }

// queryNote is " signal=X" for kills, for the call log.
func queryNote(r *http.Request) string {
	if s := r.URL.Query().Get("signal"); s != "" {
		return " signal=" + s
	}
	return ""
}

// Add adds a running container of compose service svc in project p, named
// p_svc_1.
func (e *Engine) Add(p, svc string, env []string, ports map[string]string) *Container {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &Container{
		ID:      fmt.Sprintf("%064x", len(e.containers)+1),
		Name:    p + "_" + svc + "_1",
		Labels:  map[string]string{dockerapi.LabelComposeProject: p, dockerapi.LabelComposeService: svc},
		Env:     env,
		Ports:   ports,
		Running: true,
		stopped: make(chan struct{}),
	}
	e.containers = append(e.containers, c)
	return c
}

// With runs f holding the engine's lock: tests change and read containers
// only through it.
func (e *Engine) With(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
}

// Running reports whether c runs.
func (e *Engine) Running(c *Container) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return c.Running
}

// Calls are the requests served so far: "POST /containers/<id>/kill
// signal=SIGKILL".
func (e *Engine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

// find returns the container with ID (or ID prefix, or name) ref; e.mu is
// held.
func (e *Engine) find(ref string) *Container {
	for _, c := range e.containers {
		if c.ID == ref || c.Name == ref || (len(ref) >= 12 && strings.HasPrefix(c.ID, ref)) {
			return c
		}
	}
	return nil
}

// container returns the container the request's path names, or answers
// 404 and returns nil; e.mu is held.
func (e *Engine) container(w http.ResponseWriter, r *http.Request) *Container {
	c := e.find(r.PathValue("id"))
	if c == nil {
		apiError(w, http.StatusNotFound, "No such container: "+r.PathValue("id"))
	}
	return c
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (e *Engine) list(w http.ResponseWriter, r *http.Request) {
	var filters map[string][]string
	if err := json.Unmarshal([]byte(r.URL.Query().Get("filters")), &filters); err != nil {
		apiError(w, http.StatusBadRequest, "bad filters: "+err.Error())
		return
	}
	if r.URL.Query().Get("all") != "1" {
		apiError(w, http.StatusBadRequest, "the driver must list stopped containers too")
		return
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	out := []dockerapi.Summary{}
	for _, c := range e.containers {
		match := true
		for _, l := range filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			if c.Labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, dockerapi.Summary{ID: c.ID, Names: []string{"/" + c.Name}, Labels: c.Labels})
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (e *Engine) inspect(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.container(w, r)
	if c == nil {
		return
	}
	ct := dockerapi.Container{
		ID:     c.ID,
		Name:   "/" + c.Name,
		State:  dockerapi.State{Running: c.Running, ExitCode: c.ExitCode},
		Config: dockerapi.Config{Image: "github.com/zkvstore/zkv/kvserver:test", Env: c.Env, Labels: c.Labels},
	}
	if c.Running {
		ct.NetworkSettings.Ports = map[string][]dockerapi.PortBinding{}
		for port, host := range c.Ports {
			ct.NetworkSettings.Ports[port] = append(ct.NetworkSettings.Ports[port], dockerapi.PortBinding{HostIP: "0.0.0.0", HostPort: host})
		}
	}
	_ = json.NewEncoder(w).Encode(ct)
}

// stopLocked marks c stopped with code; e.mu is held.
func (c *Container) stopLocked(code int) {
	if c.Running {
		c.Running, c.ExitCode = false, code
		close(c.stopped)
	}
}

func (e *Engine) kill(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.container(w, r)
	switch {
	case c == nil:
		return
	case !c.Running:
		apiError(w, http.StatusConflict, "Container "+c.ID+" is not running")
		return
	}
	switch sig := r.URL.Query().Get("signal"); sig {
	case "SIGKILL", "":
		c.stopLocked(137)
	case "SIGTERM":
		if !c.IgnoreTerm {
			c.stopLocked(0)
		}
	default:
		apiError(w, http.StatusBadRequest, "unexpected signal "+sig)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Engine) start(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.container(w, r)
	switch {
	case c == nil:
		return
	case c.Running:
		w.WriteHeader(http.StatusNotModified)
		return
	}
	c.Running, c.ExitCode, c.stopped = true, 0, make(chan struct{})
	if c.ExitOnStart {
		c.stopLocked(2)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *Engine) wait(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("condition") != "not-running" {
		apiError(w, http.StatusBadRequest, "the driver waits with condition=not-running")
		return
	}
	e.mu.Lock()
	c := e.container(w, r)
	if c == nil {
		e.mu.Unlock()
		return
	}
	stopped := c.stopped
	e.mu.Unlock()
	select {
	case <-stopped:
	case <-r.Context().Done():
		return
	}
	e.mu.Lock()
	code := c.ExitCode
	e.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": code})
}

// logs answers with the container's output in the engine's stream frames
// (stdout and stderr alternating line by line).
func (e *Engine) logs(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	c := e.container(w, r)
	var text string
	if c != nil {
		text = c.Logs
	}
	e.mu.Unlock()
	if c == nil {
		return
	}
	lines := strings.SplitAfter(text, "\n")
	if n, err := strconv.Atoi(r.URL.Query().Get("tail")); err == nil && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if l == "" {
			continue
		}
		_, _ = w.Write(Frame(byte(1+i%2), l))
	}
}

// Frame is s in one of the engine's stream frames: stream (1 stdout, 2
// stderr), three zero bytes, the big-endian size of s, then s.
func Frame(stream byte, s string) []byte {
	hdr := make([]byte, 8, 8+len(s))
	hdr[0] = stream
	binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
	return append(hdr, s...)
}
