package store

import (
	"errors"
	"fmt"
	"math/rand"
	"reflect"
	"sort"
	"strings"
	"testing"
)

// refVersion is what the reference model knows of a key at a revision.
type refVersion struct {
	rev     uint64
	value   string
	deleted bool
	expires int64
}

// refModel records every revision of every key, and the updates in order.
type refModel struct {
	keys    map[string][]refVersion
	purged  map[string]uint64 // key: its latest purge revision
	compact uint64            // highest compaction revision
	updates []Update
}

func newRefModel() *refModel {
	return &refModel{keys: map[string][]refVersion{}, purged: map[string]uint64{}}
}

// live reports the keys held now, in no order.
func (m *refModel) live() []string {
	var out []string
	for k, vs := range m.keys {
		if len(vs) > 0 && !vs[len(vs)-1].deleted {
			out = append(out, k)
		}
	}
	return out
}

func (m *refModel) record(u Update) {
	logged := u
	logged.Count = 0 // the leader's own count is not replayed
	m.updates = append(m.updates, logged)
	switch {
	case u.Compact > 0:
		m.compact = max(m.compact, u.Compact)
	case u.Delete && u.Prefix:
		for _, k := range m.live() {
			if strings.HasPrefix(k, u.Key) {
				m.keys[k] = append(m.keys[k], refVersion{rev: u.Seq, deleted: true})
				if u.Purge {
					m.purged[k] = u.Seq
				}
			}
		}
	case u.Delete:
		m.keys[u.Key] = append(m.keys[u.Key], refVersion{rev: u.Seq, deleted: true})
		if u.Purge {
			m.purged[u.Key] = u.Seq
		}
	default:
		m.keys[u.Key] = append(m.keys[u.Key], refVersion{rev: u.Seq, value: u.Value, expires: u.Expires})
	}
}

// at is the key's value at rev: found false if it did not exist.
func (m *refModel) at(key string, rev uint64) (refVersion, bool) {
	var v refVersion
	ok := false
	for _, x := range m.keys[key] {
		if x.rev > rev {
			break
		}
		v, ok = x, true
	}
	return v, ok && !v.deleted
}

