package store

import (
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

// hread is a GetAt and what it must return: the value (found), not found
// (neither value nor err), or an error kind.
type hread struct {
	key   string
	rev   uint64
	value string
	found bool
	err   error
}

// hchanges is a Changes call and what it must return.
type hchanges struct {
	after        uint64
	prefix       string
	limit, bytes int
	seqs         []uint64
	next         uint64
	more         bool
	err          error
}

func hput(k, v string) Write { return Write{Key: k, Value: v} }
func hdel(k string) Write    { return Write{Key: k, Delete: true} }

// versionsString renders versions as "rev:value" or "rev:-" (tombstone).
func versionsString(vs []Version) string {
	parts := make([]string, len(vs))
	for i, v := range vs {
		if v.Deleted {
			parts[i] = fmt.Sprintf("%d:-", v.Revision)
		} else {
			parts[i] = fmt.Sprintf("%d:%s", v.Revision, v.Value)
		}
	}
	return strings.Join(parts, " ")
}

func seqsOf(us []Update) []uint64 {
	var out []uint64
	for _, u := range us {
		out = append(out, u.Seq)
	}
	return out
}

func checkRead(t *testing.T, who string, s *Store, r hread) {
	t.Helper()
	v, found, err := s.GetAt(r.key, r.rev)
	if r.err != nil {
		var re *RevisionError
		if !errors.Is(err, r.err) || !errors.As(err, &re) {
			t.Errorf("%s: GetAt(%q, %d) = %+v %v %v, want %v", who, r.key, r.rev, v, found, err, r.err)
		}
		return
	}
	if err != nil || found != r.found || found && v.Value != r.value {
		t.Errorf("%s: GetAt(%q, %d) = %+v found %v err %v, want %q found %v", who, r.key, r.rev, v, found, err, r.value, r.found)
	}
}

func checkChanges(t *testing.T, who string, s *Store, c hchanges) {
	t.Helper()
	out, next, _, more, err := s.Changes(c.after, 0, c.prefix, c.limit, c.bytes)
	if c.err != nil {
		if !errors.Is(err, c.err) {
			t.Errorf("%s: Changes(%d, %q) err %v, want %v", who, c.after, c.prefix, err, c.err)
		}
		return
	}
	if err != nil || !reflect.DeepEqual(seqsOf(out), c.seqs) || next != c.next || more != c.more {
		t.Errorf("%s: Changes(%d, %q, %d, %d) = %v next %d more %v err %v, want %v next %d more %v",
			who, c.after, c.prefix, c.limit, c.bytes, seqsOf(out), next, more, err, c.seqs, c.next, c.more)
	}
}

// TestHistory runs leader writes, replays their updates on a replica,
// and checks reads at revisions, histories and replays on both.
func TestHistory(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		writes  []Write
		noops   []int // indexes of writes that must apply nothing
		reads   []hread
		hist    map[string]string // key: versions, oldest first
		trimmed map[string]bool
		changes []hchanges
		floor   uint64
	}{
		{
			name:    "history limit keeps the newest versions",
			cfg:     Config{History: 3},
			writes:  []Write{hput("a", "1"), hput("a", "2"), hput("a", "3"), hput("a", "4"), hput("b", "x")},
			hist:    map[string]string{"a": "2:2 3:3 4:4", "b": "5:x"},
			trimmed: map[string]bool{"a": true},
			reads: []hread{
				{key: "a", rev: 0, err: ErrCompacted},
				{key: "a", rev: 1, err: ErrCompacted},
				{key: "a", rev: 2, value: "2", found: true},
				{key: "a", rev: 3, value: "3", found: true},
				{key: "a", rev: 5, value: "4", found: true},
				{key: "b", rev: 4},
				{key: "b", rev: 5, value: "x", found: true},
				{key: "a", rev: 6, err: ErrFutureRevision},
				{key: "never", rev: 5},
			},
		},
		{
			name:    "tombstones count against the limit",
			cfg:     Config{History: 2},
			writes:  []Write{hput("a", "1"), hput("a", "2"), hdel("a"), hput("a", "3")},
			hist:    map[string]string{"a": "3:- 4:3"},
			trimmed: map[string]bool{"a": true},
			reads: []hread{
				{key: "a", rev: 2, err: ErrCompacted},
				{key: "a", rev: 3},
				{key: "a", rev: 4, value: "3", found: true},
			},
		},
		{
			name:   "get at a revision across delete and recreate",
			cfg:    Config{History: 8},
			writes: []Write{hput("a", "1"), hput("b", "x"), hdel("a"), hput("b", "y"), hput("a", "2"), hdel("b")},
			hist:   map[string]string{"a": "1:1 3:- 5:2", "b": "2:x 4:y 6:-"},
			reads: []hread{
				{key: "a", rev: 0},
				{key: "a", rev: 1, value: "1", found: true},
				{key: "a", rev: 2, value: "1", found: true},
				{key: "a", rev: 3},
				{key: "a", rev: 4},
				{key: "a", rev: 5, value: "2", found: true},
				{key: "a", rev: 6, value: "2", found: true},
				{key: "b", rev: 1},
				{key: "b", rev: 3, value: "x", found: true},
				{key: "b", rev: 5, value: "y", found: true},
				{key: "b", rev: 6},
			},
		},
		{
			name:    "purge drops the history and refuses reads below it",
			cfg:     Config{History: 8},
			writes:  []Write{hput("a", "1"), hput("a", "2"), {Key: "a", Delete: true, Purge: true}, hput("b", "x"), hput("a", "3")},
			hist:    map[string]string{"a": "3:- 5:3"},
			trimmed: map[string]bool{"a": true},
			reads: []hread{
				{key: "a", rev: 1, err: ErrCompacted},
				{key: "a", rev: 2, err: ErrCompacted},
				{key: "a", rev: 3},
				{key: "a", rev: 4},
				{key: "a", rev: 5, value: "3", found: true},
				{key: "b", rev: 2},
			},
		},
		{
			name:    "purge of a deleted key, and of a key never written",
			cfg:     Config{History: 8},
			writes:  []Write{hput("a", "1"), hdel("a"), {Key: "a", Delete: true, Purge: true}, {Key: "z", Delete: true, Purge: true}},
			noops:   []int{3},
			hist:    map[string]string{"a": "3:-", "z": ""},
			trimmed: map[string]bool{"a": true},
			reads: []hread{
				{key: "a", rev: 2, err: ErrCompacted},
				{key: "a", rev: 3},
				{key: "z", rev: 2},
			},
		},
		{
			name: "delete by prefix removes the keys at one revision",
			cfg:  Config{History: 8},
			writes: []Write{hput("a/1", "x"), hput("a/2", "y"), hput("ab", "z"), hput("b", "w"),
				{Key: "a/", Delete: true, Prefix: true}, {Key: "a/", Delete: true, Prefix: true}, {Key: "q", Delete: true, Prefix: true}},
			noops: []int{5, 6},
			hist:  map[string]string{"a/1": "1:x 5:-", "a/2": "2:y 5:-", "ab": "3:z", "b": "4:w"},
			reads: []hread{
				{key: "a/1", rev: 4, value: "x", found: true},
				{key: "a/1", rev: 5},
				{key: "a/2", rev: 5},
				{key: "ab", rev: 5, value: "z", found: true},
			},
			changes: []hchanges{
				// The delete by prefix is one update; a watch of a key under
				// it, of the prefix or of a shorter prefix sees it.
				{after: 0, prefix: "a/1", limit: 10, bytes: 1 << 20, seqs: []uint64{1, 5}, next: 5},
				{after: 0, prefix: "a/", limit: 10, bytes: 1 << 20, seqs: []uint64{1, 2, 5}, next: 5},
				{after: 0, prefix: "a", limit: 10, bytes: 1 << 20, seqs: []uint64{1, 2, 3, 5}, next: 5},
				{after: 0, prefix: "b", limit: 10, bytes: 1 << 20, seqs: []uint64{4}, next: 5},
				{after: 4, prefix: "", limit: 10, bytes: 1 << 20, seqs: []uint64{5}, next: 5},
			},
		},
		{
			name: "compaction keeps each key's newest version at or below it",
			cfg:  Config{History: 8},
			writes: []Write{hput("a", "1"), hput("a", "2"), hput("b", "x"), hdel("b"), hput("c", "p"), hput("a", "3"),
				hput("c", "q"), {Compact: 5}, {Compact: 4}, {Compact: 5}},
			noops:   []int{8, 9},
			floor:   5,
			hist:    map[string]string{"a": "2:2 6:3", "b": "", "c": "5:p 7:q"},
			trimmed: map[string]bool{"a": true},
			reads: []hread{
				{key: "a", rev: 4, err: ErrCompacted},
				{key: "a", rev: 5, value: "2", found: true},
				{key: "a", rev: 6, value: "3", found: true},
				{key: "b", rev: 5},
				{key: "b", rev: 3, err: ErrCompacted},
				{key: "c", rev: 5, value: "p", found: true},
				{key: "c", rev: 8, value: "q", found: true},
			},
			changes: []hchanges{
				// A compaction leaves the replay window alone (its updates
				// are still right); it is left out of replays itself.
				{after: 0, limit: 10, bytes: 1 << 20, seqs: []uint64{1, 2, 3, 4, 5, 6, 7}, next: 8},
				{after: 4, limit: 10, bytes: 1 << 20, seqs: []uint64{5, 6, 7}, next: 8},
			},
		},
		{
			name:    "compaction of a key deleted and recreated past it",
			cfg:     Config{History: 8},
			writes:  []Write{hput("a", "1"), hdel("a"), hput("z", "-"), hput("a", "2"), {Compact: 3}},
			floor:   3,
			hist:    map[string]string{"a": "2:- 4:2"},
			trimmed: map[string]bool{"a": true},
			reads: []hread{
				{key: "a", rev: 3},
				{key: "a", rev: 4, value: "2", found: true},
				{key: "a", rev: 2, err: ErrCompacted},
			},
		},
		{
			name:   "changes pages by count and by bytes",
			cfg:    Config{History: 8},
			writes: []Write{hput("a", "1234"), hput("b", "1234"), hput("a", "1234"), hput("c", "1234"), hput("a", "1")},
			changes: []hchanges{
				{after: 0, limit: 2, bytes: 1 << 20, seqs: []uint64{1, 2}, next: 2, more: true},
				{after: 2, limit: 2, bytes: 1 << 20, seqs: []uint64{3, 4}, next: 4, more: true},
				{after: 4, limit: 2, bytes: 1 << 20, seqs: []uint64{5}, next: 5},
				{after: 5, limit: 2, bytes: 1 << 20, next: 5},
				// At least one update, however small maxBytes is.
				{after: 0, limit: 10, bytes: 1, seqs: []uint64{1}, next: 1, more: true},
				{after: 0, limit: 10, bytes: 10, seqs: []uint64{1, 2}, next: 2, more: true},
				// Filtering by prefix still examines (and skips) the others.
				{after: 0, prefix: "a", limit: 2, bytes: 1 << 20, seqs: []uint64{1, 3}, next: 3, more: true},
				{after: 3, prefix: "a", limit: 2, bytes: 1 << 20, seqs: []uint64{5}, next: 5},
				{after: 0, prefix: "zz", limit: 2, bytes: 1 << 20, next: 5},
				{after: 9, limit: 2, bytes: 1 << 20, next: 9},
			},
		},
		{
			name:   "ring eviction refuses old replays and forgets deleted keys",
			cfg:    Config{History: 8, Changes: 3},
			writes: []Write{hput("a", "1"), hdel("a"), hput("b", "1"), hput("b", "2"), hput("b", "3"), hput("c", "1")},
			floor:  2,
			hist:   map[string]string{"a": "", "b": "3:1 4:2 5:3"},
			reads: []hread{
				{key: "a", rev: 1, err: ErrCompacted},
				{key: "a", rev: 2},
				{key: "b", rev: 3, value: "1", found: true},
			},
			changes: []hchanges{
				{after: 2, limit: 10, bytes: 1 << 20, err: ErrCompacted},
				{after: 3, limit: 10, bytes: 1 << 20, seqs: []uint64{4, 5, 6}, next: 6},
			},
		},
		{
			name:   "ring eviction of a delete by prefix forgets its keys",
			cfg:    Config{History: 8, Changes: 2},
			writes: []Write{hput("a/1", "1"), hput("a/2", "1"), {Key: "a/", Delete: true, Prefix: true}, hput("b", "1"), hput("b", "2")},
			floor:  3,
			hist:   map[string]string{"a/1": "", "a/2": ""},
			reads: []hread{
				{key: "a/1", rev: 2, err: ErrCompacted},
				{key: "a/1", rev: 3},
			},
		},
		{
			name:   "history 1 answers only from the current version",
			cfg:    Config{History: 1},
			writes: []Write{hput("a", "1"), hput("a", "2"), hput("b", "x"), hdel("b"), {Key: "a", Delete: true, Purge: true}, hput("a", "3")},
			hist:   map[string]string{"a": "6:3", "b": ""},
			reads: []hread{
				{key: "a", rev: 6, value: "3", found: true},
				{key: "a", rev: 5, err: ErrCompacted},
				{key: "a", rev: 2, err: ErrCompacted},
				{key: "b", rev: 3, err: ErrCompacted},
				{key: "b", rev: 6, err: ErrCompacted},
			},
			changes: []hchanges{{after: 0, limit: 10, bytes: 1 << 20, seqs: []uint64{1, 2, 3, 4, 5, 6}, next: 6}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader, replica := NewWithConfig(tt.cfg), NewWithConfig(tt.cfg)
			for i, w := range tt.writes {
				u, _, applied, err := leader.Write(1, w)
				if err != nil {
					t.Fatalf("write %d %+v: %v", i, w, err)
				}
				noop := false
				for _, n := range tt.noops {
					noop = noop || n == i
				}
				if applied == noop {
					t.Fatalf("write %d %+v: applied %v", i, w, applied)
				}
				if applied {
					if err := replica.Apply(u); err != nil {
						t.Fatalf("apply %+v: %v", u, err)
					}
				}
			}
			for _, s := range []struct {
				who string
				s   *Store
			}{{"leader", leader}, {"replica", replica}} {
				for k, want := range tt.hist {
					vs, trimmed := s.s.History(k)
					if got := versionsString(vs); got != want || trimmed != tt.trimmed[k] {
						t.Errorf("%s: History(%q) = %q trimmed %v, want %q trimmed %v", s.who, k, got, trimmed, want, tt.trimmed[k])
					}
				}
				for _, r := range tt.reads {
					checkRead(t, s.who, s.s, r)
				}
				for _, c := range tt.changes {
					checkChanges(t, s.who, s.s, c)
				}
				if got := s.s.HistoryHeld().Floor; got != tt.floor {
					t.Errorf("%s: floor %d, want %d", s.who, got, tt.floor)
				}
			}
		})
	}
}

