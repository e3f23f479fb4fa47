package store

import (
	"errors"
	"fmt"
	"sort"
	"strings"

	"github.com/google/btree"
)

// Limits and defaults of the history a store keeps.
const (
	// DefaultHistory is how many versions of each key a store keeps,
	// counting the current one.
	DefaultHistory = 8
	// MaxHistory is the most versions of a key a store keeps (as NATS KV).
	MaxHistory = 64
	// DefaultChanges is how many recent updates a store keeps in order for
	// watchers to replay.
	DefaultChanges = 65536
	// DefaultChangesBytes bounds the keys and values of those updates.
	DefaultChangesBytes = 64 << 20
)

// Errors of reads at a revision and of replays. Callers branch on them
// with errors.Is.
var (
	// ErrCompacted means the revision asked for is older than what this
	// copy holds: compacted, trimmed by the history limit, or from before
	// the copy started following (a restart or a catch-up). The error is
	// a *RevisionError.
	ErrCompacted = errors.New("revision not held")
	// ErrFutureRevision means the revision asked for is past this copy's
	// revision. The error is a *RevisionError.
	ErrFutureRevision = errors.New("revision is in the future")
	// ErrIncomplete means the copy knows it missed updates (a gap or a
	// divergence not yet repaired by a catch-up), so it cannot say what a
	// key held at a revision. The error is a *RevisionError.
	ErrIncomplete = errors.New("copy is incomplete")
)

// RevisionError is a read at Revision this copy cannot answer: Held is
// the lowest revision it can answer for (for ErrCompacted) and Current its
// revision.
type RevisionError struct {
	Kind     error
	Revision uint64
	Held     uint64
	Current  uint64
	// Rewritten, for a replay, is the epoch the caller followed whose
	// revision this copy holds from another epoch.
	Rewritten uint64
}

func (e *RevisionError) Error() string {
	switch e.Kind {
	case ErrFutureRevision:
		return fmt.Sprintf("revision %d is past this copy's revision %d", e.Revision, e.Current)
	case ErrIncomplete:
		return fmt.Sprintf("this copy missed updates, so it cannot answer for revision %d", e.Revision)
	}
	if e.Rewritten != 0 {
		return fmt.Sprintf("revision %d of epoch %d is not held: a later leader rewrote it (this copy replays from revision %d)", e.Revision, e.Rewritten, e.Held)
	}
	return fmt.Sprintf("revision %d is no longer held (this copy answers from revision %d)", e.Revision, e.Held)
}

// Is makes errors.Is match the error's kind.
func (e *RevisionError) Is(target error) bool { return target == e.Kind }

// Config sizes what a store remembers. Zero fields take their defaults.
type Config struct {
	// RequestWindow is how many recent request IDs are remembered
	// (default DefaultRequestWindow).
	RequestWindow int
	// History is how many versions of each key are kept, the current one
	// included (default DefaultHistory, 1 to MaxHistory). Deletes count as
	// versions (tombstones).
	History int
	// Changes is how many recent updates are kept in revision order for
	// Changes, which watchers replay from (default DefaultChanges), and
	// ChangesBytes how many bytes of keys and values they may hold at
	// most (default DefaultChangesBytes): the older ones leave first.
	Changes      int
	ChangesBytes int
}

// Validate checks the limits.
func (c Config) Validate() error {
	if c.History < 0 || c.History > MaxHistory {
		return fmt.Errorf("history %d: want 1 to %d", c.History, MaxHistory)
	}
	if c.RequestWindow < 0 || c.Changes < 0 {
		return fmt.Errorf("request window %d and changes %d must not be negative", c.RequestWindow, c.Changes)
	}
	return nil
}

// Version is one revision of a key: the value written, or a tombstone.
type Version struct {
	Revision uint64
	Value    string
	// Deleted marks a tombstone: a delete, a purge, a delete by prefix or
	// an expiry removed the key at Revision.
	Deleted bool
	// Expires is the key's expiry deadline set by this version, in Unix
	// nanoseconds of the leader's clock (0: none).
	Expires int64
}

// chain is what a store keeps of a key's past: the versions before the
// current one (and a tombstone if the key is deleted now), oldest first.
// trimmed is the revision of the newest version dropped from it (by the
// history limit, a purge or a compaction): a read below the oldest held
// version is then not answerable.
type chain struct {
	versions []Version
	trimmed  uint64
	purged   bool // the chain is a purge's marker, and nothing since
}

// ttlItem orders the boxes of keys with a deadline by deadline.
type ttlItem struct {
	deadline int64
	b        *box
}

func newTTLIndex() *btree.BTreeG[ttlItem] {
	return btree.NewG(indexDegree, func(a, b ttlItem) bool {
		if a.deadline != b.deadline {
			return a.deadline < b.deadline
		}
		return a.b.key() < b.b.key()
	})
}

