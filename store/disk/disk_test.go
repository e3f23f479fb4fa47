package disk

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/zkvstore/zkv/store"
)

// entries returns n entries in key order.
func entries(n int) []store.KeyEntry {
	out := make([]store.KeyEntry, n)
	for i := range out {
		out[i] = store.KeyEntry{Key: fmt.Sprintf("key/%05d", i), Entry: store.Entry{Value: fmt.Sprintf("value %d", i), Revision: uint64(i + 1), Expires: int64(i % 3)}}
	}
	return out
}

// onePage yields es as one page.
func onePage(es []store.KeyEntry) Pages {
	done := false
	return func() ([]store.KeyEntry, error) {
		if done {
			return nil, nil
		}
		done = true
		return es, nil
	}
}

// writeTestSnapshot writes n entries to a snapshot file and returns its path.
func writeTestSnapshot(t *testing.T, n int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "snapshot")
	h := Header{Cluster: "c1", Node: "n1", LogIndex: 42}
	h.SetPosition(store.Position{Epoch: 3, Stream: 3, Revision: uint64(n), RevEpoch: 2})
	got, err := WriteSnapshotFile(path, h, onePage(entries(n)), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if got.Keys != int64(n) {
		t.Fatalf("header keys %d, want %d", got.Keys, n)
	}
	return path
}

func TestSnapshotFileRoundTrip(t *testing.T) {
	path := writeTestSnapshot(t, 5000)
	var got []store.KeyEntry
	h, err := ReadSnapshotFile(path, nil, func(es []store.KeyEntry) { got = append(got, es...) }, nil)
	if err != nil {
		t.Fatal(err)
	}
	want := entries(5000)
	if len(got) != len(want) {
		t.Fatalf("%d entries, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("entry %d: %+v, want %+v", i, got[i], want[i])
		}
	}
	if p := h.Position(); p != (store.Position{Epoch: 3, Stream: 3, Revision: 5000, RevEpoch: 2}) || h.LogIndex != 42 || h.Cluster != "c1" || h.Format != FormatVersion {
		t.Fatalf("header %+v", h)
	}
}

// TestSnapshotDamageIsDetected flips a byte at several places, cuts the
// file short, and extends it: each read fails with ErrCorrupt.
func TestSnapshotDamageIsDetected(t *testing.T) {
	path := writeTestSnapshot(t, 300)
	good, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cases := map[string][]byte{
		"empty":        {},
		"cut short":    good[:len(good)/2],
		"no checksum":  good[:len(good)-4],
		"extra byte":   append(append([]byte{}, good...), 0),
		"bad magic":    flip(good, 0),
		"header flip":  flip(good, 12),
		"entry flip":   flip(good, len(good)/2),
		"count flip":   flip(good, len(good)-5),
		"checksum bit": flip(good, len(good)-1),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "snapshot")
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := ReadSnapshotFile(p, nil, func([]store.KeyEntry) {}, nil)
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("read of a damaged snapshot: %v, want ErrCorrupt", err)
			}
		})
	}
}

func flip(b []byte, i int) []byte {
	out := append([]byte{}, b...)
	out[i] ^= 0x40
	return out
}

func TestNewerSnapshotFormatIsRefused(t *testing.T) {
	path := writeTestSnapshot(t, 3)
	data, _ := os.ReadFile(path)
	data[len(snapMagic)-1]++
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadSnapshotFile(path, nil, func([]store.KeyEntry) {}, nil); !errors.Is(err, ErrFormat) {
		t.Fatalf("read: %v, want ErrFormat", err)
	}
}

func TestDirBelongsToOneClusterAndOneServer(t *testing.T) {
	path := t.TempDir()
	d, err := Open(path, Options{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Node: "n1"}); !errors.Is(err, ErrLocked) {
		t.Fatalf("second open while in use: %v, want ErrLocked", err)
	}
	if err := d.Join("cluster-a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Join("cluster-a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Join("cluster-b"); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("join another cluster: %v, want ErrOtherCluster", err)
	}
	if err := d.Close(); err != nil {
		t.Fatal(err)
	}
	// Reopened, it remembers its cluster, and refuses another node.
	d, err = Open(path, Options{Node: "n1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Join("cluster-b"); !errors.Is(err, ErrOtherCluster) {
		t.Fatalf("join another cluster after a reopen: %v, want ErrOtherCluster", err)
	}
	d.Close()
	if _, err := Open(path, Options{Node: "n2"}); err == nil {
		t.Fatal("another node opened n1's data directory")
	}
	// A newer format is refused.
	if err := os.WriteFile(filepath.Join(path, "meta.json"), []byte(`{"format": 99, "node": "n1"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(path, Options{Node: "n1"}); !errors.Is(err, ErrFormat) {
		t.Fatalf("open of a newer format: %v, want ErrFormat", err)
	}
}