// checkStores compares the leader and a replica that applied every
// update, with each other and with the model.
func checkStores(t *testing.T, cfg Config, m *refModel, leader, replica *Store, keys []string) {
	t.Helper()
	cur := leader.Revision()
	if replica.Revision() != cur {
		t.Fatalf("replica at %d, leader at %d", replica.Revision(), cur)
	}
	if lh, rh := leader.HistoryHeld(), replica.HistoryHeld(); lh != rh {
		t.Fatalf("held: leader %+v, replica %+v", lh, rh)
	}
	floor := leader.HistoryHeld().Floor
	// Deadlines: the live keys whose current version set one.
	var due []Expiry
	for _, k := range keys {
		if v, ok := m.at(k, cur); ok && v.expires != 0 {
			due = append(due, Expiry{Key: k, Revision: v.rev, Deadline: v.expires})
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].Deadline != due[j].Deadline {
			return due[i].Deadline < due[j].Deadline
		}
		return due[i].Key < due[j].Key
	})
	if got, got2 := leader.Due(1<<62, 100), replica.Due(1<<62, 100); !reflect.DeepEqual(got, due) || !reflect.DeepEqual(got2, due) {
		t.Fatalf("Due: leader %v, replica %v, want %v", got, got2, due)
	}
	if floor < m.compact {
		t.Fatalf("floor %d below compaction %d", floor, m.compact)
	}
	for _, k := range keys {
		lv, lt := leader.History(k)
		rv, rt := replica.History(k)
		if !reflect.DeepEqual(lv, rv) || lt != rt {
			t.Fatalf("history of %q: leader %+v %v, replica %+v %v", k, lv, lt, rv, rt)
		}
		if len(lv) > cfg.History {
			t.Fatalf("history of %q holds %d versions, limit %d", k, len(lv), cfg.History)
		}
		for r := uint64(0); r <= cur+1; r++ {
			v, found, err := leader.GetAt(k, r)
			v2, found2, err2 := replica.GetAt(k, r)
			if v != v2 || found != found2 || fmt.Sprint(err) != fmt.Sprint(err2) {
				t.Fatalf("GetAt(%q, %d): leader %+v %v %v, replica %+v %v %v", k, r, v, found, err, v2, found2, err2)
			}
			want, wantFound := m.at(k, r)
			if err != nil {
				var re *RevisionError
				if !errors.As(err, &re) {
					t.Fatalf("GetAt(%q, %d): %v is not a *RevisionError", k, r, err)
				}
				switch {
				case r > cur:
					if !errors.Is(err, ErrFutureRevision) {
						t.Fatalf("GetAt(%q, %d) past %d: %v", k, r, cur, err)
					}
				case !errors.Is(err, ErrCompacted):
					t.Fatalf("GetAt(%q, %d): %v, want ErrCompacted", k, r, err)
				case r == cur && cfg.History > 1:
					t.Fatalf("GetAt(%q, %d) at the current revision: %v", k, r, err)
				case r == cur && wantFound:
					t.Fatalf("GetAt(%q, %d) of a live key at the current revision: %v", k, r, err)
				case r < floor:
				case len(lv) > 0 && re.Held <= r:
					// Above the floor, a key with versions held says from
					// where it answers.
					t.Fatalf("GetAt(%q, %d): %v, held from %d", k, r, err, re.Held)
				case len(lv) > 0 && re.Held <= cur:
					if _, _, err := leader.GetAt(k, re.Held); err != nil {
						t.Fatalf("GetAt(%q, %d) refused, held from %d, but: %v", k, r, re.Held, err)
					}
				}
				continue
			}
			if r > cur {
				t.Fatalf("GetAt(%q, %d) past %d answered", k, r, cur)
			}
			if r < m.compact {
				t.Fatalf("GetAt(%q, %d) below compaction %d answered", k, r, m.compact)
			}
			if p, ok := m.purged[k]; ok && r < p {
				t.Fatalf("GetAt(%q, %d) below its purge at %d answered", k, r, p)
			}
			if found != wantFound || found && (v.Revision != want.rev || v.Value != want.value) {
				t.Fatalf("GetAt(%q, %d) = %+v found %v, model says %+v found %v", k, r, v, found, want, wantFound)
			}
			if !found && v.Deleted && v.Revision != want.rev {
				t.Fatalf("GetAt(%q, %d) tombstone %+v, model says deleted at %d", k, r, v, want.rev)
			}
		}
	}
	// Replays: from every start the store accepts, the pages joined are
	// the model's updates after it, filtered by prefix, without compactions.
	for _, prefix := range []string{"", "a", "a/", "b"} {
		for after := uint64(0); after <= cur; after++ {
			for _, page := range []struct{ limit, bytes int }{{1, 1 << 20}, {3, 1 << 20}, {1 << 20, 4}} {
				got, err := replayAll(leader, after, prefix, page.limit, page.bytes)
				got2, err2 := replayAll(replica, after, prefix, page.limit, page.bytes)
				if !reflect.DeepEqual(got, got2) || fmt.Sprint(err) != fmt.Sprint(err2) {
					t.Fatalf("Changes(%d, %q): leader %v %v, replica %v %v", after, prefix, got, err, got2, err2)
				}
				if err != nil {
					if !errors.Is(err, ErrCompacted) {
						t.Fatalf("Changes(%d, %q): %v", after, prefix, err)
					}
					if after == cur {
						t.Fatalf("Changes after the current revision %d: %v", cur, err)
					}
					continue
				}
				var want []Update
				for _, u := range m.updates {
					if u.Seq > after && u.Compact == 0 && touches(u, prefix) {
						want = append(want, u)
					}
				}
				if !reflect.DeepEqual(got, want) {
					t.Fatalf("Changes(%d, %q, %d, %d) = %v, want %v", after, prefix, page.limit, page.bytes, got, want)
				}
			}
		}
	}
}