// version is the current version of e.
func (e Entry) version() Version {
	return Version{Revision: e.Revision, Value: e.Value, Expires: e.Expires}
}

// pushLocked records old (the key's version being replaced or removed) in
// the key's chain, if the store keeps history, and trims the chain so the
// key keeps at most History versions counting live (the new current one,
// if any).
func (s *Store) pushLocked(key string, old []Version, live bool) {
	if s.history <= 1 && !s.hasChain(key) {
		return
	}
	c := s.hist[key]
	if c == nil {
		c = &chain{}
		// The map keeps its own copy of the key: key may share its
		// allocation with a value the chain drops later.
		s.hist[strings.Clone(key)] = c
	}
	c.purged = false
	keep := s.history
	if live {
		keep--
	}
	old = c.trim(len(c.versions)+len(old)-keep, old)
	c.versions = append(c.versions, old...)
	if len(c.versions) == 0 && (c.trimmed == 0 || live && s.history <= 1) {
		delete(s.hist, key)
	}
}

// trim drops the oldest drop versions of c's versions followed by old
// (newer ones), recording the newest dropped in trimmed, and returns
// what is left of old. c keeps its array: a full chain takes a version
// in place of its oldest without allocating.
func (c *chain) trim(drop int, old []Version) []Version {
	if drop <= 0 {
		return old
	}
	if held := len(c.versions); drop > held {
		c.trimmed = max(c.trimmed, old[drop-held-1].Revision)
		clear(c.versions)
		c.versions = c.versions[:0]
		return old[drop-held:]
	}
	c.trimmed = max(c.trimmed, c.versions[drop-1].Revision)
	n := copy(c.versions, c.versions[drop:])
	clear(c.versions[n:])
	c.versions = c.versions[:n]
	return old
}

func (s *Store) hasChain(key string) bool { _, ok := s.hist[key]; return ok }

// hasPast reports whether key has a history a purge would drop: a chain
// that is not only the marker of an earlier purge.
func (s *Store) hasPast(key string) bool {
	c, ok := s.hist[key]
	return ok && !c.purged
}

// putLocked stores u's value as key's current version, moving the old one
// into the key's history. u's key and value then share the box's copy, so
// the updates kept for replays and request IDs hold no second one.
func (s *Store) putLocked(u *Update) {
	if p := s.data.get(u.Key); p != nil {
		s.pushLocked(p.key(), []Version{s.entryLocked(p).version()}, true)
	} else if s.hasChain(u.Key) {
		s.pushLocked(u.Key, nil, true)
	}
	p := s.setLocked(u.Key, Entry{Value: u.Value, Revision: u.Seq, Expires: u.Expires})
	u.Key, u.Value = p.key(), p.value()
}

// removeKeyLocked removes key at revision u.Seq: a tombstone in its
// history, or (for a purge) no history at all, so reads below u.Seq say
// the revision is not held.
func (s *Store) removeKeyLocked(key string, u Update) {
	var old []Version
	if p := s.data.get(key); p != nil {
		old = append(old, s.entryLocked(p).version())
		s.removeLocked(key)
	}
	if u.Purge {
		// A marker that the key's past is gone: reads below the purge
		// are refused, not answered "not found".
		s.hist[key] = &chain{versions: []Version{{Revision: u.Seq, Deleted: true}}, trimmed: u.Seq - 1, purged: true}
		return
	}
	if s.history <= 1 && !s.hasChain(key) {
		return
	}
	s.pushLocked(key, append(old, Version{Revision: u.Seq, Deleted: true}), false)
}

// anyWithPrefixLocked reports whether a key held now begins with prefix.
func (s *Store) anyWithPrefixLocked(prefix string) bool {
	found := false
	s.keys.AscendGreaterOrEqual(probe(prefix), func(it *box) bool {
		found = strings.HasPrefix(it.key(), prefix)
		return false
	})
	return found
}

// prefixKeysLocked returns the keys held now that begin with prefix. They
// are copies: a key of a box shares its allocation with the value, which
// the window of recent updates would otherwise keep for the key's sake.
func (s *Store) prefixKeysLocked(prefix string) []string {
	var keys []string
	s.keys.AscendGreaterOrEqual(probe(prefix), func(it *box) bool {
		k := it.key()
		if !strings.HasPrefix(k, prefix) {
			return false
		}
		keys = append(keys, strings.Clone(k))
		return true
	})
	return keys
}

