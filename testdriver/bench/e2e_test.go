package bench

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// TestElectionEndToEnd runs the election study against a real ZooKeeper,
// NATS and three kvservers: two SIGTERM runs (with -short), or also two
// SIGKILL runs. It checks that every event was seen and the report
// written, never how long anything took.
func TestElectionEndToEnd(t *testing.T) {
	ctx, bin := endToEnd(t)
	stops := []string{StopTerm}
	if !testing.Short() {
		stops = append(stops, StopKill)
	}
	cfg := ElectionConfig{
		Runs:            2,
		ZK:              []string{ZKStandalone},
		Stops:           stops,
		SessionTimeouts: []time.Duration{time.Second},
		KVServer:        bin,
	}
	out := t.TempDir()
	if err := os.MkdirAll(filepath.Join(out, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := ElectionStudy(ctx, cfg, out, false, true, "bench election (test)"); err != nil {
		t.Fatal(err)
	}
	runs, err := readElectionFile(filepath.Join(out, electionCSV))
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 2*len(stops) {
		t.Fatalf("%d runs, want %d", len(runs), 2*len(stops))
	}
	for _, r := range runs {
		if r.Err != "" {
			t.Errorf("run %s #%d: %s", r.Stop, r.Run, r.Err)
			continue
		}
		if r.ZnodeGone < 0 || r.LeaderSeen < 0 || r.FirstWrite < 0 {
			t.Errorf("run %s #%d: an event was not seen: %+v", r.Stop, r.Run, r)
		}
		if r.NewLeader == "" || r.NewLeader == r.OldLeader || r.NewEpoch <= r.OldEpoch {
			t.Errorf("run %s #%d: leader %s (epoch %d) → %s (epoch %d)", r.Stop, r.Run, r.OldLeader, r.OldEpoch, r.NewLeader, r.NewEpoch)
		}
		if r.Negotiated <= 0 || r.ZKRTT <= 0 || r.NATSRTT <= 0 {
			t.Errorf("run %s #%d: session/round trips not measured: %+v", r.Stop, r.Run, r)
		}
	}
	md, err := os.ReadFile(filepath.Join(out, electionMD))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(md), "| standalone | sigterm | on | 1s → ") {
		t.Errorf("report lacks the sigterm setting:\n%s", md)
	}
}

// endToEnd prepares a study test: it skips without ZooKeeper, and returns
// a context bounded at three minutes and a kvserver built for the test.
func endToEnd(t *testing.T) (context.Context, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	t.Cleanup(cancel)
	bin, cleanup, err := cluster.Binary(ctx, "kvserver", "", true)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(cleanup)
	probe, err := cluster.StartLocal(ctx, cluster.LocalOptions{KVServer: bin, NoServers: true})
	if errors.Is(err, harness.ErrZooKeeperMissing) {
		t.Skip(err)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := probe.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return ctx, bin
}
