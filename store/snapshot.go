package store

import (
	"fmt"
	"strings"

	"github.com/google/btree"
)

// indexDegree is the B-tree degree of the key index: nodes of up to 63
// keys, a few cache lines of string headers each.
const indexDegree = 32

// newKeyIndex returns an empty ordered index of boxes, by key.
func newKeyIndex() *btree.BTreeG[*box] {
	return btree.NewG(indexDegree, func(a, b *box) bool { return a.key() < b.key() })
}

// setLocked stores e under key, adding key to the indexes if it is new,
// and returns its box. The caller holds mu for writing.
func (s *Store) setLocked(key string, e Entry) *box {
	p := s.data.get(key)
	if p == nil {
		p = &box{}
		p.fill(key, e)
		s.insertLocked(p, e.Expires)
		return p
	}
	s.retimeLocked(p, e.Expires)
	s.data.refill(p, e)
	return p
}

// insertLocked adds box p, whose key data does not hold, with deadline
// expires (0: none).
func (s *Store) insertLocked(p *box, expires int64) {
	s.data.insert(p)
	s.keys.ReplaceOrInsert(p)
	s.retimeLocked(p, expires)
}

// entryLocked is p's entry.
func (s *Store) entryLocked(p *box) Entry {
	return Entry{Value: p.value(), Revision: p.revision, Expires: s.expiresLocked(p)}
}

// expiresLocked is p's deadline (0: none).
func (s *Store) expiresLocked(p *box) int64 {
	if !p.expiring {
		return 0
	}
	return s.expires[p]
}

// retimeLocked moves p in the deadline index to deadline new (0: none).
func (s *Store) retimeLocked(p *box, new int64) {
	old := s.expiresLocked(p)
	if old == new {
		return
	}
	if old != 0 {
		s.ttl.Delete(ttlItem{old, p})
		delete(s.expires, p)
	}
	if new != 0 {
		s.ttl.ReplaceOrInsert(ttlItem{new, p})
		s.expires[p] = new
	}
	p.expiring = new != 0
}

// removeLocked removes key from the table and the indexes, if held.
func (s *Store) removeLocked(key string) {
	if p := s.data.remove(key); p != nil {
		s.retimeLocked(p, 0)
		s.keys.Delete(p)
	}
}

// KeyEntry is one key of a snapshot.
type KeyEntry struct {
	Key string
	Entry
}

// Snapshot returns, in key order, the entries with keys after after, up to
// limit entries or about maxBytes of keys and values (at least one entry),
// with the store's revision and epoch at that moment. more says whether
// keys remain. It walks the key index under the read lock, so a page costs
// O(log n + page) and writers wait for one page at most, not for a sort
// of the keyspace.
func (s *Store) Snapshot(after string, limit, maxBytes int) (entries []KeyEntry, rev, epoch uint64, more bool) {
	return s.List("", after, limit, maxBytes)
}

// List is Snapshot restricted to the keys that begin with prefix: the
// entries with such keys after after, in key order, a page at a time.
// The walk starts at the first key of the prefix (or after after, if
// later) and stops at the first key past the prefix, so a page of a small
// prefix costs O(log n + page) however many keys the store holds.
func (s *Store) List(prefix, after string, limit, maxBytes int) (entries []KeyEntry, rev, epoch uint64, more bool) {
	limit = max(limit, 1)
	s.mu.RLock()
	defer s.mu.RUnlock()
	entries = make([]KeyEntry, 0, min(limit, s.keys.Len()))
	size := 0
	s.keys.AscendGreaterOrEqual(probe(max(after, prefix)), func(it *box) bool {
		k := it.key()
		if k == after {
			return true
		}
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		e := s.entryLocked(it)
		if len(entries) > 0 && (len(entries) >= limit || size+len(k)+len(e.Value) > maxBytes) {
			more = true
			return false
		}
		size += len(k) + len(e.Value)
		entries = append(entries, KeyEntry{Key: k, Entry: e})
		return true
	})
	return entries, s.rev, s.epoch, more
}

