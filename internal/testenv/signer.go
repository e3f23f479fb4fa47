package testenv

import (
	"encoding/json"
	"fmt"
	"log"
	"strings"
	"testing"
	"time"

	"github.com/go-zookeeper/zk"

	"zkv/bus"
)

// Record is what tests read of a cluster record (election.Record, which
// this package cannot import: election's tests import it).
type Record struct {
	ClusterID string `json:"cluster_id"`
	Key       []byte `json:"key"`
	Epoch     uint64 `json:"epoch"`
	Revision  uint64 `json:"revision"`
}

// DefaultRecordPath is the cluster record of kvserver's default election
// path.
const DefaultRecordPath = "/election-cluster"

// ClusterRecord reads the cluster record at recordPath from the ZooKeeper
// at zkAddr (digest credentials auth, "" for none), waiting up to 30 s for
// a server to create it. Tests use it to act as a member of the cluster,
// or to check what the record says.
func ClusterRecord(t testing.TB, zkAddr, recordPath, auth string) Record {
	t.Helper()
	conn, _, err := zk.Connect(strings.Split(zkAddr, ","), 5*time.Second,
		zk.WithLogger(log.New(nopWriter{}, "", 0)), zk.WithLogInfo(false))
	if err != nil {
		t.Fatalf("connect to ZooKeeper %s: %v", zkAddr, err)
	}
	defer conn.Close()
	if auth != "" {
		if err := conn.AddAuth("digest", []byte(auth)); err != nil {
			t.Fatalf("ZooKeeper auth: %v", err)
		}
	}
	var rec Record
	WaitFor(t, 30*time.Second, "cluster record "+recordPath, func() error {
		data, _, err := conn.Get(recordPath)
		if err != nil {
			return err
		}
		if err := json.Unmarshal(data, &rec); err != nil {
			return fmt.Errorf("decode %s: %w", recordPath, err)
		}
		return nil
	})
	return rec
}

// ClusterSigner returns a signer holding the key of the cluster whose
// record is at recordPath, so a test can send what only servers may send.
func ClusterSigner(t testing.TB, zkAddr, recordPath, auth string) *bus.Signer {
	t.Helper()
	rec := ClusterRecord(t, zkAddr, recordPath, auth)
	sg, err := bus.NewSigner(rec.ClusterID, rec.Key)
	if err != nil {
		t.Fatal(err)
	}
	return sg
}

type nopWriter struct{}

func (nopWriter) Write(p []byte) (int, error) { return len(p), nil }