func mustWrite(t *testing.T, s *Store, w Write) Update {
	t.Helper()
	u, _, applied, err := s.Write(1, w)
	if err != nil || !applied {
		t.Fatalf("write %+v: applied %v err %v", w, applied, err)
	}
	return u
}

func TestCompactPastTheRevisionFails(t *testing.T) {
	s := NewWithConfig(Config{History: 4})
	mustWrite(t, s, hput("a", "1"))
	_, _, applied, err := s.Write(1, Write{Compact: 2})
	var re *RevisionError
	if applied || !errors.Is(err, ErrFutureRevision) || !errors.As(err, &re) || re.Current != 1 {
		t.Fatalf("compact past the revision: applied %v err %v", applied, err)
	}
	if s.Revision() != 1 || s.HistoryHeld().Floor != 0 {
		t.Fatalf("failed compaction moved the store: rev %d held %+v", s.Revision(), s.HistoryHeld())
	}
	// A replica refuses a compaction past the update's own revision.
	if err := New().Apply(Update{Epoch: 1, Seq: 1, Compact: 2}); !errors.Is(err, ErrBadUpdate) {
		t.Fatalf("apply of a compaction past its seq: %v", err)
	}
}

func dueKeys(s *Store, now int64) string {
	var parts []string
	for _, e := range s.Due(now, 100) {
		parts = append(parts, fmt.Sprintf("%s@%d/%d", e.Key, e.Revision, e.Deadline))
	}
	return strings.Join(parts, " ")
}

