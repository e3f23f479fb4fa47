package node_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
)

// TestPrometheusScrapesTheCluster: a real Prometheus server scrapes three
// kvserver processes; queries through its HTTP API return the leader's
// epoch and, while writes flow, the leader's write rate.
func TestPrometheusScrapesTheCluster(t *testing.T) {
	c := startCluster(t, 3, stableTimeout)
	leader, epoch := c.waitLeader("", 10*time.Second)
	var targets []string
	for _, n := range c.nodes {
		targets = append(targets, n.HTTPAddr())
	}
	pr := testenv.StartPrometheus(t, targets...)
	leaderAddr := c.nodes[leader].HTTPAddr()

	query := func(q string) []harness.Sample {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		s, err := pr.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	testenv.WaitFor(t, 30*time.Second, "every target up", func() error {
		if s := query(`sum(up{job="zkv"})`); len(s) != 1 || s[0].Value != 3 {
			return fmt.Errorf("up: %+v", s)
		}
		return nil
	})
	s := query(`zkv_epoch and on(instance) (zkv_role{role="leader"} == 1)`)
	if len(s) != 1 || s[0].Value != float64(epoch) || s[0].Labels["instance"] != leaderAddr {
		t.Fatalf("the leader's epoch from Prometheus: %+v, want %d from %s (%s)", s, epoch, leader, leaderAddr)
	}

	// Writes flow until Prometheus reports a write rate on the leader.
	const rateQuery = `sum by (instance) (rate(zkv_requests_total{op="write",code="ok"}[5s]))`
	written := 0
	testenv.WaitFor(t, 30*time.Second, "a write rate", func() error {
		for range 20 {
			written++
			c.put("k"+strconv.Itoa(written%10), "v")
		}
		s := query(rateQuery)
		if len(s) != 1 || s[0].Value <= 0 || s[0].Labels["instance"] != leaderAddr {
			return fmt.Errorf("%s = %+v", rateQuery, s)
		}
		return nil
	})
	s = query(`rate(zkv_writes_replicated_total[5s]) and on(instance) (zkv_role{role="leader"} == 1)`)
	if len(s) != 1 || s[0].Value <= 0 {
		t.Fatalf("the leader's replication rate: %+v", s)
	}
	// Each write is applied on the leader and on both replicas; the next
	// scrapes see the last of them.
	testenv.WaitFor(t, 10*time.Second, "every write applied on every copy", func() error {
		if s := query(`sum(zkv_writes_applied_total)`); len(s) != 1 || s[0].Value != float64(3*written) {
			return fmt.Errorf("writes applied on all copies: %+v, want %d", s, 3*written)
		}
		return nil
	})
	t.Logf("%d writes; the leader's write rate per Prometheus: %.1f/s", written, query(rateQuery)[0].Value)

	// Every query of the Grafana dashboard in compose/ is valid and finds
	// series on a live cluster.
	for _, q := range dashboardQueries(t, "../compose/grafana/dashboards/zkv.json") {
		if s := query(q); len(s) == 0 {
			t.Errorf("dashboard query %s finds nothing", q)
		}
	}
}

// dashboardQueries returns the PromQL expressions of a Grafana dashboard's
// panels, with its variables replaced as Grafana would for all servers.
func dashboardQueries(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	vars := strings.NewReplacer("$instance", ".*", "$__rate_interval", "5s")
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, vars.Replace(tg.Expr))
		}
	}
	if len(out) < 10 {
		t.Fatalf("%s: %d queries", path, len(out))
	}
	return out
}

// TestCutOffFromZooKeeperIsLoud: a server whose ZooKeeper is gone warns
// more than once while it lasts, says so in status, /readyz and metrics,
// and acknowledges no write.
func TestCutOffFromZooKeeperIsLoud(t *testing.T) {
	c := startCluster(t, 1, sessionTimeout)
	leader, _ := c.waitLeader("", 10*time.Second)
	n := c.nodes[leader]
	base := "http://" + n.HTTPAddr()
	httpDo(t, "PUT", base+"/v1/kv/a", "1", 200)
	if err := c.zk.Kill(); err != nil {
		t.Fatal(err)
	}
	testenv.WaitFor(t, 20*time.Second, "two warnings about ZooKeeper", func() error {
		if got := strings.Count(n.LogTail(200), "cut off from zookeeper"); got < 2 {
			return fmt.Errorf("%d warnings", got)
		}
		return nil
	})
	var st bus.Status
	if err := bus.Decode([]byte(httpDo(t, "GET", base+"/v1/status", "", 200)), &st); err != nil {
		t.Fatal(err)
	}
	if st.ZooKeeperCutOffMS <= 0 || st.Ready || !strings.Contains(st.NotReady, "zookeeper disconnected for ") {
		t.Errorf("status while cut off from ZooKeeper: %+v", st)
	}
	body := httpDo(t, "GET", base+"/readyz", "", http.StatusServiceUnavailable)
	if !strings.Contains(body, "zookeeper disconnected for ") {
		t.Errorf("/readyz while cut off from ZooKeeper: %s", body)
	}
	metrics := httpDo(t, "GET", base+"/metrics", "", 200)
	for _, want := range []string{`zkv_connected{to="zookeeper"} 0`, `zkv_lease_valid 0`, `zkv_ready 0`} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(metrics, `zkv_cut_off_seconds{from="zookeeper"} 0`+"\n") {
		t.Errorf("/metrics reports no cut-off from ZooKeeper")
	}
	// No write is acknowledged: the lease is gone.
	req, err := http.NewRequestWithContext(ctxFor(t, 20*time.Second), "PUT", base+"/v1/kv/a", strings.NewReader("2"))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode == 200 {
		t.Fatal("a write was acknowledged by a server cut off from ZooKeeper")
	}
}
