package store

import (
	"errors"
	"fmt"
	"math"
	"sync"
	"testing"
)

// step is one call on a Store: exactly one of the op fields is used.
type step struct {
	op      string // "put", "apply", "begin" or "observe"
	epoch   uint64
	seq     uint64 // apply and begin
	key     string // put and apply
	value   string // put and apply
	wantErr error  // sentinel the error matches; nil means no error
	wantGap *GapError
	wantNew bool   // observe: the epoch was new
	wantSeq uint64 // put: the Update's Seq
}

func put(epoch uint64, key, value string, seq uint64, err error) step {
	return step{op: "put", epoch: epoch, key: key, value: value, wantSeq: seq, wantErr: err}
}

func apply(epoch, seq uint64, key, value string, err error) step {
	return step{op: "apply", epoch: epoch, seq: seq, key: key, value: value, wantErr: err}
}

func applyGap(epoch, seq uint64, key, value string, from, to uint64) step {
	return step{op: "apply", epoch: epoch, seq: seq, key: key, value: value, wantErr: ErrGap,
		wantGap: &GapError{Epoch: epoch, From: from, To: to}}
}

func begin(epoch, seq uint64, err error) step {
	return step{op: "begin", epoch: epoch, seq: seq, wantErr: err}
}

func beginGap(epoch, seq, from, to uint64) step {
	return step{op: "begin", epoch: epoch, seq: seq, wantErr: ErrGap, wantGap: &GapError{Epoch: epoch, From: from, To: to}}
}

func observe(epoch uint64, isNew bool) step {
	return step{op: "observe", epoch: epoch, wantNew: isNew}
}

func (st step) run(t *testing.T, s *Store) {
	t.Helper()
	var err error
	switch st.op {
	case "put":
		var u Update
		u, err = s.Put(st.epoch, st.key, st.value)
		if err == nil {
			want := Update{Epoch: st.epoch, Seq: st.wantSeq, Key: st.key, Value: st.value}
			if u != want {
				t.Errorf("%s: Put returned %+v, want %+v", st, u, want)
			}
		} else if u != (Update{}) {
			t.Errorf("%s: failed Put returned %+v", st, u)
		}
	case "apply":
		err = s.Apply(Update{Epoch: st.epoch, Seq: st.seq, Key: st.key, Value: st.value})
	case "begin":
		err = s.BeginEpoch(st.epoch, st.seq)
	case "observe":
		if got := s.Observe(st.epoch); got != st.wantNew {
			t.Errorf("%s = %v, want %v", st, got, st.wantNew)
		}
		return
	default:
		t.Fatalf("unknown op %q", st.op)
	}
	if st.wantErr == nil {
		if err != nil {
			t.Errorf("%s: %v", st, err)
		}
		return
	}
	if !errors.Is(err, st.wantErr) {
		t.Errorf("%s = %v, want %v", st, err, st.wantErr)
	}
	if st.wantGap != nil {
		var g *GapError
		if !errors.As(err, &g) {
			t.Errorf("%s = %v, want a *GapError", st, err)
		} else if *g != *st.wantGap {
			t.Errorf("%s: gap %+v, want %+v", st, *g, *st.wantGap)
		}
	}
}

func (st step) String() string {
	return fmt.Sprintf("%s(epoch %d seq %d %q=%q)", st.op, st.epoch, st.seq, st.key, st.value)
}

