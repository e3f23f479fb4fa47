package cluster_test

import (
	"context"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

func TestMain(m *testing.M) { os.Exit(testenv.RunMain(m)) }

// TestLocalParallelStartAndReplace starts three servers at once on a
// given ZooKeeper and NATS: the nodes come back in ID order, every
// server's lines reach the shared log with its prefix, and Replace starts
// a server again with an added flag.
func TestLocalParallelStartAndReplace(t *testing.T) {
	zk := testenv.StartZooKeeper(t)
	ns := testenv.StartNATS(t)
	var log harness.SyncBuffer
	lc := testenv.StartLocal(t, cluster.LocalOptions{
		ZooKeeper:      zk.Addr(),
		NATSURL:        ns.URL(),
		SessionTimeout: 2 * time.Second,
		ServerLog:      &log,
		ServerLogLevel: "info",
		Parallel:       true,
	})
	if got := lc.Nodes(); !slices.Equal(got, []string{"n1", "n2", "n3"}) {
		t.Fatalf("nodes %v, want n1 n2 n3", got)
	}
	if lc.Process("n4") != nil {
		t.Error("Process(n4) of a three-node cluster is not nil")
	}
	for _, id := range lc.Nodes() {
		if !strings.Contains(log.String(), id+": ") {
			t.Errorf("shared log lacks lines prefixed %q:\n%s", id+": ", log.String())
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	oldPID := lc.Process("n2").PID()
	if unclean, err := lc.Replace(ctx, "n2", "--log-level", "debug"); err != nil || unclean != nil {
		t.Fatalf("Replace(n2) = %v, %v", unclean, err)
	}
	n2 := lc.Process("n2")
	if n2.PID() == oldPID || !n2.Running() {
		t.Errorf("n2 after Replace: pid %d (was %d), running %v", n2.PID(), oldPID, n2.Running())
	}
	if args := n2.Options().Args; !slices.Contains(args, "debug") {
		t.Errorf("n2's arguments %v lack the added flag", args)
	}
	if err := n2.WaitReady(ctx); err != nil {
		t.Errorf("n2 after Replace: %v", err)
	}
}