// compactLocked drops the history below rev: each key keeps its newest
// version at or below rev and everything after; a key deleted at or below
// rev is forgotten. Replays and reads at a revision below rev are refused
// from now on. It walks the keys that have a history, under the lock.
func (s *Store) compactLocked(rev uint64) {
	if rev <= s.revFloor {
		return
	}
	s.revFloor = rev
	for key, c := range s.hist {
		// i is the first held version past rev.
		i := sort.Search(len(c.versions), func(i int) bool { return c.versions[i].Revision > rev })
		p := s.data.get(key)
		live := p != nil
		switch {
		case live && p.revision <= rev, !live && i == len(c.versions):
			// The current version (or, for a key deleted at or below
			// rev, nothing) answers every read from rev on.
			delete(s.hist, key)
		case i > 1:
			c.trimmed = max(c.trimmed, c.versions[i-2].Revision)
			c.versions = append([]Version(nil), c.versions[i-1:]...)
		}
	}
}

// logLocked appends u to the recent updates, evicting the oldest while
// more than changesMax updates or changesBytes of keys and values are
// held, and forgets the history of a key whose delete is evicted (so
// deleted keys cost memory for a bounded time); reads below such a delete
// are refused. The window is a ring of at most changesMax entries.
func (s *Store) logLocked(e logEntry) {
	if n := s.changes.len(); n > 0 {
		last := s.changes.at(n - 1)
		e.time = max(e.time, last.time) // leaders' clocks may disagree: keep it ordered
		if e.leader == last.leader {
			e.leader = last.leader // one copy of the name, not one per update
		}
	}
	for s.changes.len() >= s.changesMax {
		s.evictLocked()
	}
	s.changes.push(e, s.changesMax)
	s.changesSize += e.size()
	for s.changes.len() > 1 && s.changesSize > s.changesBytes {
		s.evictLocked()
	}
}

// evictLocked drops the oldest update of the window.
func (s *Store) evictLocked() {
	old := s.changes.pop()
	s.changesSize -= old.size()
	s.changesFloor = max(s.changesFloor, old.seq)
	if old.flags&logDelete != 0 {
		s.forgetDeletedLocked(old)
	}
}

// forgetDeletedLocked drops the history of the keys the delete e removed,
// if they are still deleted at its tombstone.
func (s *Store) forgetDeletedLocked(e logEntry) {
	old, keys := e.update(), e.removed()
	if !old.Prefix {
		keys = []string{old.Key}
	}
	for _, k := range keys {
		c := s.hist[k]
		if live := s.data.get(k) != nil; c == nil || live || len(c.versions) == 0 {
			continue
		}
		if last := c.versions[len(c.versions)-1]; last.Deleted && last.Revision <= old.Seq {
			delete(s.hist, k)
			s.revFloor = max(s.revFloor, old.Seq)
		}
	}
}

// resetHistoryLocked forgets the history: after a gap, a divergence or a
// catch-up, this copy's past is not known to be the leader's, so its
// history starts again at rev.
func (s *Store) resetHistoryLocked(rev uint64) {
	s.hist = make(map[string]*chain)
	s.changes, s.changesSize = window{}, 0
	s.revFloor, s.changesFloor = rev, rev
}

// GetAt returns key's version at revision rev: the newest version at or
// below rev. found is false if the key did not exist then (or was
// deleted). It fails with a *RevisionError when this copy cannot say:
// ErrFutureRevision past its revision, ErrIncomplete if it knows it
// missed updates, ErrCompacted if rev is older than what it holds.
func (s *Store) GetAt(key string, rev uint64) (v Version, found bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	rerr := func(kind error) error {
		return &RevisionError{Kind: kind, Revision: rev, Held: s.revFloor, Current: s.rev}
	}
	switch {
	case rev > s.rev:
		return Version{}, false, rerr(ErrFutureRevision)
	case addSat(s.gaps, s.ahead) > 0:
		return Version{}, false, rerr(ErrIncomplete)
	case rev < s.revFloor:
		return Version{}, false, rerr(ErrCompacted)
	}
	versions, c := s.versionsLocked(key)
	i := sort.Search(len(versions), func(i int) bool { return versions[i].Revision > rev })
	if i > 0 {
		v := versions[i-1]
		return v, !v.Deleted, nil
	}
	// No version at or below rev is held: the key did not exist at rev,
	// unless older versions were dropped (keeping one version, they are
	// never kept, so nothing can be said).
	if s.history <= 1 || c != nil && c.trimmed > 0 {
		err := rerr(ErrCompacted)
		if len(versions) > 0 {
			// This key is answered from its oldest held version on.
			err.(*RevisionError).Held = max(s.revFloor, versions[0].Revision)
		}
		return Version{}, false, err
	}
	return Version{}, false, nil
}

