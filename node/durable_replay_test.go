package node

import (
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/store"
	"github.com/zkvstore/zkv/store/disk"
)

// TestFuzzySnapshotAndReplayRebuildTheStore writes random puts, deletes,
// prefix deletes and epoch changes to a store, logging each as the server
// does, takes a snapshot while writes go on between its pages, and checks
// that the snapshot plus the records after its index rebuild exactly the
// store: every key, value, revision and deadline, and the position.
func TestFuzzySnapshotAndReplayRebuildTheStore(t *testing.T) {
	for seed := uint64(1); seed <= 20; seed++ {
		t.Run(fmt.Sprint(seed), func(t *testing.T) {
			rng := rand.New(rand.NewPCG(seed, 7))
			src := store.New()
			var log [][]byte
			epoch := uint64(1)
			write := func() {
				key := fmt.Sprintf("k%02d/%d", rng.IntN(8), rng.IntN(40))
				w := store.Write{Key: key, Value: fmt.Sprint(rng.Uint64()), Leader: "n1"}
				switch r := rng.IntN(20); {
				case r == 0:
					epoch++
					marker := busUpdateMarker(epoch, src.Revision())
					if err := src.BeginEpoch(epoch, src.Revision()); err != nil {
						t.Fatal(err)
					}
					log = append(log, logApply(marker))
					return
				case r == 1:
					w = store.Write{Key: key[:3], Delete: true, Prefix: true, Leader: "n1"}
				case r < 5:
					w = store.Write{Key: key, Delete: true, Leader: "n1"}
				case r < 7:
					w.Expires = rng.Int64N(1 << 40)
				}
				u, _, applied, err := src.Write(epoch, w)
				if err != nil {
					t.Fatal(err)
				}
				if applied {
					log = append(log, logApply(busUpdate(u)))
				}
			}
			for range 200 + rng.IntN(200) {
				write()
			}
			// The snapshot: position and index first, then pages with
			// writes in between.
			index, pos := uint64(len(log)), src.Position()
			pages := disk.StorePages(src)
			interleaved := func() ([]store.KeyEntry, error) {
				page, err := pages()
				for range rng.IntN(30) {
					write()
				}
				return page, err
			}
			path := filepath.Join(t.TempDir(), "snapshot")
			h := disk.Header{Cluster: "c", LogIndex: index}
			h.SetPosition(pos)
			if _, err := disk.WriteSnapshotFile(path, h, smallPages(interleaved), src.RecentRequests(), nil); err != nil {
				t.Fatal(err)
			}
			for range rng.IntN(100) {
				write()
			}

			dst := store.New()
			got, err := disk.ReadSnapshotFile(path, nil, dst.Install, dst.RememberRequests)
			if err != nil {
				t.Fatal(err)
			}
			dst.Restore(got.Position())
			for i := got.LogIndex; i < uint64(len(log)); i++ {
				if err := replay(dst, log[i]); err != nil {
					t.Fatalf("record %d: %v", i+1, err)
				}
			}
			if a, b := src.Position(), dst.Position(); a.Revision != b.Revision || a.Epoch != b.Epoch || a.Stream != b.Stream {
				t.Fatalf("position: source %+v, rebuilt %+v", a, b)
			}
			if dst.Missed() != 0 {
				t.Fatalf("the rebuilt store counts %d missed updates", dst.Missed())
			}
			want, _, _, _ := src.Snapshot("", 1<<20, 1<<30)
			have, _, _, _ := dst.Snapshot("", 1<<20, 1<<30)
			if len(want) != len(have) {
				t.Fatalf("%d keys rebuilt, want %d", len(have), len(want))
			}
			for i := range want {
				if want[i] != have[i] {
					t.Fatalf("entry %d: rebuilt %+v, want %+v", i, have[i], want[i])
				}
			}
		})
	}
}

// smallPages splits each page of p in pieces of at most 7 entries, so a
// small store still makes many pages with writes between them.
func smallPages(p disk.Pages) disk.Pages {
	var rest []store.KeyEntry
	return func() ([]store.KeyEntry, error) {
		if len(rest) == 0 {
			page, err := p()
			if err != nil || len(page) == 0 {
				return page, err
			}
			rest = page
		}
		n := min(len(rest), 7)
		out := rest[:n]
		rest = rest[n:]
		return out, nil
	}
}

func busUpdateMarker(epoch, seq uint64) bus.Update {
	return bus.Update{Kind: bus.KindEpoch, Epoch: epoch, Seq: seq, Leader: "n1"}
}