func TestDue(t *testing.T) {
	tests := []struct {
		name   string
		writes []Write
		now    int64
		limit  int
		want   string
	}{
		{
			name:   "earliest deadline first, only those passed",
			writes: []Write{{Key: "a", Value: "1", Expires: 30}, {Key: "b", Value: "1", Expires: 10}, {Key: "c", Value: "1", Expires: 20}, {Key: "d", Value: "1", Expires: 50}},
			now:    30, limit: 100,
			want: "b@2/10 c@3/20 a@1/30",
		},
		{
			name:   "limit",
			writes: []Write{{Key: "a", Value: "1", Expires: 30}, {Key: "b", Value: "1", Expires: 10}, {Key: "c", Value: "1", Expires: 20}},
			now:    100, limit: 2,
			want: "b@2/10 c@3/20",
		},
		{
			name:   "a later put without a deadline clears it",
			writes: []Write{{Key: "a", Value: "1", Expires: 10}, hput("a", "2")},
			now:    100, limit: 100,
		},
		{
			name:   "a later put with another deadline moves it, with its revision",
			writes: []Write{{Key: "a", Value: "1", Expires: 10}, {Key: "a", Value: "2", Expires: 20}},
			now:    100, limit: 100,
			want: "a@2/20",
		},
		{
			name:   "a delete clears it",
			writes: []Write{{Key: "a", Value: "1", Expires: 10}, hdel("a")},
			now:    100, limit: 100,
		},
		{
			name:   "an expiry delete clears it",
			writes: []Write{{Key: "a", Value: "1", Expires: 10}, {Key: "a", Delete: true, Expired: true}},
			now:    100, limit: 100,
		},
		{
			name:   "a purge and a delete by prefix clear it",
			writes: []Write{{Key: "a", Value: "1", Expires: 10}, {Key: "b/1", Value: "1", Expires: 10}, {Key: "c", Value: "1", Expires: 10}, {Key: "a", Delete: true, Purge: true}, {Key: "b/", Delete: true, Prefix: true}},
			now:    100, limit: 100,
			want: "c@3/10",
		},
		{
			name:   "a delete carries no deadline",
			writes: []Write{{Key: "a", Value: "1"}, {Key: "a", Delete: true, Expires: 10}, {Key: "a", Value: "2"}},
			now:    100, limit: 100,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			leader, replica := New(), New()
			for _, w := range tt.writes {
				if err := replica.Apply(mustWrite(t, leader, w)); err != nil {
					t.Fatal(err)
				}
			}
			for _, s := range []*Store{leader, replica} {
				var got []string
				for _, e := range s.Due(tt.now, tt.limit) {
					got = append(got, fmt.Sprintf("%s@%d/%d", e.Key, e.Revision, e.Deadline))
				}
				if g := strings.Join(got, " "); g != tt.want {
					t.Errorf("Due = %q, want %q", g, tt.want)
				}
				if n := s.HistoryHeld().Expiring; n != len(got) && tt.limit == 100 && tt.now == 100 {
					t.Errorf("Expiring = %d, want %d", n, len(got))
				}
			}
		})
	}
}

