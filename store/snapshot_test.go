package store

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
)

// pageAll reads s's whole snapshot in pages of limit entries or maxBytes.
func pageAll(t *testing.T, s *Store, limit, maxBytes int) []KeyEntry {
	t.Helper()
	var all []KeyEntry
	after := ""
	for pages := 0; ; pages++ {
		if pages > s.Len()+1 {
			t.Fatalf("paging does not end after %d pages", pages)
		}
		page, _, _, more := s.Snapshot(after, limit, maxBytes)
		if len(page) > max(limit, 1) {
			t.Fatalf("page of %d entries, limit %d", len(page), limit)
		}
		all = append(all, page...)
		if !more {
			return all
		}
		if len(page) == 0 {
			t.Fatal("empty page with more to come")
		}
		after = page[len(page)-1].Key
	}
}

func TestSnapshotIndex(t *testing.T) {
	s := New()
	for _, k := range []string{"b", "a", "d", "c", "a"} {
		if _, err := s.Put(1, k, "v-"+k); err != nil {
			t.Fatal(err)
		}
	}
	// Overwriting "a" keeps one index entry and the newest value.
	tests := []struct {
		name     string
		after    string
		limit    int
		maxBytes int
		want     []string
		more     bool
	}{
		{"all", "", 10, 1 << 20, []string{"a", "b", "c", "d"}, false},
		{"after a present key", "b", 10, 1 << 20, []string{"c", "d"}, false},
		{"after an absent key", "bb", 10, 1 << 20, []string{"c", "d"}, false},
		{"after the last key", "d", 10, 1 << 20, nil, false},
		{"limit", "", 2, 1 << 20, []string{"a", "b"}, true},
		{"limit 0 is one entry", "", 0, 1 << 20, []string{"a"}, true},
		{"maxBytes", "", 10, 8, []string{"a", "b"}, true},
		{"maxBytes smaller than one entry", "a", 10, 1, []string{"b"}, true},
		{"limit at the end", "b", 2, 1 << 20, []string{"c", "d"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			page, rev, epoch, more := s.Snapshot(tt.after, tt.limit, tt.maxBytes)
			var keys []string
			for _, e := range page {
				keys = append(keys, e.Key)
				if e.Value != "v-"+e.Key {
					t.Errorf("key %q has value %q", e.Key, e.Value)
				}
			}
			if !slices.Equal(keys, tt.want) || more != tt.more {
				t.Errorf("Snapshot(%q, %d, %d) = %v more=%v, want %v more=%v", tt.after, tt.limit, tt.maxBytes, keys, more, tt.want, tt.more)
			}
			if rev != 5 || epoch != 1 {
				t.Errorf("rev %d epoch %d, want 5 and 1", rev, epoch)
			}
		})
	}
	if e, _ := s.Get("a"); e.Revision != 5 {
		t.Errorf("a at revision %d, want 5 (the overwrite)", e.Revision)
	}
}

func TestInstallMergesIntoIndex(t *testing.T) {
	s := New()
	s.Reserve(10)
	if _, err := s.Put(1, "b", "new"); err != nil { // revision 1
		t.Fatal(err)
	}
	if err := s.ApplyNewer(Update{Epoch: 1, Seq: 9, Key: "c", Value: "live"}); err != nil {
		t.Fatal(err)
	}
	// A page taken before "c" was written at 9 (the leader's copy wins over
	// whatever this store held, "b" included), and one with a new key; then
	// the live update buffered meanwhile, applied as a catch-up does.
	s.Install([]KeyEntry{
		{Key: "a", Entry: Entry{Value: "page", Revision: 3}},
		{Key: "b", Entry: Entry{Value: "new", Revision: 1}},
		{Key: "c", Entry: Entry{Value: "page", Revision: 4}},
	})
	s.Reserve(1) // fewer than held: nothing changes
	s.Install([]KeyEntry{{Key: "d", Entry: Entry{Value: "page", Revision: 5}}})
	if err := s.ApplyNewer(Update{Epoch: 1, Seq: 9, Key: "c", Value: "live"}); err != nil {
		t.Fatal(err)
	}
	got := pageAll(t, s, 1, 1<<20)
	want := []KeyEntry{
		{"a", Entry{Value: "page", Revision: 3}},
		{"b", Entry{Value: "new", Revision: 1}},
		{"c", Entry{Value: "live", Revision: 9}},
		{"d", Entry{Value: "page", Revision: 5}},
	}
	if !slices.Equal(got, want) {
		t.Errorf("after install: %v, want %v", got, want)
	}
}

