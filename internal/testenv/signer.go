package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
)

// Record is what tests read of a cluster record (election.Record, which
// this package cannot import: election's tests import it).
type Record = harness.ClusterRecord

// DefaultRecordPath is the cluster record of kvserver's default election
// path.
const DefaultRecordPath = "/election-cluster"

// ClusterRecord reads the cluster record at recordPath from the ZooKeeper
// at zkAddr (digest credentials auth, "" for none), waiting up to 30 s for
// a server to create it. Tests use it to act as a member of the cluster,
// or to check what the record says.
func ClusterRecord(t testing.TB, zkAddr, recordPath, auth string) Record {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	rec, err := harness.ReadClusterRecord(ctx, zkAddr, recordPath, auth)
	if err != nil {
		t.Fatalf("%s on ZooKeeper %s: %v", recordPath, zkAddr, err)
	}
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