// versionsLocked returns key's held versions, oldest first, and its chain.
func (s *Store) versionsLocked(key string) ([]Version, *chain) {
	c := s.hist[key]
	var versions []Version
	if c != nil {
		versions = append(versions, c.versions...)
	}
	if p := s.data.get(key); p != nil {
		versions = append(versions, s.entryLocked(p).version())
	}
	return versions, c
}

// History returns key's held versions, oldest first (at most History of
// them, tombstones included), and whether older ones were dropped.
func (s *Store) History(key string) (versions []Version, trimmed bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	versions, c := s.versionsLocked(key)
	return versions, c != nil && c.trimmed > 0
}

// Changes returns, in revision order, the held updates after revision
// after that touch keys beginning with prefix (a delete by prefix that
// overlaps it counts; compactions are left out), up to limit of them or
// about maxBytes of keys and values (at least one, even for a limit
// below one). next is the revision through which the copy's updates
// were examined: the copy's revision
// when more is false, else where the next call should start after. It
// fails with a *RevisionError (ErrCompacted) if the updates after after
// are no longer all held.
func (s *Store) Changes(after, afterEpoch uint64, prefix string, limit, maxBytes int) (out []Update, next, nextEpoch uint64, more bool, err error) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	limit = max(limit, 1)
	if after < s.changesFloor {
		return nil, after, 0, false, &RevisionError{Kind: ErrCompacted, Revision: after + 1, Held: s.changesFloor + 1, Current: s.rev}
	}
	n := s.changes.len()
	i := sort.Search(n, func(i int) bool { return s.changes.at(i).seq > after })
	if afterEpoch != 0 && i > 0 && s.changes.at(i-1).seq == after && s.changes.at(i-1).epoch != afterEpoch {
		// The caller followed another branch of the stream: revision
		// after was written by another epoch here (a leader lost updates
		// it had applied, and its successor reused their revisions).
		return nil, after, 0, false, &RevisionError{Kind: ErrCompacted, Revision: after, Held: s.changesFloor + 1, Current: s.rev,
			Rewritten: afterEpoch}
	}
	next, nextEpoch = after, afterEpoch
	size := 0
	for ; i < n; i++ {
		u := s.changes.at(i).update()
		if len(out) >= limit || len(out) > 0 && size+len(u.Key)+len(u.Value) > maxBytes {
			return out, next, nextEpoch, true, nil
		}
		next, nextEpoch = u.Seq, u.Epoch
		if u.Compact > 0 || !touches(u, prefix) {
			continue
		}
		size += len(u.Key) + len(u.Value)
		out = append(out, u)
	}
	if s.rev > next {
		next, nextEpoch = s.rev, s.stream
	}
	return out, next, nextEpoch, false, nil
}

// touches reports whether u changes a key that begins with prefix.
func touches(u Update, prefix string) bool {
	if u.Prefix {
		return strings.HasPrefix(u.Key, prefix) || strings.HasPrefix(prefix, u.Key)
	}
	return strings.HasPrefix(u.Key, prefix)
}

// Expiry is a key whose deadline has passed, at the revision that set it.
type Expiry struct {
	Key      string
	Revision uint64
	Deadline int64
}

// Due returns up to limit keys whose deadline is at or before now (Unix
// nanoseconds), earliest first. The leader deletes them.
func (s *Store) Due(now int64, limit int) []Expiry {
	s.mu.RLock()
	defer s.mu.RUnlock()
	var out []Expiry
	s.ttl.Ascend(func(it ttlItem) bool {
		if it.deadline > now || len(out) >= limit {
			return false
		}
		if p := s.data.get(it.b.key()); p != nil && s.expiresLocked(p) == it.deadline {
			out = append(out, Expiry{Key: p.key(), Revision: p.revision, Deadline: it.deadline})
		}
		return true
	})
	return out
}

// Held describes how much history the copy holds.
type Held struct {
	// Floor is the lowest revision a read at a revision may ask for.
	Floor uint64
	// ChangesFrom is the lowest revision a replay may start from (after
	// ChangesFrom-1).
	ChangesFrom uint64
	// Keys is how many keys (deleted ones included) have a history beyond
	// their current version.
	Keys int
	// Expiring is how many keys have a deadline.
	Expiring int
}

// HistoryHeld reports what history the copy holds, for status.
func (s *Store) HistoryHeld() Held {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Held{Floor: s.revFloor, ChangesFrom: s.changesFloor + 1, Keys: len(s.hist), Expiring: s.ttl.Len()}
}

// RevisionBefore returns the newest revision among the held updates
// written at or before t (Unix nanoseconds of the leader's clock), for a
// compaction by age; 0 if every held update is newer.
func (s *Store) RevisionBefore(t int64) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	i := sort.Search(s.changes.len(), func(i int) bool { return s.changes.at(i).time > t })
	if i == 0 {
		return 0
	}
	return s.changes.at(i - 1).seq
}
