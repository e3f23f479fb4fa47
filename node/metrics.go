package node

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/micro"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/zkvstore/zkv/bus"
)

// op is the kind of request a request metric counts.
type op uint8

// The request kinds, as the op label names them.
const (
	opRead op = iota
	opWrite
	opList
	opHistory
	opChanges
	opWatch
	opStatus
	opSnapshot
	opOther
	numOps
)

var opNames = [numOps]string{"read", "write", "list", "history", "changes", "watch", "status", "snapshot", "other"}

// face is where a request came in.
type face uint8

const (
	faceNATS face = iota
	faceHTTP
	numFaces
)

var faceNames = [numFaces]string{"nats", "http"}

// Outcome codes: "ok", every wire code, and "other" for a code this
// version does not know (a newer leader's reply relayed).
var (
	codeNames = append(append([]string{"ok"}, codesOf(bus.Codes())...), "other")
	codeIndex = func() map[string]int {
		m := make(map[string]int, len(codeNames))
		for i, c := range codeNames {
			m[c] = i
		}
		return m
	}()
)

const (
	codeOK    = 0
	numCodes  = 17 // len(codeNames), checked by a test
	codeOther = numCodes - 1
)

func codesOf(cs []bus.Code) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = string(c)
	}
	return out
}

// requestBuckets are the request latency buckets, in seconds: from a
// local read (tens of microseconds) to a write that waited for
// confirmations or an election (seconds).
var requestBuckets = []float64{0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// metrics are a server's Prometheus instruments, on a registry of its own
// (several servers may share a process, as in tests). The counters of
// events on hot paths are updated with one atomic add each; the request
// children are resolved once per (op, face, code) and kept. The gauges,
// and the counters the server keeps anyway, are read at scrape time by
// the server's collector (metrics_collect.go).
type metrics struct {
	reg *prometheus.Registry

	requests  *prometheus.CounterVec
	durations *prometheus.HistogramVec
	reqs      [numOps][numFaces][numCodes]atomic.Pointer[prometheus.Counter]
	durs      [numOps][numFaces]atomic.Pointer[prometheus.Observer]

	applied      prometheus.Counter
	replicated   prometheus.Counter
	lag          prometheus.Gauge
	forwarded    prometheus.Counter
	ackWaits     prometheus.Counter
	ackTimeouts  prometheus.Counter
	gaps         prometheus.Counter
	elections    prometheus.Counter
	takeovers    prometheus.Counter
	catchUpPages prometheus.Counter
	catchUpKeys  prometheus.Counter
	cutOffWarns  *prometheus.CounterVec
}

// newMetrics registers the instruments, the Go runtime's and the
// process's collectors, and c (the server's scrape-time collector).
func newMetrics(c prometheus.Collector) *metrics {
	m := &metrics{reg: prometheus.NewRegistry()}
	f := func(name, help string) prometheus.Counter {
		return prometheus.NewCounter(prometheus.CounterOpts{Namespace: "zkv", Name: name, Help: help})
	}
	m.requests = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "zkv", Name: "requests_total",
		Help: "Requests answered, by operation, face (nats or http) and outcome code (ok or the wire error code)."},
		[]string{"op", "face", "code"})
	m.durations = prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: "zkv", Name: "request_duration_seconds",
		Help: "Time from a request's arrival to its answer, by operation and face (watches are not timed).", Buckets: requestBuckets},
		[]string{"op", "face"})
	m.applied = f("writes_applied_total", "Updates applied to this copy: a leader's writes it took, a replica's from the replication stream.")
	m.replicated = f("writes_replicated_total", "Writes this server, as leader, applied and handed to NATS on the replication stream.")
	m.lag = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "zkv", Name: "replication_lag_seconds",
		Help: "Time from the leader's write to this replica's apply of the last update it applied (leader's clock to this server's)."})
	m.forwarded = f("writes_forwarded_total", "Writes this server forwarded to the leader as a follower.")
	m.ackWaits = f("ack_waits_total", "Writes (acks=majority or all) that waited for replicas' confirmations.")
	m.ackTimeouts = f("ack_timeouts_total", "Writes whose confirmations did not all arrive within the write timeout.")
	m.gaps = f("replication_gaps_total", "Gaps found in the replication stream (a run of missed updates each).")
	m.elections = f("election_changes_total", "Changes of the election's outcome this server saw (role, leader or epoch).")
	m.takeovers = f("leader_takeovers_total", "Times this server began taking writes as leader.")
	m.catchUpPages = f("catchup_pages_total", "Snapshot pages fetched from the leader by catch-ups.")
	m.catchUpKeys = f("catchup_keys_total", "Keys installed from snapshot pages by catch-ups.")
	m.cutOffWarns = prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: "zkv", Name: "cut_off_warnings_total",
		Help: "Warnings logged because ZooKeeper or NATS could not be reached, by what was cut off."}, []string{"from"})
	m.reg.MustRegister(m.requests, m.durations, m.applied, m.replicated, m.lag, m.forwarded, m.ackWaits, m.ackTimeouts, m.gaps,
		m.elections, m.takeovers, m.catchUpPages, m.catchUpKeys, m.cutOffWarns, c,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

// handler serves the registry in the Prometheus exposition formats.
func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}

// request is the counter of requests of o on f that ended with code.
func (m *metrics) request(o op, f face, code int) prometheus.Counter {
	p := &m.reqs[o][f][code]
	if c := p.Load(); c != nil {
		return *c
	}
	c := m.requests.WithLabelValues(opNames[o], faceNames[f], codeNames[code])
	p.Store(&c)
	return c
}