func TestStore(t *testing.T) {
	tests := []struct {
		name       string
		steps      []step
		wantRev    uint64
		wantEpoch  uint64
		wantMissed uint64
		want       map[string]Entry // keys that must hold these entries
		wantAbsent []string         // keys that must be missing
	}{
		{
			name:       "empty",
			wantAbsent: []string{"a"},
		},
		{
			name:      "leader puts",
			steps:     []step{put(1, "a", "1", 1, nil), put(1, "b", "2", 2, nil), put(1, "a", "3", 3, nil)},
			wantRev:   3,
			wantEpoch: 1,
			want:      map[string]Entry{"a": {Value: "3", Revision: 3}, "b": {Value: "2", Revision: 2}},
		},
		{
			name:      "put of an empty value",
			steps:     []step{put(1, "a", "", 1, nil)},
			wantRev:   1,
			wantEpoch: 1,
			want:      map[string]Entry{"a": {Value: "", Revision: 1}},
		},
		{
			name:      "put under a higher epoch continues the revision",
			steps:     []step{put(1, "a", "1", 1, nil), put(2, "a", "2", 2, nil)},
			wantRev:   2,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "2", Revision: 2}},
		},
		{
			name:      "put under an old epoch is refused",
			steps:     []step{put(2, "a", "1", 1, nil), put(1, "a", "old", 0, ErrOldEpoch)},
			wantRev:   1,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "1", Revision: 1}},
		},
		{
			name:      "put after observing a newer epoch is refused",
			steps:     []step{put(1, "a", "1", 1, nil), observe(2, true), put(1, "a", "fenced", 0, ErrOldEpoch)},
			wantRev:   1,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "1", Revision: 1}},
		},
		{
			name: "replica applies in order",
			steps: []step{
				begin(1, 0, nil),
				apply(1, 1, "a", "1", nil), apply(1, 2, "b", "2", nil), apply(1, 3, "a", "3", nil),
			},
			wantRev:   3,
			wantEpoch: 1,
			want:      map[string]Entry{"a": {Value: "3", Revision: 3}, "b": {Value: "2", Revision: 2}},
		},
		{
			name:      "first update without a marker",
			steps:     []step{apply(1, 1, "a", "1", nil)},
			wantRev:   1,
			wantEpoch: 1,
			want:      map[string]Entry{"a": {Value: "1", Revision: 1}},
		},
		{
			name:       "gap is reported and the update applied",
			steps:      []step{apply(1, 1, "a", "1", nil), applyGap(1, 5, "b", "5", 2, 4)},
			wantRev:    5,
			wantEpoch:  1,
			wantMissed: 3,
			want:       map[string]Entry{"a": {Value: "1", Revision: 1}, "b": {Value: "5", Revision: 5}},
		},
		{
			name: "gaps add up",
			steps: []step{
				applyGap(1, 3, "a", "3", 1, 2),
				apply(1, 4, "a", "4", nil),
				applyGap(1, 6, "a", "6", 5, 5),
			},
			wantRev:    6,
			wantEpoch:  1,
			wantMissed: 3,
			want:       map[string]Entry{"a": {Value: "6", Revision: 6}},
		},
		{
			name: "updates skipped by a gap are then duplicates",
			steps: []step{
				apply(1, 1, "a", "1", nil), applyGap(1, 4, "a", "4", 2, 3),
				apply(1, 3, "a", "late", ErrDuplicate),
			},
			wantRev:    4,
			wantEpoch:  1,
			wantMissed: 2,
			want:       map[string]Entry{"a": {Value: "4", Revision: 4}},
		},
		{
			name: "duplicates are dropped",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "a", "2", nil),
				apply(1, 2, "a", "2", ErrDuplicate), apply(1, 1, "a", "1", ErrDuplicate),
			},
			wantRev:    2,
			wantEpoch:  1,
			want:       map[string]Entry{"a": {Value: "2", Revision: 2}},
			wantAbsent: []string{"b"},
		},
		{
			name: "another update at a held place is divergence, not a duplicate",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "a", "2", nil),
				apply(1, 2, "a", "again", ErrDiverged), apply(1, 1, "b", "old", ErrDiverged),
			},
			wantRev:    2,
			wantEpoch:  1,
			wantMissed: 2,
			want:       map[string]Entry{"a": {Value: "2", Revision: 2}},
			wantAbsent: []string{"b"},
		},
		{
			name: "update of an old epoch is refused",
			steps: []step{
				applyGap(2, 5, "a", "new", 1, 4),
				apply(1, 6, "a", "deposed", ErrOldEpoch), apply(1, 5, "b", "deposed", ErrOldEpoch),
			},
			wantRev:    5,
			wantEpoch:  2,
			wantMissed: 4,
			want:       map[string]Entry{"a": {Value: "new", Revision: 5}},
			wantAbsent: []string{"b"},
		},
		{
			name: "update of an observed epoch's predecessor is refused",
			steps: []step{
				apply(1, 1, "a", "1", nil), observe(2, true),
				apply(1, 2, "a", "fenced", ErrOldEpoch),
			},
			wantRev:   1,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "1", Revision: 1}},
		},
		{
			name: "new epoch marker continuing the revision",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "a", "2", nil),
				begin(2, 2, nil), apply(2, 3, "a", "3", nil),
			},
			wantRev:   3,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "3", Revision: 3}},
		},
		{
			name: "new epoch marker past the revision is a gap",
			steps: []step{
				apply(1, 1, "a", "1", nil),
				beginGap(2, 4, 2, 4), apply(2, 5, "a", "5", nil),
			},
			wantRev:    5,
			wantEpoch:  2,
			wantMissed: 3,
			want:       map[string]Entry{"a": {Value: "5", Revision: 5}},
		},
		{
			name: "diverged: new epoch starts below the revision",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "a", "2", nil), apply(1, 3, "b", "unacked", nil),
				begin(2, 2, ErrDiverged), apply(2, 3, "b", "new", nil),
			},
			wantRev:    3,
			wantEpoch:  2,
			wantMissed: 1,
			want:       map[string]Entry{"a": {Value: "2", Revision: 2}, "b": {Value: "new", Revision: 3}},
		},
		{
			name:       "old epoch marker is refused and changes nothing",
			steps:      []step{applyGap(3, 7, "a", "7", 1, 6), begin(2, 10, ErrOldEpoch), begin(1, 0, ErrOldEpoch)},
			wantRev:    7,
			wantEpoch:  3,
			wantMissed: 6,
			want:       map[string]Entry{"a": {Value: "7", Revision: 7}},
		},
		{
			name: "higher-epoch put without a marker: contiguous",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "a", "2", nil),
				apply(2, 3, "a", "3", nil),
			},
			wantRev:   3,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "3", Revision: 3}},
		},
		{
			name: "higher-epoch put without a marker: gap",
			steps: []step{
				apply(1, 1, "a", "1", nil),
				applyGap(2, 5, "a", "5", 2, 4),
			},
			wantRev:    5,
			wantEpoch:  2,
			wantMissed: 3,
			want:       map[string]Entry{"a": {Value: "5", Revision: 5}},
		},
		{
			name: "higher-epoch put without a marker: diverged",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "a", "2", nil), apply(1, 3, "a", "3", nil),
				apply(2, 2, "b", "new", ErrDiverged),
			},
			wantRev:    2,
			wantEpoch:  2,
			wantMissed: 1,
			want:       map[string]Entry{"a": {Value: "3", Revision: 3}, "b": {Value: "new", Revision: 2}},
		},
		{
			name: "leader takes over after replicating",
			steps: []step{
				apply(1, 1, "a", "1", nil), apply(1, 2, "b", "2", nil),
				observe(2, true), put(2, "c", "3", 3, nil),
			},
			wantRev:   3,
			wantEpoch: 2,
			want:      map[string]Entry{"a": {Value: "1", Revision: 1}, "b": {Value: "2", Revision: 2}, "c": {Value: "3", Revision: 3}},
		},
		{
			name: "observe never lowers the epoch",
			steps: []step{
				observe(0, false), observe(3, true), observe(3, false), observe(2, false),
				begin(3, 0, nil), apply(3, 1, "a", "1", nil),
			},
			wantRev:   1,
			wantEpoch: 3,
			want:      map[string]Entry{"a": {Value: "1", Revision: 1}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for _, st := range tt.steps {
				st.run(t, s)
			}
			if got := s.Revision(); got != tt.wantRev {
				t.Errorf("Revision = %d, want %d", got, tt.wantRev)
			}
			if got := s.Epoch(); got != tt.wantEpoch {
				t.Errorf("Epoch = %d, want %d", got, tt.wantEpoch)
			}
			if got := s.Missed(); got != tt.wantMissed {
				t.Errorf("Missed = %d, want %d", got, tt.wantMissed)
			}
			if got := s.Len(); got != len(tt.want) {
				t.Errorf("Len = %d, want %d", got, len(tt.want))
			}
			for k, want := range tt.want {
				if got, ok := s.Get(k); !ok || got != want {
					t.Errorf("Get(%q) = %+v, %v; want %+v", k, got, ok, want)
				}
			}
			for _, k := range tt.wantAbsent {
				if got, ok := s.Get(k); ok {
					t.Errorf("Get(%q) = %+v, want missing", k, got)
				}
			}
		})
	}
}