// installBatch bounds the entries Install merges under one hold of the
// write lock, so reads and writes wait for a batch, not a whole page.
const installBatch = 512

// Install writes entries fetched from the leader: each key takes the
// leader's entry, whatever its own revision. It takes the write lock once
// per installBatch entries.
func (s *Store) Install(entries []KeyEntry) {
	for len(entries) > 0 {
		n := min(len(entries), installBatch)
		s.installLocked(entries[:n])
		entries = entries[n:]
	}
}

func (s *Store) installLocked(entries []KeyEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	// The boxes of new keys come from one allocation per batch (a key
	// removed by InstallPage leaves its box to the collector with the
	// rest of its batch).
	var boxes []box
	for i, e := range entries {
		switch p := s.data.get(e.Key); {
		case p == nil:
			if len(boxes) == cap(boxes) {
				boxes = make([]box, 0, len(entries)-i)
			}
			boxes = append(boxes, box{})
			p = &boxes[len(boxes)-1]
			p.fill(e.Key, e.Entry)
			s.insertLocked(p, e.Expires)
		default:
			s.retimeLocked(p, e.Expires)
			s.data.refill(p, e.Entry) // the leader's copy wins, even over a higher revision of a deposed leader's
		}
	}
}

// InstallPage makes the store's keys after after, up to the page's last
// key (or, if last, with no upper end), exactly the page's entries, which
// must be in key order: each page key takes the leader's entry, even over
// a higher revision (a deposed leader's write the leader never had), and
// local keys in that range that the page lacks are removed. Pages read
// one after another in key order so replace the whole store with the
// leader's. It returns how many keys it removed.
func (s *Store) InstallPage(after string, entries []KeyEntry, last bool) (removed int) {
	s.Install(entries)
	through := ""
	if len(entries) > 0 {
		through = entries[len(entries)-1].Key
	}
	in := make(map[string]struct{}, len(entries))
	for _, e := range entries {
		in[e.Key] = struct{}{}
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var drop []string
	s.keys.AscendGreaterOrEqual(probe(after), func(it *box) bool {
		k := it.key()
		if k == after {
			return true
		}
		if !last && k > through {
			return false
		}
		if _, ok := in[k]; !ok {
			drop = append(drop, k)
		}
		return true
	})
	for _, k := range drop {
		s.removeLocked(k)
	}
	return len(drop)
}

// Reserve makes room for n keys in all, so a catch-up that knows how many
// keys are coming does not grow the table step by step. It rehashes the keys
// held now under the write lock: call it while the store is small. A
// smaller n than Len does nothing.
func (s *Store) Reserve(n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.data.reserve(n)
}

// ApplyNewer applies u (a put or a tombstone) only if it is newer than the
// key's entry, without
// sequence checks: for updates buffered during a catch-up, whose order
// relative to the snapshot pages is unknown. It refuses old epochs.
func (s *Store) ApplyNewer(u Update) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Epoch < s.epoch {
		return fmt.Errorf("%w: update epoch %d seq %d, epoch %d is known", ErrOldEpoch, u.Epoch, u.Seq, s.epoch)
	}
	s.mergeLocked(u)
	return nil
}

// Merge is ApplyNewer without the epoch fence, for the leader's own past
// updates fetched by a catch-up from a revision (the updates after it
// that this copy missed, of whatever epoch wrote them).
func (s *Store) Merge(u Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.mergeLocked(u)
}

func (s *Store) mergeLocked(u Update) {
	switch {
	case u.Compact > 0:
		// The history is dropped when the catch-up ends.
	case u.Delete && u.Prefix:
		for _, k := range s.prefixKeysLocked(u.Key) {
			if s.data.get(k).revision < u.Seq {
				s.removeKeyLocked(k, u)
			}
		}
	default:
		if p := s.data.get(u.Key); p == nil || u.Seq > p.revision {
			if u.Delete {
				s.removeKeyLocked(u.Key, u)
			} else {
				s.putLocked(&u)
			}
		}
	}
	s.rememberLocked(u)
}