// replayAll pages through Changes until more is false.
func replayAll(s *Store, after uint64, prefix string, limit, maxBytes int) ([]Update, error) {
	var all []Update
	for i := 0; ; i++ {
		out, next, _, more, err := s.Changes(after, 0, prefix, limit, maxBytes)
		if err != nil {
			return all, err
		}
		all = append(all, out...)
		if !more {
			if next != s.Revision() && next < s.Revision() {
				return all, fmt.Errorf("last page ends at %d, store at %d", next, s.Revision())
			}
			return all, nil
		}
		if next <= after && len(out) == 0 {
			return all, fmt.Errorf("no progress after %d", after)
		}
		after = next
		if i > 10000 {
			return all, errors.New("too many pages")
		}
	}
}

// randomWrite picks a write among puts, deletes, deletes by prefix,
// purges and compactions of a few keys.
func randomWrite(rng *rand.Rand, rev uint64) Write {
	keys := []string{"a/1", "a/2", "a/3", "b", "b/1", "c"}
	k := keys[rng.Intn(len(keys))]
	switch n := rng.Intn(20); {
	case n < 9:
		w := Write{Key: k, Value: fmt.Sprintf("v%d", rng.Intn(100))}
		if rng.Intn(4) == 0 {
			w.Expires = int64(1 + rng.Intn(50))
		}
		return w
	case n < 13:
		return Write{Key: k, Delete: true}
	case n < 15:
		return Write{Key: []string{"a/", "b", "a/1", "z"}[rng.Intn(4)], Delete: true, Prefix: true, Purge: rng.Intn(3) == 0}
	case n < 17:
		return Write{Key: k, Delete: true, Purge: true}
	default:
		if rev == 0 {
			return Write{Key: k, Value: "x"}
		}
		return Write{Compact: 1 + uint64(rng.Int63n(int64(rev)))}
	}
}

func TestHistoryLeaderAndReplicaAgreeWithModel(t *testing.T) {
	keys := []string{"a/1", "a/2", "a/3", "b", "b/1", "c", "never"}
	for _, cfg := range []Config{
		{History: 1, Changes: 1000},
		{History: 2, Changes: 1000},
		{History: 3, Changes: 5},
		{History: 8, Changes: 1000},
		{History: 4, Changes: 12},
		{History: 1, Changes: 3},
	} {
		for seed := int64(1); seed <= 20; seed++ {
			t.Run(fmt.Sprintf("history%d_changes%d_seed%d", cfg.History, cfg.Changes, seed), func(t *testing.T) {
				rng := rand.New(rand.NewSource(seed))
				leader, replica := NewWithConfig(cfg), NewWithConfig(cfg)
				m := newRefModel()
				steps := 60
				for i := 0; i < steps; i++ {
					w := randomWrite(rng, leader.Revision())
					u, _, applied, err := leader.Write(1, w)
					if err != nil {
						t.Fatalf("write %+v: %v", w, err)
					}
					if !applied {
						continue
					}
					if err := replica.Apply(u); err != nil {
						t.Fatalf("apply %+v: %v", u, err)
					}
					m.record(u)
					if i%4 == 3 || i == steps-1 {
						checkStores(t, cfg, m, leader, replica, keys)
					}
				}
			})
		}
	}
}

