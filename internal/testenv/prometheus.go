package testenv

import (
	"errors"
	"os"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
)

// StartPrometheus starts a Prometheus server in a directory of
// t.TempDir() that scrapes targets (host:port, at /metrics) every second.
// Without the prometheus binary the test is skipped, except under CI=true,
// where .ci/run installs it and its absence fails the test. Cleanup stops
// it; when the test failed, the tail of its log is logged first.
func StartPrometheus(t testing.TB, targets ...string) *harness.Prometheus {
	t.Helper()
	ctx, cancel := timeoutContext(t, StartTimeout)
	defer cancel()
	pr, err := harness.StartPrometheus(ctx, harness.PrometheusOptions{Dir: t.TempDir(), Targets: targets, ScrapeInterval: time.Second})
	if errors.Is(err, harness.ErrPrometheusMissing) && os.Getenv("CI") != "true" {
		t.Skipf("%v (apt-get install -y prometheus; .ci/run installs it)", err)
	}
	if err != nil {
		t.Fatalf("start Prometheus: %v", err)
	}
	t.Logf("Prometheus %s (pid %d) scraping %v", pr.URL(), pr.PID(), targets)
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("Prometheus %s log tail:\n%s", pr.URL(), pr.LogTail(tailLines))
		}
		if err := pr.Stop(); err != nil {
			t.Errorf("stop Prometheus: %v", err)
		}
	})
	return pr
}
