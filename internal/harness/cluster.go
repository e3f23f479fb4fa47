package harness

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
)

// Cluster is a set of kvserver nodes sharing one ZooKeeper and one NATS.
type Cluster struct {
	nodes []*Node
}

// StartCluster starts n kvserver nodes from bin with IDs n1..nN, each with
// base's options, its own ID and a free port (base.Port is ignored). When
// base.Log is set, every node's lines go to it prefixed with "<id>: ". It
// returns once every node answers /healthz; use WaitReady to wait for
// /readyz. If any node fails to start, the nodes already started are killed.
func StartCluster(ctx context.Context, bin string, n int, base NodeOptions) (*Cluster, error) {
	if n < 1 {
		return nil, fmt.Errorf("cluster of %d nodes: need at least one", n)
	}
	var mux *LogMux
	if base.Log != nil {
		mux = NewLogMux(base.Log)
	}
	c := &Cluster{}
	for i := 1; i <= n; i++ {
		opts := base
		opts.ID = "n" + strconv.Itoa(i)
		opts.Port = 0
		if mux != nil {
			opts.Log = mux.Writer(opts.ID + ": ")
		}
		node, err := StartNode(ctx, bin, opts)
		if err != nil {
			c.KillAll()
			return nil, fmt.Errorf("cluster: %w", err)
		}
		c.nodes = append(c.nodes, node)
	}
	return c, nil
}

// Nodes returns the nodes in ID order (Nodes()[0] is n1).
func (c *Cluster) Nodes() []*Node { return append([]*Node(nil), c.nodes...) }

// Node returns the node with the given ID, or nil.
func (c *Cluster) Node(id string) *Node {
	for _, n := range c.nodes {
		if n.ID() == id {
			return n
		}
	}
	return nil
}

// WaitReady waits until every running node answers /readyz with 200.
func (c *Cluster) WaitReady(ctx context.Context) error {
	for _, n := range c.nodes {
		if !n.Running() {
			continue
		}
		if err := n.WaitReady(ctx); err != nil {
			return fmt.Errorf("cluster: %w", err)
		}
	}
	return nil
}

// StopAll stops every node concurrently with SIGTERM (SIGKILL for those
// still running when ctx ends) and returns the joined errors of nodes that
// did not exit with status 0. A node that had already exited reports its
// exit error.
func (c *Cluster) StopAll(ctx context.Context) error {
	errs := make([]error, len(c.nodes))
	var wg sync.WaitGroup
	for i, n := range c.nodes {
		wg.Go(func() { errs[i] = n.Stop(ctx) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// KillAll sends SIGKILL to every node and waits until all are reaped.
func (c *Cluster) KillAll() {
	var wg sync.WaitGroup
	for _, n := range c.nodes {
		wg.Go(func() { _ = n.Kill() })
	}
	wg.Wait()
}
