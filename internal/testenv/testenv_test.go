package testenv

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

func TestMain(m *testing.M) { os.Exit(RunMain(m)) }

func TestStartZooKeeperAndNATS(t *testing.T) {
	t.Parallel()
	z := StartZooKeeper(t)
	n := StartNATS(t)
	if mode, err := z.Mode(context.Background()); err != nil || mode != "standalone" {
		t.Fatalf("Mode = %q, %v", mode, err)
	}
	if !strings.HasPrefix(z.Dir(), os.TempDir()) || z.LogPath() == "" {
		t.Errorf("Dir %q LogPath %q: want both in the test's temp dir", z.Dir(), z.LogPath())
	}
	if !strings.HasPrefix(n.URL(), "nats://127.0.0.1:") {
		t.Errorf("NATS URL %q", n.URL())
	}
}

func TestStartEnsemble(t *testing.T) {
	t.Parallel()
	e := StartEnsemble(t)
	if got := len(strings.Split(e.Connect(), ",")); got != 3 {
		t.Fatalf("Connect %q: %d members", e.Connect(), got)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := e.Leader(ctx); err != nil {
		t.Fatal(err)
	}
}

func TestWaitFor(t *testing.T) {
	var tries int
	WaitFor(t, 5*time.Second, "the third try", func() error {
		if tries++; tries < 3 {
			return errors.New("not yet")
		}
		return nil
	})
	if tries != 3 {
		t.Fatalf("%d tries", tries)
	}
}

func TestSweepStaleBinaries(t *testing.T) {
	// A directory of a test binary that has exited goes; one of a running
	// process stays.
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	stale, err := os.MkdirTemp("", fmt.Sprintf("%s%d-*", binDirPrefix, cmd.Process.Pid))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(stale) })
	live, err := os.MkdirTemp("", fmt.Sprintf("%s%d-*", binDirPrefix, os.Getppid()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(live) })
	sweepStaleBinaries()
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stale %s not removed (stat: %v)", stale, err)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("live %s removed: %v", live, err)
	}
}
