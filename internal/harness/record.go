package harness

import (
	"context"
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"time"

	"github.com/go-zookeeper/zk"
)

// ClusterRecord is what tests and the test driver read of a kvserver
// cluster record (election.Record, which this package does not import so
// that election's tests can use it).
type ClusterRecord struct {
	ClusterID string `json:"cluster_id"`
	Key       []byte `json:"key"`
	Epoch     uint64 `json:"epoch"`
	Revision  uint64 `json:"revision"`
}

// RecordPath is the cluster record path kvserver derives from an election
// path when --record-path is not given.
func RecordPath(electionPath string) string { return electionPath + "-cluster" }

// ReadClusterRecord reads the cluster record at path from the ZooKeeper at
// connect (comma-separated host:port), with digest credentials auth ("" for
// none). It polls until a server has created the record or ctx ends, and
// closes its ZooKeeper session before it returns.
func ReadClusterRecord(ctx context.Context, connect, path, auth string) (ClusterRecord, error) {
	conn, _, err := zk.Connect(strings.Split(connect, ","), 5*time.Second,
		zk.WithLogger(log.New(nopWriter{}, "", 0)), zk.WithLogInfo(false))
	if err != nil {
		return ClusterRecord{}, fmt.Errorf("cluster record: connect to ZooKeeper %s: %w", connect, err)
	}
	defer conn.Close()
	if auth != "" {
		if err := conn.AddAuth("digest", []byte(auth)); err != nil {
			return ClusterRecord{}, fmt.Errorf("cluster record: ZooKeeper auth: %w", err)
		}
	}
	var rec ClusterRecord
	err = WaitFor(ctx, 50*time.Millisecond, func() error {
		data, _, err := conn.Get(path)
		if err != nil {
			return fmt.Errorf("read %s: %w", path, err)
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", path, err)
		}
		if rec.ClusterID == "" || len(rec.Key) == 0 {
			return fmt.Errorf("%s has no cluster id or key", path)
		}
		return nil
	})
	if err != nil {
		return ClusterRecord{}, fmt.Errorf("cluster record: %w", err)
	}
	return rec, nil
}

// nopWriter discards go-zookeeper's log lines.
type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
