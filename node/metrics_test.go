package node

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/testenv"
)

// metricValue is the value of the metric name with exactly the labels
// given (name=value pairs), as the server's registry reports it now; ok
// is false if there is none.
func metricValue(t *testing.T, reg prometheus.Gatherer, name string, labels ...string) (float64, bool) {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if !hasLabels(m, labels) {
				continue
			}
			switch {
			case m.Counter != nil:
				return m.Counter.GetValue(), true
			case m.Gauge != nil:
				return m.Gauge.GetValue(), true
			case m.Histogram != nil:
				return float64(m.Histogram.GetSampleCount()), true
			}
		}
	}
	return 0, false
}

func hasLabels(m *dto.Metric, labels []string) bool {
	if len(m.GetLabel()) != len(labels)/2 {
		return false
	}
	for i := 0; i+1 < len(labels); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == labels[i] && l.GetValue() == labels[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// waitMetric polls until the metric reaches at least want.
func waitMetric(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	testenv.WaitFor(t, 10*time.Second, fmt.Sprintf("%s%v >= %v", name, labels, want), func() error {
		if v, _ := metricValue(t, reg, name, labels...); v < want {
			return fmt.Errorf("%s%v = %v", name, labels, v)
		}
		return nil
	})
}

// wantMetric checks that the metric is exactly want now.
func wantMetric(t *testing.T, reg prometheus.Gatherer, want float64, name string, labels ...string) {
	t.Helper()
	if v, ok := metricValue(t, reg, name, labels...); !ok || v != want {
		t.Errorf("%s%v = %v (present %v), want %v", name, labels, v, ok, want)
	}
}

// HTTPCall sends one request and returns its status and body (exported
// for the package's external tests too).
func HTTPCall(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequestWithContext(ctxTimeout(t, 10*time.Second), method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// request sends w once on subject and returns the error its reply
// carries.
func request(t *testing.T, ts *testServer, subject string, w bus.WriteRequest) error {
	t.Helper()
	msg, err := ts.nc.Request(subject, bus.Encode(w), 5*time.Second)
	if err != nil {
		t.Fatalf("request on %s: %v", subject, err)
	}
	var r bus.WriteReply
	return bus.DecodeReply(msg.Data, &r)
}

func withHTTP(c *Config) { c.HTTPAddr, c.AdvertiseAddr = "127.0.0.1:0", "127.0.0.1:0" }

func TestMetricCodesCoverEveryWireCode(t *testing.T) {
	if len(codeNames) != numCodes {
		t.Fatalf("%d outcome codes, numCodes is %d", len(codeNames), numCodes)
	}
	for _, c := range bus.Codes() {
		body := bus.EncodeError(bus.Errorf(c, "x"))
		if got := codeNames[replyCode(body)]; got != string(c) {
			t.Errorf("reply code of %s = %s", body, got)
		}
	}
	for body, want := range map[string]string{`{"ok":true}`: "ok", `{"error":{"code":"brand_new"}}`: "other", `{"error":`: "other"} {
		if got := codeNames[replyCode([]byte(body))]; got != want {
			t.Errorf("reply code of %s = %s, want %s", body, got, want)
		}
	}
}

// TestMetricsLeaderCountsItsEvents drives a leader with a scripted
// election over a real NATS server and checks that each counter moves
// with the event it counts, and that every name passes the Prometheus
// lint.
func TestMetricsLeaderCountsItsEvents(t *testing.T) {
	ts := startTestServer(t, "n1", withHTTP, func(c *Config) { c.WriteTimeout = 300 * time.Millisecond })
	reg := ts.srv.metrics.reg
	ts.el.lease.Store(true)
	ts.el.terms <- election.Term{Role: election.RoleLeader, Epoch: 3, Znode: "server_0000000002"}
	ts.waitRole(t, bus.RoleLeader)
	wantMetric(t, reg, 1, "zkv_leader_takeovers_total")
	wantMetric(t, reg, 1, "zkv_election_changes_total")
	wantMetric(t, reg, 1, "zkv_role", "role", "leader")
	wantMetric(t, reg, 0, "zkv_role", "role", "follower")
	wantMetric(t, reg, 3, "zkv_epoch")
	wantMetric(t, reg, 1, "zkv_lease_valid")

	if r, err := ts.writeOnce(t, "a", "1"); err != nil || !r.OK {
		t.Fatalf("write: %+v, %v", r, err)
	}
	wantMetric(t, reg, 1, "zkv_requests_total", "op", "write", "face", "nats", "code", "ok")
	wantMetric(t, reg, 1, "zkv_request_duration_seconds", "op", "write", "face", "nats")
	wantMetric(t, reg, 1, "zkv_writes_applied_total")
	wantMetric(t, reg, 1, "zkv_writes_replicated_total")
	wantMetric(t, reg, 1, "zkv_revision")
	wantMetric(t, reg, 1, "zkv_keys")
	wantMetric(t, reg, 2, "zkv_store_bytes")

	ts.el.lease.Store(false)
	if _, err := ts.writeOnce(t, "b", "1"); !errors.Is(err, bus.ErrNotLeader) {
		t.Fatalf("write without a lease = %v", err)
	}
	wantMetric(t, reg, 1, "zkv_requests_total", "op", "write", "face", "nats", "code", "not_leader")
	wantMetric(t, reg, 0, "zkv_lease_valid")
	wantMetric(t, reg, 1, "zkv_writes_applied_total")
	ts.el.lease.Store(true)

	// A write that waits for a replica that never confirms.
	ts.el.members.Store([]string{"n1", "n2"})
	if err := request(t, ts, ts.client.Subjects().Write(), bus.WriteRequest{Key: "c", Value: "1", Acks: bus.AcksAll}); !errors.Is(err, bus.ErrTimeout) {
		t.Fatalf("acks=all write with a silent replica = %v, want timeout", err)
	}
	wantMetric(t, reg, 1, "zkv_ack_waits_total")
	wantMetric(t, reg, 1, "zkv_ack_timeouts_total")
	ts.el.members.Store([]string{"n1"})

	base := "http://" + ts.srv.HTTPAddr()
	if code, body := HTTPCall(t, "PUT", base+"/v1/kv/h", "v"); code != 200 {
		t.Fatalf("PUT: %d %s", code, body)
	}
	if code, _ := HTTPCall(t, "GET", base+"/v1/kv/h", ""); code != 200 {
		t.Fatalf("GET: %d", code)
	}
	if code, _ := HTTPCall(t, "GET", base+"/v1/kv/missing", ""); code != 404 {
		t.Fatalf("GET missing: %d", code)
	}
	if code, _ := HTTPCall(t, "GET", base+"/v1/kv/h?bogus=1", ""); code != 400 {
		t.Fatalf("GET with a bad parameter: %d", code)
	}
	wantMetric(t, reg, 1, "zkv_requests_total", "op", "write", "face", "http", "code", "ok")
	wantMetric(t, reg, 2, "zkv_requests_total", "op", "read", "face", "http", "code", "ok")
	wantMetric(t, reg, 1, "zkv_requests_total", "op", "read", "face", "http", "code", "bad_request")

	code, body := HTTPCall(t, "GET", base+"/metrics", "")
	if code != 200 || !strings.Contains(body, `zkv_requests_total{code="ok",face="http",op="write"} 1`) ||
		!strings.Contains(body, `zkv_node_info{node="n1",version=`) {
		t.Fatalf("GET /metrics: %d\n%s", code, body)
	}
	problems, err := testutil.GatherAndLint(reg)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestMetricsFollowerCountsItsEvents checks the counters of a replica:
// updates applied, old-epoch and unsigned messages dropped, gaps found,
// writes forwarded.
func TestMetricsFollowerCountsItsEvents(t *testing.T) {
	ts := startTestServer(t, "n2")
	reg := ts.srv.metrics.reg
	ts.el.terms <- election.Term{Role: election.RoleFollower, Epoch: 5, Leader: election.LeaderData{ID: "n1", Epoch: 5}}
	ts.waitRole(t, bus.RoleFollower)
	written := time.Now().UnixNano()
	for _, u := range []bus.Update{
		{Kind: bus.KindEpoch, Epoch: 5, Seq: 0, Leader: "n1"},
		{Kind: bus.KindPut, Epoch: 5, Seq: 1, Key: "a", Value: "1", Leader: "n1", Time: written},
		{Kind: bus.KindPut, Epoch: 4, Seq: 2, Key: "a", Value: "deposed", Leader: "n0"},
		{Kind: bus.KindPut, Epoch: 5, Seq: 2, Key: "b", Value: "2", Leader: "n1", Time: written},
		{Kind: bus.KindPut, Epoch: 5, Seq: 5, Key: "c", Value: "5", Leader: "n1", Time: written}, // 3 and 4 lost
	} {
		ts.publish(t, u)
	}
	waitMetric(t, reg, 5, "zkv_revision")
	wantMetric(t, reg, 3, "zkv_writes_applied_total")
	wantMetric(t, reg, 1, "zkv_dropped_old_epoch_total")
	wantMetric(t, reg, 1, "zkv_replication_gaps_total")
	wantMetric(t, reg, 2, "zkv_missed_revisions")
	wantMetric(t, reg, 1, "zkv_stale")
	if lag, _ := metricValue(t, reg, "zkv_replication_lag_seconds"); lag <= 0 {
		t.Errorf("replication lag = %v, want above 0", lag)
	}

	// An unsigned update is dropped before it is decoded.
	if err := ts.nc.Publish(ts.client.Subjects().Replication(), bus.Encode(bus.Update{Kind: bus.KindPut, Epoch: 5, Seq: 6, Key: "x", Leader: "n1"})); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, reg, 1, "zkv_dropped_messages_total", "reason", "unsigned")
	wantMetric(t, reg, 3, "zkv_writes_applied_total")

	if err := request(t, ts, ts.client.Subjects().NodeWrite("n2"), bus.WriteRequest{Key: "k", Value: "v"}); !errors.Is(err, bus.ErrNoLeader) {
		t.Fatalf("write via a follower with no leader = %v, want no_leader", err)
	}
	wantMetric(t, reg, 1, "zkv_writes_forwarded_total")
	wantMetric(t, reg, 1, "zkv_requests_total", "op", "write", "face", "nats", "code", "no_leader")
	wantMetric(t, reg, 1, "zkv_role", "role", "follower")
}

// warnCounter counts the WARN records whose message starts with prefix,
// passing every record on.
type warnCounter struct {
	slog.Handler
	prefix string
	n      *atomic.Int32
}

func (h warnCounter) Handle(ctx context.Context, r slog.Record) error {
	if r.Level == slog.LevelWarn && strings.HasPrefix(r.Message, h.prefix) {
		h.n.Add(1)
	}
	return h.Handler.Handle(ctx, r)
}

func (h warnCounter) WithAttrs(as []slog.Attr) slog.Handler {
	return warnCounter{h.Handler.WithAttrs(as), h.prefix, h.n}
}

func (h warnCounter) WithGroup(g string) slog.Handler {
	return warnCounter{h.Handler.WithGroup(g), h.prefix, h.n}
}

// TestCutOffFromNATSIsLoud: a server whose NATS server is gone warns
// more than once while it lasts, reports it in status, /readyz and
// metrics, and says when NATS is back.
func TestCutOffFromNATSIsLoud(t *testing.T) {
	var warnings atomic.Int32
	ns := testenv.StartNATS(t) // the server's own, to cut it off
	ts := startTestServer(t, "n1", withHTTP, func(c *Config) {
		c.NATSURL = ns.URL()
		c.Logger = slog.New(warnCounter{c.Logger.Handler(), "cut off from nats", &warnings})
	})
	reg := ts.srv.metrics.reg
	wantMetric(t, reg, 1, "zkv_connected", "to", "nats")
	base := "http://" + ts.srv.HTTPAddr()

	ns.Shutdown()
	testenv.WaitFor(t, 10*time.Second, "two warnings", func() error {
		if n := warnings.Load(); n < 2 {
			return fmt.Errorf("%d warnings", n)
		}
		return nil
	})
	wantMetric(t, reg, 0, "zkv_connected", "to", "nats")
	wantMetric(t, reg, 1, "zkv_connected", "to", "zookeeper")
	if v, _ := metricValue(t, reg, "zkv_cut_off_seconds", "from", "nats"); v <= 0 {
		t.Errorf("cut off seconds = %v, want above 0", v)
	}
	if v, _ := metricValue(t, reg, "zkv_cut_off_warnings_total", "from", "nats"); v < 2 {
		t.Errorf("cut-off warnings counted = %v, want 2 or more", v)
	}
	if st := ts.srv.Status(); st.NATSCutOffMS <= 0 || st.ZooKeeperCutOffMS != 0 || st.Ready {
		t.Errorf("status while cut off from NATS: %+v", st)
	}
	code, body := HTTPCall(t, "GET", base+"/readyz", "")
	if code != http.StatusServiceUnavailable || !strings.Contains(body, "nats") || !strings.Contains(body, " for ") {
		t.Errorf("/readyz while cut off from NATS: %d %s", code, body)
	}
	wantMetric(t, reg, 0, "zkv_ready")

	if err := ns.Restart(); err != nil {
		t.Fatal(err)
	}
	waitMetric(t, reg, 1, "zkv_connected", "to", "nats")
	if st := ts.srv.Status(); st.NATSCutOffMS != 0 {
		t.Errorf("status after NATS came back: %+v", st)
	}
}

func TestCutOffWarningsBackOff(t *testing.T) {
	var got []time.Duration
	for d := firstCutOffWarning; len(got) < 10; d = nextCutOffWarning(d) {
		got = append(got, d)
	}
	want := []time.Duration{1, 2, 4, 8, 16, 32, 60, 60, 60, 60}
	for i := range want {
		if got[i] != want[i]*time.Second {
			t.Fatalf("warning waits %v, want %v seconds", got, want)
		}
	}
}
