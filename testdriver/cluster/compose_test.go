package cluster

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeContainer is one container of fakeEngine.
type fakeContainer struct {
	id, name    string
	labels      map[string]string
	env         []string
	ports       map[string]string // "8001/tcp" -> published host port
	running     bool
	exitCode    int
	ignoreTerm  bool   // SIGTERM does nothing
	exitOnStart bool   // the process exits at once after a start
	logs        string // what the process printed
	stopped     chan struct{}
}

// fakeEngine serves the few Docker Engine API endpoints Compose uses
// on a unix socket.
type fakeEngine struct {
	t      *testing.T
	socket string

	mu         sync.Mutex
	containers []*fakeContainer
	calls      []string
}

func newFakeEngine(t *testing.T) *fakeEngine {
	t.Helper()
	e := &fakeEngine{t: t, socket: filepath.Join(t.TempDir(), "docker.sock")}
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

// queryNote is " signal=X" for kills, for the call log.
func queryNote(r *http.Request) string {
	if s := r.URL.Query().Get("signal"); s != "" {
		return " signal=" + s
	}
	return ""
}

// add adds a running container of service svc in project p.
func (e *fakeEngine) add(p, svc string, env []string, ports map[string]string) *fakeContainer {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := &fakeContainer{
		id:      fmt.Sprintf("%064x", len(e.containers)+1),
		name:    p + "_" + svc + "_1",
		labels:  map[string]string{LabelComposeProject: p, LabelComposeService: svc},
		env:     env,
		ports:   ports,
		running: true,
		stopped: make(chan struct{}),
	}
	e.containers = append(e.containers, c)
	return c
}

// with runs f holding the engine's lock: tests change and read containers
// only through it, as the handlers run on other goroutines.
func (e *fakeEngine) with(f func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	f()
}

// running reports whether c runs.
func (e *fakeEngine) running(c *fakeContainer) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return c.running
}

// find returns the container with ID (or ID prefix, or name) ref.
func (e *fakeEngine) find(ref string) *fakeContainer {
	for _, c := range e.containers {
		if c.id == ref || c.name == ref || (len(ref) >= 12 && strings.HasPrefix(c.id, ref)) {
			return c
		}
	}
	return nil
}

func (e *fakeEngine) Calls() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return slices.Clone(e.calls)
}

func apiError(w http.ResponseWriter, code int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(map[string]string{"message": msg})
}

func (e *fakeEngine) list(w http.ResponseWriter, r *http.Request) {
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
	out := []containerSummary{}
	for _, c := range e.containers {
		match := true
		for _, l := range filters["label"] {
			k, v, _ := strings.Cut(l, "=")
			if c.labels[k] != v {
				match = false
			}
		}
		if match {
			out = append(out, containerSummary{ID: c.id, Names: []string{"/" + c.name}, Labels: c.labels})
		}
	}
	_ = json.NewEncoder(w).Encode(out)
}

func (e *fakeEngine) inspect(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(r.PathValue("id"))
	if c == nil {
		apiError(w, http.StatusNotFound, "No such container: "+r.PathValue("id"))
		return
	}
	var ct containerJSON
	ct.ID, ct.Name = c.id, "/"+c.name
	ct.State.Running, ct.State.ExitCode = c.running, c.exitCode
	ct.Config.Image, ct.Config.Env, ct.Config.Labels = "zkv/kvserver:test", c.env, c.labels
	if c.running {
		ct.NetworkSettings.Ports = map[string][]struct {
			HostIP   string `json:"HostIp"`
			HostPort string `json:"HostPort"`
		}{}
		for port, host := range c.ports {
			ct.NetworkSettings.Ports[port] = append(ct.NetworkSettings.Ports[port], struct {
				HostIP   string `json:"HostIp"`
				HostPort string `json:"HostPort"`
			}{"0.0.0.0", host})
		}
	}
	_ = json.NewEncoder(w).Encode(ct)
}

// stopLocked marks c stopped with code; e.mu is held.
func (c *fakeContainer) stopLocked(code int) {
	if c.running {
		c.running, c.exitCode = false, code
		close(c.stopped)
	}
}

