package harness

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// ErrPrometheusMissing is wrapped by the error StartPrometheus returns
// when the prometheus binary is not installed (Debian's package:
// apt-get install -y prometheus).
var ErrPrometheusMissing = errors.New("prometheus is not installed")

// EnvPrometheus names the prometheus binary to run instead of the one on
// PATH.
const EnvPrometheus = "ZKV_PROMETHEUS"

// PrometheusOptions say what a Prometheus server started by
// StartPrometheus scrapes.
type PrometheusOptions struct {
	// Dir holds prometheus.yml, the data and prometheus.log; "" makes a
	// temporary directory that Stop removes.
	Dir string
	// Targets are the host:port addresses scraped at /metrics, as job
	// "zkv".
	Targets []string
	// ScrapeInterval is how often each target is scraped (default 1s).
	ScrapeInterval time.Duration
}

// Prometheus is a Prometheus server run as a child process on a free port
// of 127.0.0.1.
type Prometheus struct {
	dir     string
	madeDir bool
	logPath string
	port    int
	p       *proc
}

// StartPrometheus writes a scrape configuration for opts.Targets, starts
// prometheus on a free port of 127.0.0.1 and returns once it answers
// /-/ready. If it cannot start or get ready before ctx ends, the process
// is killed and an error with its log tail returned.
func StartPrometheus(ctx context.Context, opts PrometheusOptions) (*Prometheus, error) {
	name := os.Getenv(EnvPrometheus)
	if name == "" {
		name = "prometheus"
	}
	bin, err := exec.LookPath(name)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrPrometheusMissing, err)
	}
	dir, madeDir, err := prepareDir(opts.Dir, "zkv-prometheus-*")
	if err != nil {
		return nil, err
	}
	pr := &Prometheus{dir: dir, madeDir: madeDir, logPath: filepath.Join(dir, "prometheus.log")}
	cfgPath := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfgPath, []byte(prometheusConfig(opts)), 0o644); err != nil {
		pr.Stop()
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	for attempt := 1; ; attempt++ {
		if pr.port, err = FreePort(); err != nil {
			pr.Stop()
			return nil, fmt.Errorf("prometheus: %w", err)
		}
		pr.p, err = startProc(procSpec{
			path: bin,
			args: []string{"--config.file=" + cfgPath, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
				"--web.listen-address=" + pr.Addr(), "--log.level=info"},
			dir:     dir,
			logPath: pr.logPath,
		})
		if err != nil {
			pr.Stop()
			return nil, fmt.Errorf("prometheus: %w", err)
		}
		err = pr.waitReady(ctx)
		if err == nil {
			return pr, nil
		}
		tail := pr.p.logTail(DefaultTailLines)
		_ = pr.p.kill()
		if !looksLikeAddrInUse(tail) || attempt == startAttempts {
			pr.Stop()
			return nil, withTail(fmt.Errorf("prometheus on %s: %w", pr.Addr(), err), tail)
		}
	}
}

// prometheusConfig renders prometheus.yml for opts.
func prometheusConfig(opts PrometheusOptions) string {
	every := opts.ScrapeInterval
	if every <= 0 {
		every = time.Second
	}
	quoted := make([]string, len(opts.Targets))
	for i, t := range opts.Targets {
		quoted[i] = strconv.Quote(t)
	}
	return fmt.Sprintf(`global:
  scrape_interval: %[1]s
  evaluation_interval: %[1]s
scrape_configs:
  - job_name: zkv
    static_configs:
      - targets: [%[2]s]
`, every, strings.Join(quoted, ", "))
}

// waitReady polls /-/ready until it answers 200, the process exits or
// ctx ends.
func (pr *Prometheus) waitReady(ctx context.Context) error {
	return WaitFor(ctx, DefaultPollInterval, func() error {
		if pr.p.exited() {
			return fmt.Errorf("exited before it was ready: %w", pr.p.exitErr())
		}
		rctx, cancel := context.WithTimeout(ctx, time.Second)
		defer cancel()
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, pr.URL()+"/-/ready", nil)
		if err != nil {
			return err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/-/ready: %s", resp.Status)
		}
		return nil
	})
}

// Addr is the host:port of its HTTP API.
func (pr *Prometheus) Addr() string { return net.JoinHostPort("127.0.0.1", strconv.Itoa(pr.port)) }

// URL is the base URL of its HTTP API.
func (pr *Prometheus) URL() string { return "http://" + pr.Addr() }

// PID is the process ID.
func (pr *Prometheus) PID() int { return pr.p.pid() }

// LogTail returns the last n lines of its log.
func (pr *Prometheus) LogTail(n int) string { return TailFile(pr.logPath, n) }

// Sample is one series of an instant query's result: its labels and
// value.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query through the HTTP API
// (/api/v1/query) and returns its vector result.
func (pr *Prometheus) Query(ctx context.Context, query string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pr.URL()+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return nil, fmt.Errorf("query %q: %w", query, err)
	}
	var r struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string `json:"resultType"`
			Result     []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, fmt.Errorf("query %q: %s: %w", query, resp.Status, err)
	}
	if r.Status != "success" {
		return nil, fmt.Errorf("query %q: %s: %s", query, resp.Status, r.Error)
	}
	if r.Data.ResultType != "vector" {
		return nil, fmt.Errorf("query %q: result type %s, want vector", query, r.Data.ResultType)
	}
	out := make([]Sample, 0, len(r.Data.Result))
	for _, s := range r.Data.Result {
		str, _ := s.Value[1].(string)
		v, err := strconv.ParseFloat(str, 64)
		if err != nil {
			return nil, fmt.Errorf("query %q: value %v: %w", query, s.Value[1], err)
		}
		out = append(out, Sample{Labels: s.Metric, Value: v})
	}
	return out, nil
}

// Stop ends the process (SIGTERM, then SIGKILL after DefaultStopGrace)
// and removes the directory if StartPrometheus made it. It may be called
// more than once.
func (pr *Prometheus) Stop() error {
	var err error
	if pr.p != nil {
		if e := pr.p.terminate(context.Background(), DefaultStopGrace); e != nil && !exitedByOurSignal(e) {
			err = withTail(fmt.Errorf("prometheus (pid %d): %w", pr.p.pid(), e), pr.p.logTail(DefaultTailLines))
		}
	}
	if pr.madeDir {
		if e := os.RemoveAll(pr.dir); e != nil && err == nil {
			err = e
		}
	}
	return err
}