// TestDueClearedByCatchUp: installing the leader's entry (without a
// deadline) or removing the key in a page clears the replica's deadline.
func TestDueClearedByCatchUp(t *testing.T) {
	s := New()
	for i, w := range []Write{{Key: "a", Value: "1", Expires: 10}, {Key: "b", Value: "1", Expires: 10}, {Key: "c", Value: "1", Expires: 10}} {
		if err := s.Apply(Update{Epoch: 1, Seq: uint64(i + 1), Key: w.Key, Value: w.Value, Expires: w.Expires}); err != nil {
			t.Fatal(err)
		}
	}
	s.InstallPage("", []KeyEntry{{Key: "a", Entry: Entry{Value: "2", Revision: 4}}, {Key: "c", Entry: Entry{Value: "1", Revision: 3, Expires: 20}}}, true)
	s.CaughtUp(1, 4)
	if got := dueKeys(s, 100); got != "c@3/20" {
		t.Fatalf("Due after catch-up = %q", got)
	}
	if n := s.HistoryHeld().Expiring; n != 1 {
		t.Fatalf("Expiring = %d", n)
	}
}

// TestCaughtUpResetsHistory: a replica that missed updates refuses reads
// at revisions until it catches up; then its history starts at the
// catch-up revision.
func TestCaughtUpResetsHistory(t *testing.T) {
	cfg := Config{History: 4}
	leader, replica := NewWithConfig(cfg), NewWithConfig(cfg)
	var us []Update
	for _, w := range []Write{hput("a", "1"), hput("a", "2"), hput("b", "1"), hdel("b"), hput("a", "3"), hput("c", "1")} {
		us = append(us, mustWrite(t, leader, w))
	}
	for _, u := range us[:2] {
		if err := replica.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	// Update 3 and 4 are lost: the gap resets the history at 4.
	if err := replica.BeginEpoch(1, 4); !errors.Is(err, ErrGap) {
		t.Fatalf("marker past a gap: %v", err)
	}
	if h := replica.HistoryHeld(); h.Floor != 4 || h.ChangesFrom != 5 || h.Keys != 0 {
		t.Fatalf("held after the gap: %+v", h)
	}
	if err := replica.Apply(us[4]); err != nil {
		t.Fatal(err)
	}
	if h := replica.HistoryHeld(); h.Floor != 4 || h.ChangesFrom != 5 {
		t.Fatalf("held after the gap: %+v", h)
	}
	checkRead(t, "replica", replica, hread{key: "a", rev: 5, err: ErrIncomplete})
	checkRead(t, "replica", replica, hread{key: "a", rev: 6, err: ErrFutureRevision})
	checkChanges(t, "replica", replica, hchanges{after: 3, limit: 10, bytes: 1 << 20, err: ErrCompacted})
	checkChanges(t, "replica", replica, hchanges{after: 4, limit: 10, bytes: 1 << 20, seqs: []uint64{5}, next: 5})
	if err := replica.Apply(us[5]); err != nil {
		t.Fatal(err)
	}
	// The catch-up installs the leader's keys at 6 and resets at 6.
	entries, _, _, _ := leader.Snapshot("", 100, 1<<20)
	replica.InstallPage("", entries, true)
	replica.CaughtUp(1, 6)
	if h := replica.HistoryHeld(); h.Floor != 6 || h.ChangesFrom != 7 || h.Keys != 0 {
		t.Fatalf("held after the catch-up: %+v", h)
	}
	checkRead(t, "replica", replica, hread{key: "a", rev: 6, value: "3", found: true})
	checkRead(t, "replica", replica, hread{key: "b", rev: 6})
	checkRead(t, "replica", replica, hread{key: "a", rev: 5, err: ErrCompacted})
	checkChanges(t, "replica", replica, hchanges{after: 5, limit: 10, bytes: 1 << 20, err: ErrCompacted})
	checkChanges(t, "replica", replica, hchanges{after: 6, limit: 10, bytes: 1 << 20, next: 6})
	// From there the replica's history follows the leader's again.
	for _, w := range []Write{hput("a", "4"), hdel("c"), hput("b", "2")} {
		if err := replica.Apply(mustWrite(t, leader, w)); err != nil {
			t.Fatal(err)
		}
	}
	for _, k := range []string{"a", "b", "c"} {
		vs, _ := replica.History(k)
		lvs, _ := leader.History(k)
		// The leader holds more of the past; the replica's is its tail.
		if len(vs) > len(lvs) || !reflect.DeepEqual(vs, lvs[len(lvs)-len(vs):]) {
			t.Errorf("History(%q): replica %s, leader %s", k, versionsString(vs), versionsString(lvs))
		}
	}
	checkRead(t, "replica", replica, hread{key: "a", rev: 6, value: "3", found: true})
	checkRead(t, "replica", replica, hread{key: "a", rev: 7, value: "4", found: true})
	checkRead(t, "replica", replica, hread{key: "c", rev: 7, value: "1", found: true})
	checkRead(t, "replica", replica, hread{key: "c", rev: 8})
	checkChanges(t, "replica", replica, hchanges{after: 6, limit: 10, bytes: 1 << 20, seqs: []uint64{7, 8, 9}, next: 9})
}

// TestBeginEpochGapAndDivergenceResetHistory: an epoch marker past the
// store's revision (a gap) or below it (a divergence) resets the history
// at the marker's revision.
func TestBeginEpochGapAndDivergenceResetHistory(t *testing.T) {
	for _, tt := range []struct {
		name    string
		seq     uint64
		wantErr error
	}{
		{"gap", 5, ErrGap},
		{"divergence", 1, ErrDiverged},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewWithConfig(Config{History: 4})
			for i, v := range []string{"1", "2", "3"} {
				if err := s.Apply(Update{Epoch: 1, Seq: uint64(i + 1), Key: "a", Value: v}); err != nil {
					t.Fatal(err)
				}
			}
			if err := s.BeginEpoch(2, tt.seq); !errors.Is(err, tt.wantErr) {
				t.Fatalf("BeginEpoch: %v", err)
			}
			if h := s.HistoryHeld(); h.Floor != tt.seq || h.ChangesFrom != tt.seq+1 || h.Keys != 0 {
				t.Fatalf("held: %+v", h)
			}
			checkRead(t, "store", s, hread{key: "a", rev: tt.seq, err: ErrIncomplete})
			checkChanges(t, "store", s, hchanges{after: tt.seq - 1, limit: 10, bytes: 1 << 20, err: ErrCompacted})
			checkChanges(t, "store", s, hchanges{after: tt.seq, limit: 10, bytes: 1 << 20, next: tt.seq})
		})
	}
}