func (e *fakeEngine) kill(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(r.PathValue("id"))
	switch {
	case c == nil:
		apiError(w, http.StatusNotFound, "No such container")
		return
	case !c.running:
		apiError(w, http.StatusConflict, "Container "+c.id+" is not running")
		return
	}
	switch sig := r.URL.Query().Get("signal"); sig {
	case "SIGKILL", "":
		c.stopLocked(137)
	case "SIGTERM":
		if !c.ignoreTerm {
			c.stopLocked(0)
		}
	default:
		apiError(w, http.StatusBadRequest, "unexpected signal "+sig)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *fakeEngine) start(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	defer e.mu.Unlock()
	c := e.find(r.PathValue("id"))
	switch {
	case c == nil:
		apiError(w, http.StatusNotFound, "No such container")
		return
	case c.running:
		w.WriteHeader(http.StatusNotModified)
		return
	}
	c.running, c.exitCode, c.stopped = true, 0, make(chan struct{})
	if c.exitOnStart {
		c.stopLocked(2)
	}
	w.WriteHeader(http.StatusNoContent)
}

func (e *fakeEngine) wait(w http.ResponseWriter, r *http.Request) {
	if r.URL.Query().Get("condition") != "not-running" {
		apiError(w, http.StatusBadRequest, "the driver waits with condition=not-running")
		return
	}
	e.mu.Lock()
	c := e.find(r.PathValue("id"))
	if c == nil {
		e.mu.Unlock()
		apiError(w, http.StatusNotFound, "No such container")
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
	code := c.exitCode
	e.mu.Unlock()
	_ = json.NewEncoder(w).Encode(map[string]any{"StatusCode": code})
}

// logs answers with the container's output in the engine's stream frames
// (stdout and stderr alternating line by line).
func (e *fakeEngine) logs(w http.ResponseWriter, r *http.Request) {
	e.mu.Lock()
	c := e.find(r.PathValue("id"))
	e.mu.Unlock()
	if c == nil {
		apiError(w, http.StatusNotFound, "No such container")
		return
	}
	lines := strings.SplitAfter(c.logs, "\n")
	if n, err := strconv.Atoi(r.URL.Query().Get("tail")); err == nil && n < len(lines) {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if l == "" {
			continue
		}
		hdr := make([]byte, 8)
		hdr[0] = byte(1 + i%2)
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(l)))
		_, _ = w.Write(append(hdr, l...))
	}
}

// healthServer is a kvserver's HTTP API that answers /healthz with 503
// for the first fails requests, then 200.
func healthServer(t *testing.T, fails int32) (port string, hits *atomic.Int32) {
	t.Helper()
	hits = new(atomic.Int32)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/healthz" {
			http.NotFound(w, r)
			return
		}
		if hits.Add(1) <= fails {
			w.WriteHeader(http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("ok\n"))
	}))
	t.Cleanup(srv.Close)
	_, port, _ = net.SplitHostPort(srv.Listener.Addr().String())
	return port, hits
}

// srvrServer answers ZooKeeper's srvr command with mode.
func srvrServer(t *testing.T, mode string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			conn, err := l.Accept()
			if err != nil {
				return
			}
			buf := make([]byte, 4)
			if _, err := conn.Read(buf); err == nil && string(buf) == "srvr" {
				fmt.Fprintf(conn, "Zookeeper version: 3.8.0-test, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\nMode: %s\nNode count: 5\n", mode)
			}
			conn.Close()
		}
	}()
	t.Cleanup(func() { l.Close(); <-done })
	_, port, _ := net.SplitHostPort(l.Addr().String())
	return port
}

// composeProject fakes a project "p" of compose/docker-compose.yml: n1..n3
// with health servers, zoo1..zoo3 answering srvr, and nats.
type composeProject struct {
	engine *fakeEngine
	nodes  map[string]*fakeContainer
	health map[string]*atomic.Int32
	zk     map[string]*fakeContainer
}