// checkModel checks one store against the model alone: every read at a
// revision is the model's answer or a *RevisionError (ErrIncomplete only
// while the store knows it missed updates), and every replay it accepts
// is the model's.
func checkModel(t *testing.T, m *refModel, s *Store, keys []string) {
	t.Helper()
	cur := s.Revision()
	missed := s.Missed() > 0
	for _, k := range keys {
		for r := uint64(0); r <= cur; r++ {
			v, found, err := s.GetAt(k, r)
			if err != nil {
				var re *RevisionError
				if !errors.As(err, &re) || errors.Is(err, ErrIncomplete) && !missed || errors.Is(err, ErrFutureRevision) {
					t.Fatalf("GetAt(%q, %d) at %d (missed %v): %v", k, r, cur, missed, err)
				}
				continue
			}
			if missed {
				t.Fatalf("GetAt(%q, %d) answered by a copy that missed updates", k, r)
			}
			want, wantFound := m.at(k, r)
			if found != wantFound || found && (v.Revision != want.rev || v.Value != want.value) {
				t.Fatalf("GetAt(%q, %d) = %+v found %v, model says %+v found %v", k, r, v, found, want, wantFound)
			}
		}
	}
	for after := uint64(0); after <= cur; after++ {
		got, err := replayAll(s, after, "", 2, 1<<20)
		if err != nil {
			if !errors.Is(err, ErrCompacted) {
				t.Fatalf("Changes(%d): %v", after, err)
			}
			continue
		}
		var want []Update
		for _, u := range m.updates {
			if u.Seq > after && u.Seq <= cur && u.Compact == 0 {
				want = append(want, u)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("Changes(%d) = %v, want %v", after, got, want)
		}
	}
}

// TestHistoryLossyReplicaAgreesWithModel: a replica that loses updates
// (a gap) and later catches up from the leader's keys never answers a
// read at a revision or a replay differently from the model.
func TestHistoryLossyReplicaAgreesWithModel(t *testing.T) {
	keys := []string{"a/1", "a/2", "a/3", "b", "b/1", "c"}
	for _, cfg := range []Config{{History: 1, Changes: 100}, {History: 3, Changes: 100}, {History: 4, Changes: 7}} {
		for seed := int64(1); seed <= 30; seed++ {
			t.Run(fmt.Sprintf("history%d_changes%d_seed%d", cfg.History, cfg.Changes, seed), func(t *testing.T) {
				rng := rand.New(rand.NewSource(seed))
				leader, replica := NewWithConfig(cfg), NewWithConfig(cfg)
				m := newRefModel()
				for i := 0; i < 60; i++ {
					w := randomWrite(rng, leader.Revision())
					u, _, applied, err := leader.Write(1, w)
					if err != nil {
						t.Fatalf("write %+v: %v", w, err)
					}
					if !applied {
						continue
					}
					m.record(u)
					switch n := rng.Intn(10); {
					case n == 0: // lost
					case n == 2 && replica.Revision()+1 == u.Seq && replica.Missed() == 0:
						// A deposed leader's write took u's place here.
						bogus := Update{Epoch: u.Epoch, Seq: u.Seq, Key: "c", Value: "bogus"}
						if err := replica.Apply(bogus); err != nil {
							t.Fatal(err)
						}
						if err := replica.Apply(u); !errors.Is(err, ErrDiverged) {
							t.Fatalf("apply %+v over another update: %v", u, err)
						}
					case n == 1 && replica.Missed() > 0:
						// Catch up: the leader's keys, at its revision.
						entries, rev, epoch, _ := leader.Snapshot("", 1000, 1<<30)
						replica.InstallPage("", entries, true)
						replica.CaughtUp(epoch, rev)
					default:
						if err := replica.Apply(u); err != nil && !errors.Is(err, ErrGap) {
							t.Fatalf("apply %+v: %v", u, err)
						}
					}
					checkModel(t, m, replica, keys)
				}
			})
		}
	}
}

// FuzzHistory drives a leader and a replica with writes chosen by the
// input and checks them against each other and the model.
func FuzzHistory(f *testing.F) {
	f.Add(int64(1), uint8(2), uint8(5), uint8(30))
	f.Add(int64(7), uint8(1), uint8(3), uint8(40))
	f.Add(int64(42), uint8(8), uint8(200), uint8(50))
	keys := []string{"a/1", "a/2", "a/3", "b", "b/1", "c", "never"}
	f.Fuzz(func(t *testing.T, seed int64, history, changes, steps uint8) {
		cfg := Config{History: 1 + int(history)%MaxHistory, Changes: 1 + int(changes)}
		rng := rand.New(rand.NewSource(seed))
		leader, replica := NewWithConfig(cfg), NewWithConfig(cfg)
		m := newRefModel()
		for i := 0; i < int(steps)%64; i++ {
			u, _, applied, err := leader.Write(1, randomWrite(rng, leader.Revision()))
			if err != nil {
				t.Fatal(err)
			}
			if !applied {
				continue
			}
			if err := replica.Apply(u); err != nil {
				t.Fatal(err)
			}
			m.record(u)
		}
		checkStores(t, cfg, m, leader, replica, keys)
	})
}
