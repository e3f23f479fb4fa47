package store

import (
	"errors"
	"testing"
)

func rev(r uint64) *uint64 { return &r }

// writeStep is one leader Write and what it must return.
type writeStep struct {
	w           Write
	wantSeq     uint64
	wantDup     bool
	wantApplied bool
	wantErr     error
	wantCurrent uint64 // the revision a *ConditionError carries
}

func TestWrite(t *testing.T) {
	put := func(k, v string) Write { return Write{Key: k, Value: v} }
	del := func(k string) Write { return Write{Key: k, Delete: true} }
	tests := []struct {
		name       string
		steps      []writeStep
		want       map[string]Entry
		wantAbsent []string
		wantRev    uint64
	}{
		{
			name:       "delete removes the key at a new revision",
			steps:      []writeStep{{w: put("a", "1"), wantSeq: 1, wantApplied: true}, {w: del("a"), wantSeq: 2, wantApplied: true}},
			wantAbsent: []string{"a"},
			wantRev:    2,
		},
		{
			name:       "delete of a missing key applies nothing",
			steps:      []writeStep{{w: put("b", "1"), wantSeq: 1, wantApplied: true}, {w: del("a"), wantSeq: 1}},
			want:       map[string]Entry{"b": {Value: "1", Revision: 1}},
			wantAbsent: []string{"a"},
			wantRev:    1,
		},
		{
			name: "create of a new key",
			steps: []writeStep{
				{w: Write{Key: "a", Value: "1", Create: true}, wantSeq: 1, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "1", Revision: 1}},
			wantRev: 1,
		},
		{
			name: "create of an existing key fails with its revision",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Value: "2", Create: true}, wantErr: ErrExists, wantCurrent: 1},
			},
			want:    map[string]Entry{"a": {Value: "1", Revision: 1}},
			wantRev: 1,
		},
		{
			name: "create of a deleted key",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: del("a"), wantSeq: 2, wantApplied: true},
				{w: Write{Key: "a", Value: "2", Create: true}, wantSeq: 3, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "2", Revision: 3}},
			wantRev: 3,
		},
		{
			name: "CAS with the current revision",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Value: "2", IfRevision: rev(1)}, wantSeq: 2, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "2", Revision: 2}},
			wantRev: 2,
		},
		{
			name: "CAS with a stale revision fails with the current one",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: put("a", "2"), wantSeq: 2, wantApplied: true},
				{w: Write{Key: "a", Value: "3", IfRevision: rev(1)}, wantErr: ErrConflict, wantCurrent: 2},
			},
			want:    map[string]Entry{"a": {Value: "2", Revision: 2}},
			wantRev: 2,
		},
		{
			name: "CAS on revision 0 of an absent key creates it",
			steps: []writeStep{
				{w: Write{Key: "a", Value: "1", IfRevision: rev(0)}, wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Value: "2", IfRevision: rev(0)}, wantErr: ErrConflict, wantCurrent: 1},
			},
			want:    map[string]Entry{"a": {Value: "1", Revision: 1}},
			wantRev: 1,
		},
		{
			name: "CAS on an absent key with a revision fails with 0",
			steps: []writeStep{
				{w: Write{Key: "a", Value: "1", IfRevision: rev(3)}, wantErr: ErrConflict, wantCurrent: 0},
			},
			wantAbsent: []string{"a"},
		},
		{
			name: "CAS on a deleted then recreated key needs the new revision",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: del("a"), wantSeq: 2, wantApplied: true},
				{w: put("a", "2"), wantSeq: 3, wantApplied: true},
				{w: Write{Key: "a", Value: "x", IfRevision: rev(1)}, wantErr: ErrConflict, wantCurrent: 3},
				{w: Write{Key: "a", Value: "y", IfRevision: rev(3)}, wantSeq: 4, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "y", Revision: 4}},
			wantRev: 4,
		},
		{
			name: "conditional delete",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Delete: true, IfRevision: rev(2)}, wantErr: ErrConflict, wantCurrent: 1},
				{w: Write{Key: "a", Delete: true, IfRevision: rev(1)}, wantSeq: 2, wantApplied: true},
			},
			wantAbsent: []string{"a"},
			wantRev:    2,
		},
		{
			name: "retried delete returns the first outcome",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Delete: true, RequestID: "d"}, wantSeq: 2, wantApplied: true},
				{w: put("a", "2"), wantSeq: 3, wantApplied: true},
				{w: Write{Key: "a", Delete: true, RequestID: "d"}, wantSeq: 2, wantDup: true, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "2", Revision: 3}},
			wantRev: 3,
		},
		{
			name: "retried create does not fail because of itself",
			steps: []writeStep{
				{w: Write{Key: "a", Value: "1", Create: true, RequestID: "c"}, wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Value: "1", Create: true, RequestID: "c"}, wantSeq: 1, wantDup: true, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "1", Revision: 1}},
			wantRev: 1,
		},
		{
			name: "retried CAS returns the first outcome",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: Write{Key: "a", Value: "2", IfRevision: rev(1), RequestID: "s"}, wantSeq: 2, wantApplied: true},
				{w: Write{Key: "a", Value: "2", IfRevision: rev(1), RequestID: "s"}, wantSeq: 2, wantDup: true, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "2", Revision: 2}},
			wantRev: 2,
		},
		{
			name: "a failed CAS is not remembered: its retry is evaluated again",
			steps: []writeStep{
				{w: put("a", "1"), wantSeq: 1, wantApplied: true},
				{w: put("a", "2"), wantSeq: 2, wantApplied: true},
				{w: Write{Key: "a", Value: "3", IfRevision: rev(1), RequestID: "f"}, wantErr: ErrConflict, wantCurrent: 2},
				{w: Write{Key: "a", Value: "3", IfRevision: rev(2), RequestID: "f"}, wantSeq: 3, wantApplied: true},
			},
			want:    map[string]Entry{"a": {Value: "3", Revision: 3}},
			wantRev: 3,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New()
			for i, st := range tt.steps {
				u, dup, applied, err := s.Write(1, st.w)
				if st.wantErr != nil {
					var ce *ConditionError
					if !errors.Is(err, st.wantErr) || !errors.As(err, &ce) || ce.Revision != st.wantCurrent {
						t.Fatalf("step %d: err = %v, want %v at revision %d", i, err, st.wantErr, st.wantCurrent)
					}
					continue
				}
				if err != nil || u.Seq != st.wantSeq || dup != st.wantDup || applied != st.wantApplied {
					t.Fatalf("step %d: seq %d dup %v applied %v err %v, want seq %d dup %v applied %v",
						i, u.Seq, dup, applied, err, st.wantSeq, st.wantDup, st.wantApplied)
				}
			}
			for k, want := range tt.want {
				if got, ok := s.Get(k); !ok || got != want {
					t.Errorf("Get(%q) = %v, %v, want %v", k, got, ok, want)
				}
			}
			for _, k := range tt.wantAbsent {
				if _, ok := s.Get(k); ok {
					t.Errorf("Get(%q) found a deleted key", k)
				}
			}
			if got := s.Revision(); got != tt.wantRev {
				t.Errorf("Revision = %d, want %d", got, tt.wantRev)
			}
			if got, _, _, _ := s.Snapshot("", 100, 1<<20); len(got) != len(tt.want) {
				t.Errorf("Snapshot holds %d keys, want %d", len(got), len(tt.want))
			}
		})
	}
}