// TestDivergedUpdateResetsHistory: an update claiming a place this store
// applied with other content reveals its history is not the leader's, so
// replays of it are refused.
func TestDivergedUpdateResetsHistory(t *testing.T) {
	s := NewWithConfig(Config{History: 4})
	for i, v := range []string{"1", "2", "3"} {
		if err := s.Apply(Update{Epoch: 1, Seq: uint64(i + 1), Key: "a", Value: v}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Apply(Update{Epoch: 1, Seq: 2, Key: "a", Value: "other"}); !errors.Is(err, ErrDiverged) {
		t.Fatalf("apply of a different update at seq 2: %v", err)
	}
	checkRead(t, "store", s, hread{key: "a", rev: 3, err: ErrIncomplete})
	checkChanges(t, "store", s, hchanges{after: 0, limit: 10, bytes: 1 << 20, err: ErrCompacted})
	if h := s.HistoryHeld(); h.Floor != 3 || h.Keys != 0 {
		t.Fatalf("held: %+v", h)
	}
}

// TestChangesLimitBelowOne: a limit below one still returns one update
// per call (as maxBytes does), so a caller paging with it makes progress.
func TestChangesLimitBelowOne(t *testing.T) {
	s := New()
	mustWrite(t, s, hput("a", "1"))
	mustWrite(t, s, hput("b", "1"))
	for _, limit := range []int{0, -1} {
		checkChanges(t, "store", s, hchanges{after: 0, limit: limit, bytes: 1 << 20, seqs: []uint64{1}, next: 1, more: true})
		checkChanges(t, "store", s, hchanges{after: 1, limit: limit, bytes: 1 << 20, seqs: []uint64{2}, next: 2})
	}
}

// TestCompactedReadSaysWhereTheKeyIsHeldFrom: a read refused because
// the key's older versions were trimmed or purged names the key's
// oldest held revision, not a floor below the revision asked for.
func TestCompactedReadSaysWhereTheKeyIsHeldFrom(t *testing.T) {
	for _, tt := range []struct {
		name   string
		cfg    Config
		writes []Write
		key    string
		rev    uint64
		held   uint64
	}{
		{"trimmed by the limit", Config{History: 2}, []Write{hput("a", "1"), hput("a", "2"), hput("a", "3")}, "a", 1, 2},
		{"purged", Config{History: 4}, []Write{hput("a", "1"), hput("b", "1"), {Key: "a", Delete: true, Purge: true}}, "a", 2, 3},
		{"history 1", Config{History: 1}, []Write{hput("a", "1"), hput("a", "2")}, "a", 1, 2},
	} {
		t.Run(tt.name, func(t *testing.T) {
			s := NewWithConfig(tt.cfg)
			for _, w := range tt.writes {
				mustWrite(t, s, w)
			}
			_, _, err := s.GetAt(tt.key, tt.rev)
			var re *RevisionError
			if !errors.Is(err, ErrCompacted) || !errors.As(err, &re) || re.Held != tt.held {
				t.Fatalf("GetAt(%q, %d) = %v (%+v), want ErrCompacted held from %d", tt.key, tt.rev, err, re, tt.held)
			}
		})
	}
}

// TestCatchUpWithBufferedUpdates: pages of the leader's keys, then the
// updates buffered meanwhile applied if newer, then CaughtUp: the copy
// holds the leader's keys and deadlines, and its history starts there.
func TestCatchUpWithBufferedUpdates(t *testing.T) {
	cfg := Config{History: 4}
	leader, replica := NewWithConfig(cfg), NewWithConfig(cfg)
	for _, w := range []Write{hput("a/1", "1"), hput("a/2", "1"), {Key: "b", Value: "1", Expires: 10}, hput("c", "1"), hput("d", "1")} {
		mustWrite(t, leader, w)
	}
	if err := replica.BeginEpoch(1, 3); !errors.Is(err, ErrGap) {
		t.Fatal(err)
	}
	entries, _, _, _ := leader.Snapshot("", 100, 1<<20)
	var buffered []Update
	for _, w := range []Write{{Key: "a/", Delete: true, Prefix: true}, {Key: "c", Delete: true, Purge: true}, {Key: "d", Value: "2", Expires: 20}, hput("b", "2"), hdel("d"), hput("e", "1"), {Compact: 6}} {
		buffered = append(buffered, mustWrite(t, leader, w))
	}
	replica.InstallPage("", entries, true)
	// The buffered updates arrive in any order relative to the pages;
	// applied twice or out of order, only newer ones take.
	for _, us := range [][]Update{buffered, buffered[3:]} {
		for _, u := range us {
			if err := replica.ApplyNewer(u); err != nil {
				t.Fatal(err)
			}
		}
	}
	replica.CaughtUp(1, leader.Revision())
	want, _, _, _ := leader.Snapshot("", 100, 1<<20)
	got, _, _, _ := replica.Snapshot("", 100, 1<<20)
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("replica keys %+v, leader's %+v", got, want)
	}
	if g, w := dueKeys(replica, 100), dueKeys(leader, 100); g != w {
		t.Fatalf("Due: replica %q, leader %q", g, w)
	}
	cur := leader.Revision()
	if h := replica.HistoryHeld(); h.Floor != cur || h.ChangesFrom != cur+1 || h.Keys != 0 || replica.Missed() != 0 {
		t.Fatalf("held %+v missed %d", h, replica.Missed())
	}
	for _, k := range []string{"a/1", "a/2", "b", "c", "d", "e"} {
		lv, lf, lerr := leader.GetAt(k, cur)
		rv, rf, rerr := replica.GetAt(k, cur)
		if lerr != nil || rerr != nil || lf != rf || lf && lv != rv {
			t.Errorf("GetAt(%q, %d): leader %+v %v %v, replica %+v %v %v", k, cur, lv, lf, lerr, rv, rf, rerr)
		}
		checkRead(t, "replica", replica, hread{key: k, rev: cur - 1, err: ErrCompacted})
	}
}

// TestPurgeTwiceAppliesOnce: a purge of a key that holds nothing since its
// last purge applies nothing and takes no revision; a write after it makes
// the next purge apply again.
func TestPurgeTwiceAppliesOnce(t *testing.T) {
	s := NewWithConfig(Config{History: 4})
	write := func(w Write) (Update, bool) {
		t.Helper()
		u, _, applied, err := s.Write(1, w)
		if err != nil {
			t.Fatal(err)
		}
		return u, applied
	}
	write(Write{Key: "a", Value: "1"})
	if _, applied := write(Write{Key: "a", Delete: true, Purge: true}); !applied {
		t.Fatal("the first purge applied nothing")
	}
	rev := s.Revision()
	if _, applied := write(Write{Key: "a", Delete: true, Purge: true}); applied || s.Revision() != rev {
		t.Fatalf("a second purge applied %v, revision %d -> %d", applied, rev, s.Revision())
	}
	write(Write{Key: "a", Value: "2"})
	if _, applied := write(Write{Key: "a", Delete: true, Purge: true}); !applied {
		t.Fatal("a purge after a new write applied nothing")
	}
}

// TestChangesWindowIsBoundedInBytes: big values leave the window by size,
// not only by count.
func TestChangesWindowIsBoundedInBytes(t *testing.T) {
	s := NewWithConfig(Config{Changes: 1000, ChangesBytes: 10 << 10})
	big := strings.Repeat("v", 4<<10)
	for i := range 10 {
		if _, err := s.Put(1, fmt.Sprint("k", i), big); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, _, _, err := s.Changes(6, 0, "", 100, 1<<20); !errors.Is(err, ErrCompacted) {
		t.Fatalf("a replay from revision 7 with room for two 4 KiB values: %v, want compacted", err)
	}
	out, _, _, _, err := s.Changes(8, 0, "", 100, 1<<20)
	if err != nil || len(out) != 2 {
		t.Fatalf("a replay of the last two: %d updates, %v", len(out), err)
	}
}

// TestChangesRefusesARewrittenRevision: a watcher that followed an update
// a leader applied but lost (its successor reused the revision) is told,
// not silently skipped past the successor's update.
func TestChangesRefusesARewrittenRevision(t *testing.T) {
	old, successor := New(), New()
	var us []Update
	for _, k := range []string{"a", "b", "c"} {
		u, err := old.Put(1, k, "old")
		if err != nil {
			t.Fatal(err)
		}
		us = append(us, u)
	}
	for _, u := range us[:2] { // the successor never got c
		if err := successor.Apply(u); err != nil {
			t.Fatal(err)
		}
	}
	seen, next, epoch, _, err := old.Changes(0, 0, "", 10, 1<<20)
	if err != nil || len(seen) != 3 || next != 3 || epoch != 1 {
		t.Fatalf("the watcher on the old leader: %v next %d epoch %d, %v", seen, next, epoch, err)
	}
	if err := successor.BeginEpoch(2, 2); err != nil {
		t.Fatal(err)
	}
	if _, err := successor.Put(2, "c", "new"); err != nil {
		t.Fatal(err)
	}
	if _, _, _, _, err := successor.Changes(next, epoch, "", 10, 1<<20); !errors.Is(err, ErrCompacted) {
		t.Fatalf("the successor replaying after revision 3 of epoch 1: %v, want compacted", err)
	}
	// Asked without the epoch (an older client), it answers as before.
	if out, _, _, _, err := successor.Changes(next, 0, "", 10, 1<<20); err != nil || len(out) != 0 {
		t.Fatalf("without the epoch: %v, %v", out, err)
	}
}