// duration is the latency histogram of requests of o on f.
func (m *metrics) duration(o op, f face) prometheus.Observer {
	p := &m.durs[o][f]
	if h := p.Load(); h != nil {
		return *h
	}
	h := m.durations.WithLabelValues(opNames[o], faceNames[f])
	p.Store(&h)
	return h
}

// answered counts a request of o on f, answered with code, that arrived
// at start.
func (m *metrics) answered(o op, f face, code int, start time.Time) {
	m.request(o, f, code).Inc()
	if o != opWatch {
		m.duration(o, f).Observe(time.Since(start).Seconds())
	}
}

// errorPrefix starts every encoded error body (bus.ErrorBody).
var errorPrefix = []byte(`{"error":`)

// replyCode is the outcome code of an encoded reply: ok unless it is an
// error body, whose code it reads.
func replyCode(data []byte) int {
	if !bytes.HasPrefix(data, errorPrefix) {
		return codeOK
	}
	var e bus.ErrorBody
	if json.Unmarshal(data, &e) != nil || e.Error == nil {
		return codeOther
	}
	if i, ok := codeIndex[string(e.Error.Code)]; ok {
		return i
	}
	return codeOther
}

// meteredRequest counts a NATS request when it is answered.
type meteredRequest struct {
	micro.Request
	m     *metrics
	op    op
	start time.Time
}

// Respond answers the request and counts it.
func (r *meteredRequest) Respond(data []byte, opts ...micro.RespondOpt) error {
	r.m.answered(r.op, faceNATS, replyCode(data), r.start)
	return r.Request.Respond(data, opts...)
}

// RespondJSON answers the request with v as JSON and counts it.
func (r *meteredRequest) RespondJSON(v any, opts ...micro.RespondOpt) error {
	data, err := json.Marshal(v)
	if err != nil {
		return micro.ErrMarshalResponse
	}
	return r.Respond(data, opts...)
}

// Error answers the request with an error and counts it.
func (r *meteredRequest) Error(code, description string, data []byte, opts ...micro.RespondOpt) error {
	r.m.answered(r.op, faceNATS, replyCode(data), r.start)
	return r.Request.Error(code, description, data, opts...)
}

// nats wraps the handler of a NATS endpoint serving o so that its answer
// is counted and timed, whenever and on whichever goroutine it is sent.
func (m *metrics) nats(o op, h micro.HandlerFunc) micro.HandlerFunc {
	return func(req micro.Request) {
		h(&meteredRequest{Request: req, m: m, op: o, start: time.Now()})
	}
}

// meteredWriter notes an HTTP answer's status and, for an error body,
// its code.
type meteredWriter struct {
	http.ResponseWriter
	status int
	code   int
	wrote  bool
}

func (w *meteredWriter) WriteHeader(status int) {
	if !w.wrote {
		w.status, w.wrote = status, true
	}
	w.ResponseWriter.WriteHeader(status)
}

func (w *meteredWriter) Write(p []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
	}
	if w.code < 0 {
		w.code = codeOK
		if w.status >= http.StatusBadRequest {
			w.code = replyCode(p)
		}
	}
	return w.ResponseWriter.Write(p)
}

// Flush sends buffered data (server-sent events).
func (w *meteredWriter) Flush() { _ = http.NewResponseController(w.ResponseWriter).Flush() }

// Unwrap gives http.ResponseController the underlying writer.
func (w *meteredWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// http wraps the /v1 handler so that each request is counted by its
// operation and outcome, and timed.
func (m *metrics) http(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		mw := &meteredWriter{ResponseWriter: w, code: -1}
		next.ServeHTTP(mw, r)
		code := mw.code
		if code < 0 { // no body: the status says
			code = codeOK
			if mw.status >= http.StatusBadRequest {
				code = codeOther
			}
		}
		m.answered(httpOp(r), faceHTTP, code, start)
	})
}

// httpOp is the operation of an HTTP API request, by method and path.
func httpOp(r *http.Request) op {
	p := r.URL.Path
	switch {
	case strings.HasPrefix(p, "/v1/kv/"):
		if r.Method == http.MethodGet {
			return opRead
		}
		return opWrite
	case p == "/v1/kv":
		return opList
	case strings.HasPrefix(p, "/v1/history/"):
		return opHistory
	case p == "/v1/changes":
		return opChanges
	case p == "/v1/watch":
		return opWatch
	case p == "/v1/compact":
		return opWrite
	case p == "/v1/status":
		return opStatus
	}
	return opOther
}

// endpointOps are the operations of the node service's endpoints, by name.
var endpointOps = map[string]op{"read": opRead, "any-read": opRead, "list": opList, "history": opHistory,
	"changes": opChanges, "write": opWrite, "status": opStatus}

// appliedAt counts an update from the replication stream applied now,
// which its leader wrote at written (Unix nanoseconds), and sets the lag.
func (m *metrics) appliedAt(written int64) {
	m.applied.Inc()
	if written > 0 {
		m.lag.Set(max(time.Since(time.Unix(0, written)).Seconds(), 0))
	}
}

// caughtUpPage counts one snapshot page of keys installed by a catch-up.
func (m *metrics) caughtUpPage(keys int) {
	m.catchUpPages.Inc()
	m.catchUpKeys.Add(float64(keys))
}
