//go:build chaos

package chaos

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// TestChaos runs the fault suite in quick mode against real ZooKeeper,
// NATS and kvserver processes:
//
//	go test -tags chaos -run TestChaos ./testdriver/chaos -count=1 -timeout 20m -v
//
// ZKV_CHAOS_RUNS and ZKV_CHAOS_CASES (comma-separated) narrow or widen it.
// The report goes to the test's log directory.
func TestChaos(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if dl, ok := t.Deadline(); ok {
		ctx, cancel = context.WithDeadline(ctx, dl.Add(-30*time.Second))
		defer cancel()
	}
	root, err := harness.ModuleRoot(ctx)
	if err != nil {
		t.Fatal(err)
	}
	bin, cleanup, err := cluster.Binary(ctx, "kvserver", os.Getenv("ZKV_CHAOS_KVSERVER"), true)
	if err != nil {
		t.Fatal(err)
	}
	defer cleanup()
	cfg := DefaultConfig()
	cfg.Quick, cfg.Runs, cfg.KVServer = true, 1, bin
	if n, err := strconv.Atoi(os.Getenv("ZKV_CHAOS_RUNS")); err == nil && n > 0 {
		cfg.Runs = n
	}
	if c := os.Getenv("ZKV_CHAOS_CASES"); c != "" {
		cfg.Cases = strings.Split(c, ",")
	}
	cfg.LogDir = filepath.Join(root, "logs", "chaos", "test-"+time.Now().Format("20060102-150405"))
	cfg.Log = testWriter{t}
	res, err := Suite(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	res.Command = "go test -tags chaos -run TestChaos ./testdriver/chaos"
	report := filepath.Join(cfg.LogDir, "reliability.md")
	if err := os.WriteFile(report, Report(res), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, r := range res.Runs {
		for _, v := range r.Violations {
			t.Errorf("%s %s: %s", r.Case, runLabel(r), v)
		}
		if r.Err != "" {
			t.Errorf("%s %s: %s", r.Case, runLabel(r), r.Err)
		}
	}
	t.Logf("report: %s", report)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
