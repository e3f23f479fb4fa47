package bench

import (
	"context"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Every benchmark's world is a cluster.Local: ZooKeeper, NATS and the
// kvservers, started and stopped by package cluster. What is here only
// connects to it and tears it down.

// startTimeout bounds starting a cluster: ZooKeeper (an ensemble takes
// longest), NATS and the kvservers.
const startTimeout = 2 * time.Minute

// teardownTimeout bounds stopping a cluster, which runs even after the
// run's context was cancelled (Ctrl-C).
const teardownTimeout = 20 * time.Second

// startLocal starts a cluster with opts, bounded by startTimeout.
func startLocal(ctx context.Context, opts cluster.LocalOptions) (*cluster.Local, error) {
	cctx, cancel := context.WithTimeout(ctx, startTimeout)
	defer cancel()
	return cluster.StartLocal(cctx, opts)
}

// closeLocal stops everything c started, also after ctx was cancelled.
func closeLocal(ctx context.Context, c *cluster.Local) {
	cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), teardownTimeout)
	defer cancel()
	_ = c.Close(cctx)
}

// dial opens a connection to the cluster's NATS server (the first, when
// it runs several) that reconnects for ever.
func dial(c *cluster.Local) (*nats.Conn, error) {
	return nats.Connect(c.NATSURL(), nats.MaxReconnects(-1))
}

// firstLeader waits (at most a minute) until c's servers agree on a
// leader, and returns it and the others in ID order.
func firstLeader(ctx context.Context, kv *client.Client, c *cluster.Local) (leader string, followers []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	got, _, err := cluster.WaitLeader(ctx, kv, c.Nodes(), cluster.LeaderWant{})
	if err != nil {
		return "", nil, err
	}
	for _, id := range c.Nodes() {
		if id != got.Leader {
			followers = append(followers, id)
		}
	}
	return got.Leader, followers, nil
}

// zooKeeperVersion is the version c's ZooKeeper reports, or "unknown".
func zooKeeperVersion(ctx context.Context, c *cluster.Local) string {
	if v := c.Versions(ctx)["zookeeper"]; v != "" {
		return v
	}
	return "unknown"
}