func TestApplyTombstone(t *testing.T) {
	s := New()
	mustNil(t, s.BeginEpoch(1, 0))
	mustNil(t, s.Apply(Update{Epoch: 1, Seq: 1, Key: "a", Value: "1"}))
	tomb := Update{Epoch: 1, Seq: 2, Key: "a", Delete: true, RequestID: "d"}
	mustNil(t, s.Apply(tomb))
	if _, ok := s.Get("a"); ok || s.Len() != 0 {
		t.Fatal("a tombstone left its key")
	}
	if !s.Holds(tomb) {
		t.Error("Holds(applied tombstone) = false")
	}
	if s.Holds(Update{Epoch: 1, Seq: 2, Key: "a", RequestID: "d"}) {
		t.Error("Holds of a put at a tombstone's place = true")
	}
	if u, ok := s.Request("d"); !ok || !u.Delete {
		t.Errorf("Request(d) = %+v, %v, want the tombstone", u, ok)
	}
	// A put claiming the tombstone's place diverges.
	if err := s.Apply(Update{Epoch: 1, Seq: 2, Key: "a", RequestID: "d"}); !errors.Is(err, ErrDiverged) {
		t.Errorf("put at a tombstone's place = %v, want ErrDiverged", err)
	}
	// A tombstone of a key this copy lacks still advances the stream, and
	// a gap across tombstones is seen.
	mustNil(t, s.Apply(Update{Epoch: 1, Seq: 3, Key: "zz", Delete: true}))
	var g *GapError
	if err := s.Apply(Update{Epoch: 1, Seq: 6, Key: "b", Delete: true}); !errors.As(err, &g) || g.From != 4 || g.To != 5 {
		t.Errorf("tombstone past a gap = %v, want a gap of 4..5", err)
	}
	// Missed counts the two missed updates and the divergence.
	if s.Revision() != 6 || s.Missed() != 3 {
		t.Errorf("revision %d missed %d, want 6 and 3", s.Revision(), s.Missed())
	}
	// During a catch-up, a buffered tombstone newer than the key removes
	// it; an older one does not.
	s.Install([]KeyEntry{{Key: "c", Entry: Entry{Value: "1", Revision: 10}}, {Key: "d", Entry: Entry{Value: "1", Revision: 10}}})
	mustNil(t, s.ApplyNewer(Update{Epoch: 1, Seq: 11, Key: "c", Delete: true}))
	mustNil(t, s.ApplyNewer(Update{Epoch: 1, Seq: 9, Key: "d", Delete: true}))
	if _, ok := s.Get("c"); ok {
		t.Error("ApplyNewer of a newer tombstone left the key")
	}
	if _, ok := s.Get("d"); !ok {
		t.Error("ApplyNewer of an older tombstone removed the key")
	}
}