func newComposeProject(t *testing.T, healthFails int32) *composeProject {
	t.Helper()
	p := &composeProject{engine: newFakeEngine(t), nodes: map[string]*fakeContainer{}, health: map[string]*atomic.Int32{}, zk: map[string]*fakeContainer{}}
	for i, svc := range DefaultComposeNodes() {
		port, hits := healthServer(t, healthFails)
		cport := strconv.Itoa(8001 + i)
		p.nodes[svc] = p.engine.add("p", svc, []string{"ZKV_ID=" + svc, "ZKV_PORT=" + cport}, map[string]string{cport + "/tcp": port})
		p.health[svc] = hits
	}
	for i, svc := range DefaultComposeZooKeeper() {
		mode := "follower"
		if i == 1 {
			mode = "leader"
		}
		p.zk[svc] = p.engine.add("p", svc, []string{"ZOO_MY_ID=" + strconv.Itoa(i+1)}, map[string]string{"2181/tcp": srvrServer(t, mode)})
	}
	p.engine.add("p", "nats", nil, map[string]string{"4222/tcp": "14222"})
	// Another project's n1 and a one-off container must be ignored.
	p.engine.add("other", "n1", []string{"ZKV_ID=x1"}, nil)
	oneOff := p.engine.add("p", "n1", []string{"ZKV_ID=n1"}, nil)
	p.engine.with(func() { oneOff.labels[LabelComposeOneOff] = "True" })
	return p
}