func TestGapError(t *testing.T) {
	tests := []struct {
		err  *GapError
		want string
	}{
		{&GapError{Epoch: 2, From: 3, To: 5}, "replication gap in epoch 2: missed seq 3..5 (3 updates)"},
		{&GapError{Epoch: 1, From: 7, To: 7}, "replication gap in epoch 1: missed seq 7..7 (1 updates)"},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() = %q, want %q", got, tt.want)
			}
			wrapped := fmt.Errorf("apply: %w", tt.err)
			if !errors.Is(wrapped, ErrGap) {
				t.Error("wrapped GapError does not match ErrGap")
			}
			for _, other := range []error{ErrOldEpoch, ErrDuplicate, ErrDiverged} {
				if errors.Is(wrapped, other) {
					t.Errorf("GapError matches %v", other)
				}
			}
		})
	}
}

// TestStoreConcurrent is a smoke test for the race detector: a leader's
// puts, a replica's applies and readers at once.
func TestStoreConcurrent(t *testing.T) {
	const (
		writers = 8
		puts    = 200
		readers = 4
	)
	leader, replica := New(), New()
	updates := make(chan Update, writers*puts)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range puts {
				u, err := leader.Put(1, fmt.Sprintf("w%d-%d", w, i%10), fmt.Sprint(i))
				if err != nil {
					t.Errorf("Put: %v", err)
					return
				}
				updates <- u
			}
		})
	}
	for range readers {
		wg.Go(func() {
			for i := range puts {
				leader.Get(fmt.Sprintf("w0-%d", i%10))
				_ = leader.Len()
				_ = leader.Revision()
				_ = leader.Missed()
				_ = leader.Epoch()
				replica.Get("w1-1")
				leader.Observe(1)
			}
		})
	}
	// The replica applies whatever arrives, in any order: gaps and
	// duplicates are expected, panics and races are not.
	applied := make(chan struct{})
	go func() {
		defer close(applied)
		for u := range updates {
			err := replica.Apply(u)
			if err != nil && !errors.Is(err, ErrGap) && !errors.Is(err, ErrDuplicate) {
				t.Errorf("Apply(%+v): %v", u, err)
			}
		}
	}()
	wg.Wait()
	close(updates)
	<-applied

	if got, want := leader.Revision(), uint64(writers*puts); got != want {
		t.Errorf("leader Revision = %d, want %d", got, want)
	}
	if got, want := leader.Len(), writers*10; got != want {
		t.Errorf("leader Len = %d, want %d", got, want)
	}
	if got, want := replica.Revision(), uint64(writers*puts); got > want {
		t.Errorf("replica Revision = %d, beyond the leader's %d", got, want)
	}
}

