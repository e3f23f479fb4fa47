package disk

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zkvstore/zkv/store"
)

// BenchmarkLoadSnapshot is a restart's snapshot read: a file of 1M keys
// of 100-byte values read into an empty store, as node.openData does
// (Reserve from the header, Install per batch). -benchtime 1x is one
// load; a CPU profile of it shows where a restart's time goes.
func BenchmarkLoadSnapshot(b *testing.B) {
	const n = 1_000_000
	value := strings.Repeat("v", 100)
	es := make([]store.KeyEntry, n)
	for i := range es {
		es[i] = store.KeyEntry{Key: fmt.Sprintf("key-%07d", i), Entry: store.Entry{Value: value, Revision: uint64(i + 1)}}
	}
	path := filepath.Join(b.TempDir(), "snapshot")
	h := Header{Cluster: "c1", Node: "n1"}
	h.SetPosition(store.Position{Epoch: 1, Stream: n, Revision: n, RevEpoch: 1})
	if _, err := WriteSnapshotFile(path, h, onePage(es), nil, nil); err != nil {
		b.Fatal(err)
	}
	es = nil
	b.ResetTimer()
	for b.Loop() {
		st := store.New()
		_, err := ReadSnapshotFile(path, func(h Header) error { st.Reserve(int(h.Keys)); return nil }, st.Install, nil)
		if err != nil {
			b.Fatal(err)
		}
		if st.Len() != n {
			b.Fatalf("%d keys, want %d", st.Len(), n)
		}
	}
}
