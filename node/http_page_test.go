package node

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/zkvstore/zkv/bus"
)

// TestClusterViewsCollectOnce: callers that come while a view is being
// collected wait for it instead of collecting their own, and a fresh
// view is served again.
func TestClusterViewsCollectOnce(t *testing.T) {
	var (
		v       clusterViews
		calls   atomic.Int32
		release = make(chan struct{})
		started = make(chan struct{})
	)
	collect := func() bus.ClusterView {
		if calls.Add(1) == 1 {
			close(started)
		}
		<-release
		return bus.ClusterView{Node: "n1"}
	}
	const callers = 8
	var wg sync.WaitGroup
	views := make([]bus.ClusterView, callers)
	wg.Go(func() { views[0], _ = v.get(context.Background(), collect) })
	<-started
	for i := 1; i < callers; i++ {
		wg.Go(func() { views[i], _ = v.get(context.Background(), collect) })
	}
	close(release)
	wg.Wait()
	if got := calls.Load(); got != 1 {
		t.Fatalf("collected %d times, want 1", got)
	}
	for i, view := range views {
		if view.Node != "n1" {
			t.Fatalf("caller %d got %+v", i, view)
		}
	}
}

// TestClusterViewsWaitEndsWithCtx: a caller waiting for another's
// collection gives up when its context ends.
func TestClusterViewsWaitEndsWithCtx(t *testing.T) {
	var v clusterViews
	release, started := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		_, _ = v.get(context.Background(), func() bus.ClusterView { close(started); <-release; return bus.ClusterView{} })
	})
	<-started
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := v.get(ctx, func() bus.ClusterView { t.Error("collected twice"); return bus.ClusterView{} }); err == nil {
		t.Fatal("get with an ended context while another collects: no error")
	}
	close(release)
	wg.Wait()
}