// TestStreamFollowsEpochStarts covers the cases where the fence epoch and
// the stream being followed differ.
func TestStreamFollowsEpochStarts(t *testing.T) {
	t.Run("seq 0 is refused", func(t *testing.T) {
		s := New()
		if err := s.Apply(Update{Epoch: 2, Seq: 0, Key: "a"}); !errors.Is(err, ErrBadUpdate) {
			t.Fatalf("Apply(seq 0) = %v, want ErrBadUpdate", err)
		}
		if s.Missed() != 0 || s.Len() != 0 {
			t.Fatalf("seq 0 changed the store: missed=%d len=%d", s.Missed(), s.Len())
		}
	})
	t.Run("repeated marker behind does not rewind", func(t *testing.T) {
		s := New()
		mustNil(t, s.BeginEpoch(3, 0))
		mustNil(t, s.Apply(Update{Epoch: 3, Seq: 1, Key: "a", Value: "1"}))
		mustNil(t, s.Apply(Update{Epoch: 3, Seq: 2, Key: "a", Value: "2"}))
		mustNil(t, s.BeginEpoch(3, 1)) // an older marker of the same epoch
		if s.Revision() != 2 {
			t.Fatalf("revision %d after a repeated marker, want 2", s.Revision())
		}
		if err := s.Apply(Update{Epoch: 3, Seq: 2, Key: "a", Value: "2"}); !errors.Is(err, ErrDuplicate) {
			t.Fatalf("re-apply of seq 2 = %v, want ErrDuplicate", err)
		}
	})
	t.Run("observed epoch then lost marker on a replica ahead", func(t *testing.T) {
		s := New()
		mustNil(t, s.BeginEpoch(1, 0))
		for i := uint64(1); i <= 5; i++ {
			mustNil(t, s.Apply(Update{Epoch: 1, Seq: i, Key: "k", Value: "old"}))
		}
		s.Observe(2) // the new leader took over at seq 4; its marker is lost
		err := s.Apply(Update{Epoch: 2, Seq: 5, Key: "k", Value: "new"})
		if !errors.Is(err, ErrDiverged) {
			t.Fatalf("first put of the new epoch = %v, want ErrDiverged", err)
		}
		if e, _ := s.Get("k"); e.Value != "new" || e.Revision != 5 {
			t.Fatalf("k = %+v, want the new leader's value at 5", e)
		}
		if s.Missed() == 0 {
			t.Fatal("divergence not counted in Missed")
		}
	})
}

