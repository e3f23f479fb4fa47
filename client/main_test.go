package client_test

import (
	"context"
	"fmt"
	"os"
	"testing"
	"time"

	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// TestMain starts the cluster the examples run against: a ZooKeeper, a
// NATS server and three kvservers, built from this module.
func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	kvserver, cleanup, err := cluster.Binary(ctx, "kvserver", os.Getenv("ZKV_KVSERVER"), true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "examples: kvserver:", err)
		return 1
	}
	defer cleanup()
	logs, err := os.MkdirTemp("", "zkv-client-examples")
	if err != nil {
		fmt.Fprintln(os.Stderr, "examples:", err)
		return 1
	}
	code := 1
	defer func() {
		if code == 0 {
			os.RemoveAll(logs)
		} else {
			fmt.Fprintln(os.Stderr, "examples: server logs in", logs)
		}
	}()
	lc, err := cluster.StartLocal(ctx, cluster.LocalOptions{KVServer: kvserver, LogDir: logs})
	if err != nil {
		fmt.Fprintln(os.Stderr, "examples: start a cluster:", err)
		return 1
	}
	defer func() {
		cctx, ccancel := context.WithTimeout(context.Background(), time.Minute)
		defer ccancel()
		_ = lc.Close(cctx)
	}()
	natsURL = lc.NATSURL()
	kv, err := client.Connect(natsURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "examples:", err)
		return 1
	}
	_, _, err = cluster.WaitLeader(ctx, kv, lc.Nodes(), cluster.LeaderWant{})
	kv.Close()
	if err != nil {
		fmt.Fprintln(os.Stderr, "examples: no leader:", err)
		return 1
	}
	code = m.Run()
	return code
}