func (p *composeProject) cluster(t *testing.T, cfg ComposeConfig) *Compose {
	t.Helper()
	cfg.Socket = p.engine.socket
	if cfg.Project == "" {
		cfg.Project = "p"
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := NewCompose(ctx, cfg)
	if err != nil {
		t.Fatalf("NewCompose: %v", err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

func testContext(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	return ctx
}

func TestDockerClusterDiscovery(t *testing.T) {
	p := newComposeProject(t, 0)
	c := p.cluster(t, ComposeConfig{})
	if got, want := c.Nodes(), []string{"n1", "n2", "n3"}; !slices.Equal(got, want) {
		t.Errorf("Nodes() = %v, want %v", got, want)
	}
	if got, want := c.NATSURL(), "nats://127.0.0.1:14222"; got != want {
		t.Errorf("NATSURL() = %q, want %q (the published port of the nats service)", got, want)
	}
	if got, want := c.Describe("n2"), "container p_n2_1"; got != want {
		t.Errorf("Describe(n2) = %q, want %q", got, want)
	}
	if got, want := c.ZooKeeperMembers(), []string{"zoo1", "zoo2", "zoo3"}; !slices.Equal(got, want) {
		t.Errorf("ZooKeeperMembers() = %v, want %v", got, want)
	}
	ctx := testContext(t)
	u, err := c.HTTPURL(ctx, "n1")
	if err != nil || !strings.HasPrefix(u, "http://127.0.0.1:") {
		t.Errorf("HTTPURL(n1) = %q, %v; want the published port on 127.0.0.1", u, err)
	}
	v := c.Versions(ctx)
	if v["zookeeper"] != "3.8.0-test" || v["kvserver image"] != "zkv/kvserver:test" {
		t.Errorf("Versions() = %v", v)
	}
}

func TestDockerClusterInNetwork(t *testing.T) {
	p := newComposeProject(t, 0)
	c := p.cluster(t, ComposeConfig{InNetwork: true, HTTP: map[string]string{"n3": "http://10.0.0.3:9000/"}})
	if got, want := c.NATSURL(), "nats://nats:4222"; got != want {
		t.Errorf("NATSURL() = %q, want %q", got, want)
	}
	ctx := testContext(t)
	for id, want := range map[string]string{"n1": "http://n1:8001", "n2": "http://n2:8002", "n3": "http://10.0.0.3:9000"} {
		if got, err := c.HTTPURL(ctx, id); got != want || err != nil {
			t.Errorf("HTTPURL(%s) = %q, %v; want %q", id, got, err, want)
		}
	}
}

func TestDockerClusterKillAndStart(t *testing.T) {
	p := newComposeProject(t, 3)
	c := p.cluster(t, ComposeConfig{APIVersion: "1.41"})
	ctx := testContext(t)

	if err := c.Stop(ctx, "n2", StopKill); err != nil {
		t.Fatalf("Stop(n2, kill): %v", err)
	}
	if p.engine.running(p.nodes["n2"]) {
		t.Fatal("n2 still runs after Stop")
	}
	// A second stop of a stopped container is fine.
	if err := c.Stop(ctx, "n2", StopKill); err != nil {
		t.Fatalf("Stop of a stopped container: %v", err)
	}
	if err := c.Start(ctx, "n2"); err != nil {
		t.Fatalf("Start(n2): %v", err)
	}
	if !p.engine.running(p.nodes["n2"]) {
		t.Fatal("n2 does not run after Start")
	}
	if hits := p.health["n2"].Load(); hits < 4 {
		t.Errorf("/healthz was asked %d times; Start must poll until it answers 200 (after 3 failures)", hits)
	}
	want := []string{
		"POST /containers/" + p.nodes["n2"].id + "/kill signal=SIGKILL",
		"POST /containers/" + p.nodes["n2"].id + "/wait",
		"POST /containers/" + p.nodes["n2"].id + "/start",
	}
	calls := strings.Join(p.engine.Calls(), "\n")
	for _, w := range want {
		if !strings.Contains(calls, strings.Replace(w, "/containers", "/v1.41/containers", 1)) {
			t.Errorf("no call %q (with the API version) among:\n%s", w, calls)
		}
	}
}

func TestDockerClusterStopTerm(t *testing.T) {
	p := newComposeProject(t, 0)
	c := p.cluster(t, ComposeConfig{StopTimeout: 200 * time.Millisecond})
	ctx := testContext(t)

	if err := c.Stop(ctx, "n1", StopTerm); err != nil {
		t.Fatalf("Stop(n1, term) of a container that exits 0: %v", err)
	}
	p.engine.with(func() { p.nodes["n3"].ignoreTerm = true })
	err := c.Stop(ctx, "n3", StopTerm)
	if err == nil || !strings.Contains(err.Error(), "did not exit within") {
		t.Fatalf("Stop(n3, term) of a container ignoring SIGTERM = %v, want a 'did not exit within' error", err)
	}
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("error %v does not wrap the wait's deadline", err)
	}
	if p.engine.running(p.nodes["n3"]) {
		t.Error("n3 still runs: Stop must kill it after the stop timeout")
	}
	calls := strings.Join(p.engine.Calls(), "\n")
	if !strings.Contains(calls, p.nodes["n3"].id+"/kill signal=SIGTERM") || !strings.Contains(calls, p.nodes["n3"].id+"/kill signal=SIGKILL") {
		t.Errorf("want SIGTERM, then SIGKILL for n3; calls:\n%s", calls)
	}
}

func TestDockerClusterStartExits(t *testing.T) {
	p := newComposeProject(t, 1<<30)
	c := p.cluster(t, ComposeConfig{})
	ctx := testContext(t)
	if err := c.Stop(ctx, "n1", StopKill); err != nil {
		t.Fatal(err)
	}
	p.engine.with(func() {
		p.nodes["n1"].exitOnStart = true
		p.nodes["n1"].logs = "line 1\nline 2\nkvserver: --zookeeper: bad address\n"
	})
	err := c.Start(ctx, "n1")
	if !errors.Is(err, ErrContainerExited) {
		t.Fatalf("Start of a container that exits = %v, want ErrContainerExited", err)
	}
	if !strings.Contains(err.Error(), "kvserver: --zookeeper: bad address") || !strings.Contains(err.Error(), "status 2") {
		t.Errorf("error %q lacks the exit status or the log tail", err)
	}
}

func TestDockerClusterZooKeeper(t *testing.T) {
	p := newComposeProject(t, 0)
	c := p.cluster(t, ComposeConfig{})
	ctx := testContext(t)
	if mode, err := c.ZooKeeperMode(ctx, "zoo2"); mode != "leader" || err != nil {
		t.Errorf("ZooKeeperMode(zoo2) = %q, %v; want leader", mode, err)
	}
	if err := c.KillZooKeeper(ctx, "zoo2"); err != nil {
		t.Fatalf("KillZooKeeper: %v", err)
	}
	if p.engine.running(p.zk["zoo2"]) {
		t.Fatal("zoo2 still runs")
	}
	if _, err := c.ZooKeeperMode(ctx, "zoo2"); err == nil {
		t.Error("ZooKeeperMode of a killed member succeeded")
	}
	if err := c.StartZooKeeper(ctx, "zoo2"); err != nil {
		t.Fatalf("StartZooKeeper: %v", err)
	}
	if _, err := c.ZooKeeperMode(ctx, "zoo9"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("ZooKeeperMode(zoo9) = %v, want ErrUnknownNode", err)
	}
}

func TestDockerClusterErrors(t *testing.T) {
	p := newComposeProject(t, 0)
	ctx := testContext(t)

	c := p.cluster(t, ComposeConfig{})
	if err := c.Stop(ctx, "n9", StopKill); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("Stop(n9) = %v, want ErrUnknownNode", err)
	}
	if err := c.Start(ctx, "n9"); !errors.Is(err, ErrUnknownNode) {
		t.Errorf("Start(n9) = %v, want ErrUnknownNode", err)
	}
	if err := c.Stop(ctx, "n1", Stop("sighup")); err == nil {
		t.Error("Stop with an unknown way succeeded")
	}

	_, err := NewCompose(ctx, ComposeConfig{Project: "p", Socket: p.engine.socket, Nodes: []string{"n1", "n7"}})
	if !errors.Is(err, ErrNoContainer) {
		t.Errorf("NewCompose with a service without container = %v, want ErrNoContainer", err)
	}
	_, err = NewCompose(ctx, ComposeConfig{Project: "nope", Socket: p.engine.socket})
	if !errors.Is(err, ErrNoContainer) {
		t.Errorf("NewCompose of a missing project = %v, want ErrNoContainer", err)
	}
	_, err = NewCompose(ctx, ComposeConfig{Project: "p", Socket: filepath.Join(t.TempDir(), "none.sock")})
	if err == nil || !strings.Contains(err.Error(), "none.sock") {
		t.Errorf("NewCompose on a missing socket = %v, want an error naming it", err)
	}

	// An engine error keeps its status for errors.As.
	api := newDockerAPI(p.engine.socket, "")
	_, err = api.inspect(ctx, "missing")
	var apiErr *DockerAPIError
	if !errors.As(err, &apiErr) || apiErr.StatusCode != http.StatusNotFound || !strings.Contains(apiErr.Message, "No such container") {
		t.Errorf("inspect(missing) = %v, want a 404 DockerAPIError", err)
	}
}

func TestDockerClusterOwnProject(t *testing.T) {
	p := newComposeProject(t, 0)
	host, err := os.Hostname()
	if err != nil {
		t.Skip(err)
	}
	self := p.engine.add("p", "driver", nil, nil)
	p.engine.with(func() { self.name = host }) // the fake finds containers by name too
	ctx := testContext(t)
	c, err := NewCompose(ctx, ComposeConfig{Socket: p.engine.socket, NATSURL: "nats://nats:4222"})
	if err != nil {
		t.Fatalf("NewCompose without a project, from inside a container: %v", err)
	}
	if c.Project() != "p" {
		t.Errorf("Project() = %q, want p (from the driver container's label)", c.Project())
	}
}

func TestDockerClusterSaveLogs(t *testing.T) {
	p := newComposeProject(t, 0)
	p.engine.with(func() { p.nodes["n1"].logs = "started\nleader\n" })
	c := p.cluster(t, ComposeConfig{})
	dir := filepath.Join(t.TempDir(), "logs")
	if err := c.SaveLogs(testContext(t), dir); err != nil {
		t.Fatalf("SaveLogs: %v", err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "n1.log"))
	if err != nil || string(b) != "started\nleader\n" {
		t.Errorf("n1.log = %q, %v; want both lines, demultiplexed", b, err)
	}
	if _, err := os.Stat(filepath.Join(dir, "p_n1_1.log")); err != nil {
		t.Errorf("the one-off container's log is missing: %v", err)
	}
}

func TestDockerDemuxLogs(t *testing.T) {
	frame := func(stream byte, s string) string {
		hdr := make([]byte, 8)
		hdr[0] = stream
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(s)))
		return string(hdr) + s
	}
	tests := []struct {
		name, in, want string
		err            bool
	}{
		{"empty", "", "", false},
		{"two streams", frame(1, "out\n") + frame(2, "err\n"), "out\nerr\n", false},
		{"empty frame", frame(1, "") + frame(1, "x"), "x", false},
		{"cut header", frame(1, "a") + "\x01\x00", "a", true},
		{"cut payload", frame(1, "abc")[:10], "ab", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := demuxLogs(tt.in)
			if got != tt.want || (err != nil) != tt.err {
				t.Errorf("demuxLogs = %q, %v; want %q, error %v", got, err, tt.want, tt.err)
			}
		})
	}
}