func mustNil(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func TestRequestIDsAreAppliedOnce(t *testing.T) {
	s := NewWithWindow(2)
	u1, dup, err := s.PutOnce(1, "a", "1", "req-1")
	if err != nil || dup || u1.Seq != 1 {
		t.Fatalf("first put: %+v dup=%v err=%v", u1, dup, err)
	}
	again, dup, err := s.PutOnce(1, "a", "1", "req-1")
	if err != nil || !dup || again != u1 || s.Revision() != 1 {
		t.Fatalf("retry: %+v dup=%v err=%v rev=%d; want the first update, nothing applied", again, dup, err, s.Revision())
	}
	// Empty IDs are never duplicates.
	for i := 0; i < 2; i++ {
		if _, dup, _ := s.PutOnce(1, "b", "x", ""); dup {
			t.Fatal("an empty request ID was a duplicate")
		}
	}
	// A replica records the IDs it applies.
	mustNil(t, s.Apply(Update{Epoch: 1, Seq: 4, Key: "c", Value: "3", RequestID: "req-2"}))
	if u, ok := s.Request("req-2"); !ok || u.Seq != 4 {
		t.Fatalf("Request(req-2) = %+v, %v", u, ok)
	}
	// The window holds two IDs: a third evicts the oldest.
	if _, _, err := s.PutOnce(1, "d", "4", "req-3"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Request("req-1"); ok {
		t.Fatal("req-1 still remembered past the window")
	}
	if _, ok := s.Request("req-3"); !ok {
		t.Fatal("req-3 forgotten")
	}
	// A deposed leader cannot use PutOnce either.
	s.Observe(5)
	if _, _, err := s.PutOnce(1, "e", "5", "req-4"); !errors.Is(err, ErrOldEpoch) {
		t.Fatalf("PutOnce under an old epoch = %v, want ErrOldEpoch", err)
	}
}

func TestSnapshotInstallAndCatchUp(t *testing.T) {
	leader := New()
	for i, kv := range [][2]string{{"b", "2"}, {"a", "1"}, {"c", "3"}, {"a", "1b"}, {"d", "4"}} {
		if _, err := leader.Put(7, kv[0], kv[1]); err != nil {
			t.Fatalf("put %d: %v", i, err)
		}
	}
	// Pages of two, in key order.
	var pages [][]KeyEntry
	after, more := "", true
	for more {
		var page []KeyEntry
		page, _, _, more = leader.Snapshot(after, 2, 1<<20)
		pages = append(pages, page)
		after = page[len(page)-1].Key
	}
	if len(pages) != 2 || pages[0][0].Key != "a" || pages[0][0].Value != "1b" || pages[0][0].Revision != 4 || pages[1][1].Key != "d" {
		t.Fatalf("pages %+v", pages)
	}
	// A byte limit still returns at least one entry.
	if page, _, _, more := leader.Snapshot("", 100, 1); len(page) != 1 || !more {
		t.Fatalf("byte-limited page %+v more=%v", page, more)
	}

	replica := New()
	// An update that arrived before the catch-up: a gap of 1..5.
	if err := replica.Apply(Update{Epoch: 7, Seq: 6, Key: "e", Value: "live"}); !errors.Is(err, ErrGap) {
		t.Fatalf("first update = %v, want a gap", err)
	}
	for _, p := range pages {
		replica.Install(p)
	}
	// A buffered update older than the page's entry does not win.
	mustNil(t, replica.ApplyNewer(Update{Epoch: 7, Seq: 1, Key: "a", Value: "old"}))
	mustNil(t, replica.ApplyNewer(Update{Epoch: 7, Seq: 7, Key: "b", Value: "new"}))
	if err := replica.ApplyNewer(Update{Epoch: 6, Seq: 8, Key: "b", Value: "deposed"}); !errors.Is(err, ErrOldEpoch) {
		t.Fatalf("ApplyNewer from an old epoch = %v", err)
	}
	if replica.Missed() == 0 {
		t.Fatal("the replica should count the gap before catching up")
	}
	replica.CaughtUp(7, 7)
	want := map[string]string{"a": "1b", "b": "new", "c": "3", "d": "4", "e": "live"}
	for k, v := range want {
		if e, ok := replica.Get(k); !ok || e.Value != v {
			t.Errorf("%s = %+v, want %q", k, e, v)
		}
	}
	if replica.Missed() != 0 || replica.Revision() != 7 {
		t.Fatalf("after catch-up: missed=%d rev=%d", replica.Missed(), replica.Revision())
	}
	mustNil(t, replica.Apply(Update{Epoch: 7, Seq: 8, Key: "f", Value: "next"}))
}

func TestNoteBehindCountsOnce(t *testing.T) {
	s := New()
	s.NoteBehind(10) // a restarted copy learns the leader is at 10
	if s.Missed() != 10 || s.Revision() != 0 {
		t.Fatalf("missed=%d rev=%d, want 10 missed at revision 0", s.Missed(), s.Revision())
	}
	// An update still in flight from before is applied as usual...
	if err := s.Apply(Update{Epoch: 1, Seq: 9, Key: "a", Value: "9"}); !errors.Is(err, ErrGap) {
		t.Fatalf("apply 9 = %v, want a gap", err)
	}
	// ...and the gaps the stream shows up to 10 are not counted twice.
	mustNil(t, s.Apply(Update{Epoch: 1, Seq: 10, Key: "b", Value: "10"}))
	if err := s.Apply(Update{Epoch: 1, Seq: 12, Key: "c", Value: "12"}); !errors.Is(err, ErrGap) {
		t.Fatalf("apply 12 = %v, want a gap", err)
	}
	if s.Missed() != 11 {
		t.Fatalf("missed=%d, want 11 (1..10 noted, then 11)", s.Missed())
	}
	s.NoteBehind(5) // behind where we are: nothing
	if s.Missed() != 11 {
		t.Fatalf("missed=%d after a stale note", s.Missed())
	}
}

func TestHolds(t *testing.T) {
	s := NewWithWindow(2)
	mustNil(t, s.BeginEpoch(1, 0))
	u1 := Update{Epoch: 1, Seq: 1, Key: "a", Value: "1", RequestID: "r1"}
	mustNil(t, s.Apply(u1))
	if !s.Holds(u1) {
		t.Fatal("Holds(applied update) = false")
	}
	for _, other := range []Update{
		{Epoch: 1, Seq: 1, Key: "a", Value: "2", RequestID: "r1"},
		{Epoch: 1, Seq: 1, Key: "b", Value: "1", RequestID: "r1"},
		{Epoch: 1, Seq: 1, Key: "a", Value: "1", RequestID: "r2"},
		{Epoch: 2, Seq: 1, Key: "a", Value: "1", RequestID: "r1"},
		{Epoch: 1, Seq: 2, Key: "a", Value: "1", RequestID: "r1"},
	} {
		if s.Holds(other) {
			t.Errorf("Holds(%+v) = true, want false", other)
		}
	}
	// Past the window, the store no longer promises anything.
	mustNil(t, s.Apply(Update{Epoch: 1, Seq: 2, Key: "b", Value: "x"}))
	mustNil(t, s.Apply(Update{Epoch: 1, Seq: 3, Key: "c", Value: "x"}))
	if s.Holds(u1) {
		t.Error("Holds of an update past the window = true")
	}
	if err := s.Apply(Update{Epoch: 1, Seq: 3, Key: "c", Value: "forged"}); !errors.Is(err, ErrDiverged) {
		t.Errorf("second update at a held place = %v, want ErrDiverged", err)
	}
	if s.Diverged() != 1 {
		t.Errorf("Diverged = %d, want 1", s.Diverged())
	}
}

func TestGapCountersSaturate(t *testing.T) {
	s := New()
	mustNil(t, s.BeginEpoch(1, 0))
	_ = s.BeginEpoch(1, math.MaxUint64)
	s.NoteBehind(math.MaxUint64)
	_ = s.BeginEpoch(2, 1) // diverged: ahead grows too
	if m := s.Missed(); m != math.MaxUint64 {
		t.Fatalf("Missed = %d after a huge gap, want it saturated at MaxUint64", m)
	}
}

func TestRequestsPages(t *testing.T) {
	s := New()
	mustNil(t, s.BeginEpoch(1, 0))
	for i := 1; i <= 10; i++ {
		mustNil(t, s.Apply(Update{Epoch: 1, Seq: uint64(i), Key: fmt.Sprintf("k%d", i), Value: "v", RequestID: fmt.Sprintf("r%02d", i)}))
	}
	var got []string
	for after, more := "", true; more; {
		var page []Update
		page, more = s.Requests(after, 3, 1<<20)
		if len(page) == 0 || len(page) > 3 {
			t.Fatalf("page after %q has %d entries", after, len(page))
		}
		for _, u := range page {
			got = append(got, u.RequestID)
		}
		after = page[len(page)-1].RequestID
	}
	if len(got) != 10 || got[0] != "r01" || got[9] != "r10" {
		t.Fatalf("paged IDs %v", got)
	}
	replica := New()
	all, _ := s.Requests("", 100, 1<<20)
	replica.RememberRequests(all)
	if u, ok := replica.Request("r07"); !ok || u.Seq != 7 || u.Key != "k7" {
		t.Fatalf("replica remembers r07 as %+v, %v", u, ok)
	}
}

// TestAppliedIsNotTheSkippedRevision: a restarted copy placed at the
// leader's revision by its epoch marker reports Revision there but
// Applied only at what it applied itself; a catch-up brings both.
func TestAppliedIsNotTheSkippedRevision(t *testing.T) {
	s := New()
	if err := s.BeginEpoch(2, 31); !errors.Is(err, ErrGap) {
		t.Fatalf("BeginEpoch(2, 31) on an empty store = %v, want a gap", err)
	}
	if got, want := [2]uint64{s.Revision(), s.Applied()}, [2]uint64{31, 0}; got != want {
		t.Fatalf("after the marker: revision, applied = %v, want %v", got, want)
	}
	if err := s.Apply(Update{Epoch: 2, Seq: 32, Key: "a", Value: "1"}); err != nil {
		t.Fatalf("Apply 32: %v", err)
	}
	if got, want := [2]uint64{s.Revision(), s.Applied()}, [2]uint64{32, 32}; got != want {
		t.Fatalf("after applying 32: revision, applied = %v, want %v", got, want)
	}
	if err := s.BeginEpoch(3, 40); !errors.Is(err, ErrGap) {
		t.Fatalf("BeginEpoch(3, 40) = %v, want a gap", err)
	}
	if got := s.Applied(); got != 32 {
		t.Fatalf("after a marker ahead: applied = %d, want 32", got)
	}
	s.CaughtUp(3, 40)
	if got, want := [2]uint64{s.Revision(), s.Applied()}, [2]uint64{40, 40}; got != want {
		t.Fatalf("after the catch-up: revision, applied = %v, want %v", got, want)
	}
	if _, err := s.Put(3, "b", "2"); err != nil {
		t.Fatalf("Put: %v", err)
	}
	if got := s.Applied(); got != 41 {
		t.Fatalf("after a leader's put: applied = %d, want 41", got)
	}
}