// TestSnapshotMatchesSortedReference writes random keys by every path
// (Put, Apply, ApplyNewer, Install in pages bigger than a batch) and
// compares paging at random sizes with a sorted copy of a plain map.
func TestSnapshotMatchesSortedReference(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := range 5 {
		leader, replica := New(), New()
		ref := map[string]Entry{}
		installed := map[string]bool{}
		for i := range 3000 {
			k := fmt.Sprintf("k%d", rng.IntN(2000))
			if rng.IntN(7) == 0 {
				k += "/" + string(rune('a'+rng.IntN(26))) // prefixes of other keys
			}
			v := fmt.Sprintf("v%d-%d", round, i)
			u, err := leader.Put(1, k, v)
			if err != nil {
				t.Fatal(err)
			}
			ref[k] = Entry{Value: v, Revision: u.Seq}
			switch rng.IntN(3) {
			case 0:
				// Skipped revisions are gaps: reported, and applied anyway.
				if err := replica.Apply(u); err != nil && !errors.Is(err, ErrGap) {
					t.Fatal(err)
				}
			case 1:
				if err := replica.ApplyNewer(u); err != nil {
					t.Fatal(err)
				}
			default:
				installed[k] = true
			}
		}
		// Pages carry the leader's copy as it is: the newest entry of each key.
		var installs []KeyEntry
		for k := range installed {
			installs = append(installs, KeyEntry{Key: k, Entry: ref[k]})
		}
		rng.Shuffle(len(installs), func(i, j int) { installs[i], installs[j] = installs[j], installs[i] })
		replica.Install(installs)
		want := make([]KeyEntry, 0, len(ref))
		for k, e := range ref {
			want = append(want, KeyEntry{Key: k, Entry: e})
		}
		slices.SortFunc(want, func(a, b KeyEntry) int {
			switch {
			case a.Key < b.Key:
				return -1
			case a.Key > b.Key:
				return 1
			}
			return 0
		})
		for _, s := range []*Store{leader, replica} {
			limit, maxBytes := 1+rng.IntN(300), 1+rng.IntN(4000)
			if got := pageAll(t, s, limit, maxBytes); !slices.Equal(got, want) {
				t.Fatalf("round %d, pages of %d entries or %d bytes: %d entries, want %d", round, limit, maxBytes, len(got), len(want))
			}
			if s.Len() != len(want) {
				t.Fatalf("round %d: Len %d, want %d", round, s.Len(), len(want))
			}
		}
	}
}

// TestInstallPageReplacesTheRange: pages installed in key order leave the
// store exactly the leader's, removing keys the leader lacks and taking the
// leader's entry over a higher local revision (a deposed leader's write).
func TestInstallPageReplacesTheRange(t *testing.T) {
	s := New()
	for _, u := range []Update{
		{Epoch: 1, Seq: 12, Key: "k", Value: "deposed"},
		{Epoch: 1, Seq: 13, Key: "ghost", Value: "boo"},
		{Epoch: 1, Seq: 14, Key: "zz", Value: "gone"},
	} {
		if err := s.ApplyNewer(u); err != nil {
			t.Fatal(err)
		}
	}
	removed := s.InstallPage("", []KeyEntry{{Key: "a", Entry: Entry{Value: "1", Revision: 3}}, {Key: "k", Entry: Entry{Value: "new", Revision: 11}}}, false)
	removed += s.InstallPage("k", []KeyEntry{{Key: "m", Entry: Entry{Value: "2", Revision: 5}}}, true)
	got := pageAll(t, s, 10, 1<<20)
	want := []KeyEntry{{"a", Entry{Value: "1", Revision: 3}}, {"k", Entry{Value: "new", Revision: 11}}, {"m", Entry{Value: "2", Revision: 5}}}
	if !slices.Equal(got, want) || removed != 2 {
		t.Fatalf("after the pages: %v (removed %d), want %v (removed 2)", got, removed, want)
	}
}
