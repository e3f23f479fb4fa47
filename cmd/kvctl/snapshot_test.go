package main

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/internal/testenv"
	"github.com/zkvstore/zkv/store"
	"github.com/zkvstore/zkv/store/disk"
)

// TestSnapshotSaveAndRestore saves a running cluster's data with kvctl,
// restores the file into a new data directory, and starts a server of a
// new cluster (new ZooKeeper and NATS) from it: it holds every key, with
// its value and deadline, and takes writes at revisions past them.
func TestSnapshotSaveAndRestore(t *testing.T) {
	kvctl := func(want int, args ...string) string {
		t.Helper()
		var stdout, stderr bytes.Buffer
		if code := run(t.Context(), append([]string{"kvctl", "--timeout", "30s"}, args...), strings.NewReader(""), &stdout, &stderr); code != want {
			t.Fatalf("kvctl %q: exit code %d, want %d; stderr %q", args, code, want, stderr.String())
		}
		return stdout.String()
	}
	connect := func(url string) *client.Client {
		nc, err := nats.Connect(url)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nc.Close)
		kv, err := client.New(nc)
		if err != nil {
			t.Fatal(err)
		}
		return kv
	}

	zk, ns := testenv.StartZooKeeper(t), testenv.StartNATS(t)
	testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk.Addr(), NATSURL: ns.URL()})
	kv := connect(ns.URL())
	const keys = 2500 // more than one page
	var top uint64
	for i := range keys {
		r, err := kv.Put(t.Context(), fmt.Sprintf("k%05d", i), fmt.Sprintf("value %d", i))
		if err != nil {
			t.Fatal(err)
		}
		top = r.Revision
	}
	ttl, err := kv.Put(t.Context(), "ttl", "soon gone", client.WithTTL(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(t.TempDir(), "backup.zkvsnap")
	if out := kvctl(ExitOK, "--nats", ns.URL(), "snapshot", "save", file); !strings.Contains(out, fmt.Sprintf("saved %d keys", keys+1)) {
		t.Fatalf("save: %q", out)
	}
	if out := kvctl(ExitOK, "snapshot", "inspect", file); !strings.Contains(out, fmt.Sprintf("%d keys", keys+1)) {
		t.Fatalf("inspect: %q", out)
	}
	dir := filepath.Join(t.TempDir(), "n1")
	kvctl(ExitOK, "snapshot", "restore", file, "--data-dir", dir, "--id", "n1")
	kvctl(ExitError, "snapshot", "restore", file, "--data-dir", dir, "--id", "n1") // not empty now

	zk2, ns2 := testenv.StartZooKeeper(t), testenv.StartNATS(t)
	testenv.StartCluster(t, 1, harness.NodeOptions{ZooKeeper: zk2.Addr(), NATSURL: ns2.URL(), Args: []string{"--data-dir", dir}})
	kv2 := connect(ns2.URL())
	testenv.WaitFor(t, 20*time.Second, "the restored server to lead", func() error {
		r, err := kv2.Put(t.Context(), "new", "write")
		if err != nil {
			return err
		}
		if r.Revision <= ttl.Revision || r.Revision <= top {
			t.Fatalf("a write on the restored data got revision %d, not past %d", r.Revision, ttl.Revision)
		}
		return nil
	})
	for _, i := range []int{0, 1234, keys - 1} {
		r, err := kv2.Get(t.Context(), fmt.Sprintf("k%05d", i))
		if err != nil || !r.Found || r.Value != fmt.Sprintf("value %d", i) {
			t.Fatalf("k%05d after the restore: %+v, %v", i, r, err)
		}
	}
	r, err := kv2.Get(t.Context(), "ttl")
	if err != nil || !r.Found || r.Expires != ttl.Expires {
		t.Fatalf("ttl after the restore: %+v, %v; want expires %d", r, err, ttl.Expires)
	}
}

// TestSnapshotRestoreKeepsTheSavedPosition: a restored directory continues
// from the file's revision and the epoch that wrote it, so a server started
// from it in a running cluster fetches every update after that revision;
// and a file holding an entry newer than its revision (not the store as of
// one revision) is refused.
func TestSnapshotRestoreKeepsTheSavedPosition(t *testing.T) {
	restore := func(h disk.Header, entries []store.KeyEntry) (disk.Header, int, string) {
		t.Helper()
		file := filepath.Join(t.TempDir(), "backup.zkvsnap")
		if _, err := disk.WriteSnapshotFile(file, h, onePage(entries), nil, nil); err != nil {
			t.Fatal(err)
		}
		dir := filepath.Join(t.TempDir(), "n2")
		var stdout, stderr bytes.Buffer
		code := run(t.Context(), []string{"kvctl", "snapshot", "restore", file, "--data-dir", dir, "--id", "n2"}, strings.NewReader(""), &stdout, &stderr)
		if code != ExitOK {
			return disk.Header{}, code, stderr.String()
		}
		got, err := disk.ReadSnapshotFile(filepath.Join(dir, "snapshot"), nil, func([]store.KeyEntry) {}, nil)
		if err != nil {
			t.Fatal(err)
		}
		return got, code, ""
	}
	h := disk.Header{Cluster: "c1"}
	h.SetPosition(store.Position{Epoch: 3, Stream: 3, Revision: 200, RevEpoch: 3})
	got, code, stderr := restore(h, []store.KeyEntry{
		{Key: "a", Entry: store.Entry{Value: "old", Revision: 10}},
		{Key: "z", Entry: store.Entry{Value: "new", Revision: 200}},
	})
	if code != ExitOK {
		t.Fatalf("restore: exit %d: %s", code, stderr)
	}
	if p := got.Position(); p != (store.Position{Revision: 200, RevEpoch: 3}) || got.Cluster != "" || got.Node != "n2" {
		t.Fatalf("restored header %+v: want revision 200 written by epoch 3, no cluster, no epoch", got)
	}
	h.SetPosition(store.Position{Epoch: 3, Stream: 3, Revision: 100})
	if _, code, stderr := restore(h, []store.KeyEntry{{Key: "z", Entry: store.Entry{Value: "new", Revision: 200}}}); code != ExitError || !strings.Contains(stderr, "past the file's revision") {
		t.Fatalf("restore of a file with an entry past its revision: exit %d, %q", code, stderr)
	}
}
