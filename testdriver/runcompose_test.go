package testdriver_test

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver"
	"github.com/zkvstore/zkv/testdriver/cluster"
	"github.com/zkvstore/zkv/testdriver/cluster/composetest"
)

// TestRunComposeWiring runs RunCompose against a fake compose project
// whose NATS is real but whose kvservers do not answer: add-read fails,
// and the log directory holds driver.log, summary.json and the
// containers' logs.
func TestRunComposeWiring(t *testing.T) {
	ns, err := harness.StartNATS(harness.NATSOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ns.Shutdown)
	p := composetest.NewProject(t, 0)
	p.Engine.With(func() {
		p.Nodes["n1"].Env = append(p.Nodes["n1"].Env, "ZKV_SESSION_TIMEOUT=3s")
		p.Nodes["n1"].Logs = "n1 started\n"
	})
	root := t.TempDir()
	var out strings.Builder
	sum, err := testdriver.RunCompose(testCtx(t, 10*time.Second), testdriver.ComposeRun{
		Config:   testdriver.Config{Scenarios: []string{testdriver.ScenarioAddRead}, Timeout: 500 * time.Millisecond},
		Docker:   cluster.ComposeConfig{Project: "p", Socket: p.Engine.Socket(), NATSURL: ns.URL()},
		LogRoot:  root,
		SaveLogs: true,
	}, &out)
	t.Logf("output:\n%s", out.String())
	if err != nil {
		t.Fatalf("RunCompose: %v", err)
	}
	if sum.Passed() || sum.Scenario(testdriver.ScenarioAddRead).Result != testdriver.Fail {
		t.Fatalf("add-read %s, want FAIL (nobody answers)", sum.Scenario(testdriver.ScenarioAddRead).Result)
	}
	if filepath.Base(sum.LogDir) != testdriver.ComposeLogSubdir || filepath.Dir(filepath.Dir(sum.LogDir)) != root {
		t.Errorf("log dir %s, want %s/<timestamp>/compose", sum.LogDir, root)
	}
	if sum.SessionTimeout != 3*time.Second {
		t.Errorf("session timeout %v, want 3s (the containers' ZKV_SESSION_TIMEOUT)", sum.SessionTimeout)
	}
	for _, want := range []string{"compose project p: kvservers n1 n2 n3, ZooKeeper zoo1 zoo2 zoo3, NATS " + ns.URL(), "add-read  FAIL"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("output lacks %q", want)
		}
	}
	if b, err := os.ReadFile(filepath.Join(sum.LogDir, "n1.log")); err != nil || string(b) != "n1 started\n" {
		t.Errorf("n1.log = %q, %v", b, err)
	}
	var js struct {
		Result string `json:"result"`
		LogDir string `json:"log_dir"`
	}
	raw, err := os.ReadFile(filepath.Join(sum.LogDir, testdriver.SummaryName))
	if err != nil || json.Unmarshal(raw, &js) != nil || js.Result != "FAIL" || js.LogDir != sum.LogDir {
		t.Errorf("summary.json = %s, %v", raw, err)
	}
	if b, _ := os.ReadFile(filepath.Join(sum.LogDir, testdriver.DriverLogName)); !strings.Contains(string(b), "compose run") {
		t.Errorf("driver.log lacks the debug lines")
	}

	// A project that is not up: the error, and summary.json all the same,
	// in the directory given.
	exact := filepath.Join(t.TempDir(), "here")
	sum, err = testdriver.RunCompose(testCtx(t, 10*time.Second), testdriver.ComposeRun{
		Docker: cluster.ComposeConfig{Project: "nope", Socket: p.Engine.Socket()},
		LogDir: exact,
	}, &out)
	if !errors.Is(err, cluster.ErrNoContainer) || sum.LogDir != exact {
		t.Fatalf("RunCompose of a missing project = %v (log dir %s), want ErrNoContainer in %s", err, sum.LogDir, exact)
	}
	if _, err := os.Stat(filepath.Join(exact, testdriver.SummaryName)); err != nil {
		t.Errorf("summary.json: %v", err)
	}
}
