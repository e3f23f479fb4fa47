package store

import (
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sort"
	"strconv"
	"sync"

	"github.com/google/btree"
)

// Errors returned by Store. Callers branch on them with errors.Is.
var (
	// ErrOldEpoch means the update or write belongs to an epoch lower than
	// the highest the store knows: it comes from a deposed leader and was
	// not applied.
	ErrOldEpoch = errors.New("update from an old epoch")
	// ErrGap means updates were missed before this one; the update itself
	// was applied. The error is a *GapError.
	ErrGap = errors.New("replication gap")
	// ErrDuplicate means the update's sequence number was already applied
	// in this epoch; it was ignored.
	ErrDuplicate = errors.New("duplicate update")
	// ErrDiverged means a new epoch starts below this store's revision: the
	// store holds writes the new leader never had. The store follows the
	// new leader from there on.
	ErrDiverged = errors.New("store is ahead of the new leader")
	// ErrBadUpdate means the update cannot be applied as given (seq 0).
	ErrBadUpdate = errors.New("malformed update")
	// ErrConflict means a conditional write's IfRevision is not the key's
	// revision; nothing was applied. The error is a *ConditionError.
	ErrConflict = errors.New("revision conflict")
	// ErrExists means a create found the key already there; nothing was
	// applied. The error is a *ConditionError.
	ErrExists = errors.New("key exists")
)

// ConditionError is a failed condition of a Write: the key and its
// revision now (0 when it does not exist). It matches ErrExists for a
// create and ErrConflict otherwise.
type ConditionError struct {
	Key      string
	Revision uint64
	Create   bool
	Want     uint64 // the IfRevision asked for (not for a create)
}

func (e *ConditionError) Error() string {
	if e.Create {
		return fmt.Sprintf("key %q exists at revision %d", e.Key, e.Revision)
	}
	return fmt.Sprintf("key %q is at revision %d, not %d", e.Key, e.Revision, e.Want)
}

// Is makes errors.Is match ErrExists (a create) or ErrConflict.
func (e *ConditionError) Is(target error) bool {
	return target == ErrExists && e.Create || target == ErrConflict && !e.Create
}

// GapError describes missed updates: sequence numbers From to To inclusive,
// in Epoch. It matches ErrGap with errors.Is.
type GapError struct {
	Epoch    uint64
	From, To uint64
}

func (e *GapError) Error() string {
	return fmt.Sprintf("replication gap in epoch %d: missed seq %d..%d (%d updates)", e.Epoch, e.From, e.To, e.To-e.From+1)
}

// Is makes errors.Is(err, ErrGap) true.
func (e *GapError) Is(target error) bool { return target == ErrGap }

// Entry is one key's value and the revision that wrote it.
type Entry struct {
	Value    string
	Revision uint64
	// Expires is the key's expiry deadline, in Unix nanoseconds of the
	// leader's clock (0: none).
	Expires int64
}

// Update is one replicated write: the leader's epoch, the sequence number
// (the revision the write created on the leader), the key and the value,
// and the client's request ID if it gave one. A Delete update is a
// tombstone: it removes the key at revision Seq (Value is empty); with
// Prefix it removes every key that begins with Key, with Purge it also
// drops the key's history. A Compact update (no key) drops the history
// below revision Compact.
type Update struct {
	Epoch     uint64
	Seq       uint64
	Key       string
	Value     string
	RequestID string
	Delete    bool
	Prefix    bool
	Purge     bool
	// Expired marks a delete the leader made because the key's deadline
	// passed.
	Expired bool
	// Expires is the deadline a put sets (Unix nanoseconds, 0: none).
	Expires int64
	// Time is the leader's wall clock when it wrote the update (Unix
	// nanoseconds), for compaction by age.
	Time    int64
	Compact uint64
	// Leader is the server that wrote the update, for replays (not part
	// of what a replica must hold).
	Leader string
	// Count is how many keys a delete by prefix removed on the store
	// that applied it (not replicated).
	Count int
}

// Write is a leader's write of one key: a put of Value, or a delete. It
// may carry a condition: Create (the key must not exist) or IfRevision
// (the key's revision must equal *IfRevision; 0 means it must not exist).
//
// A delete may instead name a Prefix (every key beginning with Key, at
// one revision) or Purge the key's history with it; Compact (no key)
// drops the history below that revision. Expires sets a put's deadline;
// Time and Leader stamp the update.
type Write struct {
	Key        string
	Value      string
	Delete     bool
	Create     bool
	IfRevision *uint64
	RequestID  string
	Prefix     bool
	Purge      bool
	Expired    bool
	Expires    int64
	Time       int64
	Compact    uint64
	Leader     string
}

// DefaultRequestWindow is how many recent request IDs a store remembers.
const DefaultRequestWindow = 16384

// Store is a concurrent in-memory key-value map. The zero value is not
// usable; call New.
type Store struct {
	mu sync.RWMutex
	// data holds every key's entry: Get is one hash table lookup. Each
	// key and its entry are boxed once; keys, the ordered index, holds the
	// same boxes, so a write to a held key updates its box in place (under
	// mu) and only a new key or a delete touches the indexes. A deleted
	// key is removed from both: no tombstone is kept.
	data  table
	keys  *btree.BTreeG[*box]
	rev   uint64 // the last sequence number applied (or skipped past)
	epoch uint64 // the highest epoch known: the fence
	// stream is the epoch whose stream rev counts in: the last epoch whose
	// marker or put this store followed.
	stream uint64
	gaps   uint64 // updates known to be missed
	noted  uint64 // revisions up to here were counted as missed by NoteBehind
	ahead  uint64 // times a new epoch started below rev
	// revEpoch is the epoch of the update at rev (0: unknown, or a
	// marker's); hole, while holed, is the position before the first gap
	// since the copy last caught up: it holds every update up to there.
	revEpoch uint64
	hole     Position
	holed    bool

	// applied is the revision of the last update this store applied (or
	// caught up to), never one it only skipped past: see Applied.
	applied uint64

	// requests remembers the Update of each recent request ID, oldest
	// evicted first once window IDs are held, so a retried write is applied
	// once. Replicas record the IDs they apply, so a new leader knows them.
	requests map[string]Update
	order    []string // ring of request IDs, oldest at next
	next     int
	window   int

	// recent holds a digest of each of the last window updates applied,
	// by (epoch, seq), so a replica confirms only what it holds and
	// notices two different updates claiming one place in the stream.
	recent     map[position]uint64
	recentRing []position
	recentNext int
	seed       maphash.Seed
	diverged   uint64

	// history is how many versions of a key are kept; hist holds the
	// past versions of the keys that have any (a deleted key's ends in
	// its tombstone). revFloor is the lowest revision a read at a
	// revision may ask for.
	history  int
	hist     map[string]*chain
	revFloor uint64
	// changes is a ring of the last updates applied, at most changesMax
	// (it grows to changesMax first); a replay may start after
	// changesFloor.
	changes      window
	changesSize  int
	changesMax   int
	changesBytes int
	changesFloor uint64
	// ttl orders the keys that have a deadline, and expires holds each
	// one's deadline by box.
	ttl     *btree.BTreeG[ttlItem]
	expires map[*box]int64
}

// position is one place in the replication stream.
type position struct{ epoch, seq uint64 }

// New returns an empty store at revision 0, epoch 0, with the default
// Config.
func New() *Store { return NewWithConfig(Config{}) }

// NewWithWindow is New remembering the last window request IDs (at least 1).
func NewWithWindow(window int) *Store { return NewWithConfig(Config{RequestWindow: window}) }

// NewWithConfig returns an empty store sized by cfg (zero fields take
// their defaults; out-of-range ones are clamped, Config.Validate says
// which).
func NewWithConfig(cfg Config) *Store {
	window := cfg.RequestWindow
	if window == 0 {
		window = DefaultRequestWindow
	}
	window = max(window, 1)
	history := cfg.History
	if history == 0 {
		history = DefaultHistory
	}
	history = min(max(history, 1), MaxHistory)
	changes := cfg.Changes
	if changes == 0 {
		changes = DefaultChanges
	}
	changesBytes := cfg.ChangesBytes
	if changesBytes == 0 {
		changesBytes = DefaultChangesBytes
	}
	return &Store{data: newTable(), keys: newKeyIndex(), requests: make(map[string]Update), order: make([]string, window), window: window,
		recent: make(map[position]uint64, window), recentRing: make([]position, window), seed: maphash.MakeSeed(),
		history: history, hist: make(map[string]*chain), changesMax: max(changes, 1), changesBytes: changesBytes, ttl: newTTLIndex(), expires: make(map[*box]int64)}
}

// digest hashes what an update writes, for recent.
func (s *Store) digest(u Update) uint64 {
	var h maphash.Hash
	h.SetSeed(s.seed)
	kind := "p"
	switch {
	case u.Compact > 0:
		kind = "c" + strconv.FormatUint(u.Compact, 10)
	case u.Delete:
		kind = "d" + flag(u.Prefix, "p") + flag(u.Purge, "u") + flag(u.Expired, "x")
	case u.Expires != 0:
		kind = "p" + strconv.FormatInt(u.Expires, 10)
	}
	for _, part := range []string{kind, u.Key, u.Value, u.RequestID} {
		var n [8]byte
		l := uint64(len(part))
		for i := range n {
			n[i] = byte(l >> (8 * i))
		}
		h.Write(n[:])
		h.WriteString(part)
	}
	return h.Sum64()
}

func flag(b bool, s string) string {
	if b {
		return s
	}
	return ""
}

// noteLocked records that u was applied at its position.
func (s *Store) noteLocked(u Update) {
	p := position{u.Epoch, u.Seq}
	if old := s.recentRing[s.recentNext]; old != (position{}) {
		delete(s.recent, old)
	}
	s.recentRing[s.recentNext] = p
	s.recentNext = (s.recentNext + 1) % len(s.recentRing)
	s.recent[p] = s.digest(u)
}

// Holds reports whether this store applied exactly u (same kind, key,
// value and request ID) at u's epoch and seq, among its recent updates. A replica
// confirms a write only if it holds it.
func (s *Store) Holds(u Update) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	d, ok := s.recent[position{u.Epoch, u.Seq}]
	return ok && d == s.digest(u)
}

// Diverged counts updates that claimed a place in the stream this store
// had already applied with other content.
func (s *Store) Diverged() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.diverged
}

// addSat adds without wrapping.
func addSat(a, b uint64) uint64 {
	if a > math.MaxUint64-b {
		return math.MaxUint64
	}
	return a + b
}

// rememberLocked records u under its request ID, evicting the oldest.
func (s *Store) rememberLocked(u Update) {
	if u.RequestID == "" {
		return
	}
	if _, ok := s.requests[u.RequestID]; ok {
		return
	}
	if old := s.order[s.next]; old != "" {
		delete(s.requests, old)
	}
	s.order[s.next] = u.RequestID
	s.next = (s.next + 1) % s.window
	s.requests[u.RequestID] = u
}

// Request returns the Update that request ID id produced, if the store
// still remembers it.
func (s *Store) Request(id string) (Update, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	u, ok := s.requests[id]
	return u, ok
}

// Get returns the local value of key, even if stale. It never blocks on
// writers for longer than a map access.
func (s *Store) Get(key string) (Entry, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if p := s.data.get(key); p != nil {
		return s.entryLocked(p), true
	}
	return Entry{}, false
}

// Put is the leader's write: under epoch, it stores value at the next
// revision and returns the Update to replicate. It fails with ErrOldEpoch if
// the store knows a higher epoch, so a deposed leader cannot write.
func (s *Store) Put(epoch uint64, key, value string) (Update, error) {
	u, _, err := s.PutOnce(epoch, key, value, "")
	return u, err
}

// PutOnce is Put with a client's request ID: if the store remembers id, it
// applies nothing and returns the Update that id produced, with dup true.
// An empty id is never a duplicate.
func (s *Store) PutOnce(epoch uint64, key, value, id string) (u Update, dup bool, err error) {
	u, dup, _, err = s.Write(epoch, Write{Key: key, Value: value, RequestID: id})
	return u, dup, err
}

// Write is the leader's write under epoch, checked and applied atomically:
// if the store remembers w's request ID it applies nothing and returns the
// Update that ID produced (dup true), whatever the condition says now, so
// a retry gets the first outcome. Otherwise a failed condition returns a
// *ConditionError and applies nothing; a delete of a key that does not
// exist applies nothing either (applied false, u.Seq the store's revision,
// and the request ID is not remembered). Anything else is applied at the
// next revision and returned as the Update to replicate. Like Put it fails
// with ErrOldEpoch under an old epoch.
func (s *Store) Write(epoch uint64, w Write) (u Update, dup, applied bool, err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch < s.epoch {
		return Update{}, false, false, fmt.Errorf("%w: write under epoch %d, epoch %d is known", ErrOldEpoch, epoch, s.epoch)
	}
	if prev, ok := s.requests[w.RequestID]; ok && w.RequestID != "" {
		return prev, true, true, nil
	}
	var cur uint64
	p := s.data.get(w.Key)
	exists := p != nil
	if exists {
		cur = p.revision
	}
	noop := Update{Epoch: epoch, Seq: s.rev, Key: w.Key, Delete: w.Delete, Prefix: w.Prefix, Purge: w.Purge, Compact: w.Compact}
	switch {
	case w.Compact > s.rev:
		return Update{}, false, false, &RevisionError{Kind: ErrFutureRevision, Revision: w.Compact, Current: s.rev}
	case w.Compact > 0 && w.Compact <= s.revFloor:
		return noop, false, false, nil
	case w.Prefix:
		if !s.anyWithPrefixLocked(w.Key) {
			return noop, false, false, nil
		}
	case w.Create && exists:
		return Update{}, false, false, &ConditionError{Key: w.Key, Revision: cur, Create: true}
	case w.IfRevision != nil && *w.IfRevision != cur:
		return Update{}, false, false, &ConditionError{Key: w.Key, Revision: cur, Want: *w.IfRevision}
	case w.Purge && !exists && !s.hasPast(w.Key), w.Delete && !w.Purge && !exists:
		return noop, false, false, nil
	}
	s.epoch, s.stream = epoch, epoch
	s.rev++
	u = Update{Epoch: epoch, Seq: s.rev, Key: w.Key, Value: w.Value, RequestID: w.RequestID, Delete: w.Delete,
		Prefix: w.Prefix, Purge: w.Purge, Expired: w.Expired, Expires: w.Expires, Time: w.Time, Compact: w.Compact, Leader: w.Leader}
	if w.Delete {
		u.Value, u.Expires = "", 0
	}
	s.writeLocked(&u)
	s.rememberLocked(u)
	s.noteLocked(u)
	return u, false, true, nil
}

// writeLocked applies u at its revision: stores its value, removes its
// key or keys, or compacts; and keeps it for replays.
func (s *Store) writeLocked(u *Update) {
	s.applied = u.Seq
	var removed []string
	switch {
	case u.Compact > 0:
		s.compactLocked(u.Compact)
	case u.Delete && u.Prefix:
		keys := s.prefixKeysLocked(u.Key)
		for _, k := range keys {
			s.removeKeyLocked(k, *u)
		}
		u.Count = len(keys)
		if s.history > 1 {
			removed = keys
		}
	case u.Delete:
		s.removeKeyLocked(u.Key, *u)
	default:
		s.putLocked(u)
	}
	s.revEpoch = u.Epoch
	s.logLocked(newLogEntry(*u, removed))
}

// Apply is a replica's write: it applies the leader's update as it is.
// An update from an older epoch returns ErrOldEpoch and is dropped; a seq
// already applied in this epoch returns ErrDuplicate and is dropped; a seq
// past the next one is applied and returns a *GapError. The first update of
// an epoch whose start this store has not seen (its marker was missed)
// positions the store as BeginEpoch(u.Epoch, u.Seq-1) would, and reports
// what that reveals.
func (s *Store) Apply(u Update) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if u.Seq == 0 || u.Compact > u.Seq {
		return fmt.Errorf("%w: epoch %d seq %d key %q compact %d", ErrBadUpdate, u.Epoch, u.Seq, u.Key, u.Compact)
	}
	if u.Epoch < s.epoch {
		return fmt.Errorf("%w: update epoch %d seq %d, epoch %d is known", ErrOldEpoch, u.Epoch, u.Seq, s.epoch)
	}
	var err error
	switch {
	case u.Epoch > s.stream:
		err = s.repositionLocked(u.Epoch, u.Seq-1)
	case u.Seq <= s.rev:
		if d, ok := s.recent[position{u.Epoch, u.Seq}]; ok && d != s.digest(u) {
			s.diverged++
			s.holeLocked()
			s.hole.Diverged = true
			s.ahead++
			// Its past is not the leader's: replays and reads at a
			// revision start again at its revision.
			s.resetHistoryLocked(s.rev)
			return fmt.Errorf("%w: two different updates claim epoch %d seq %d (key %q)", ErrDiverged, u.Epoch, u.Seq, u.Key)
		}
		return fmt.Errorf("%w: epoch %d seq %d, applied up to %d", ErrDuplicate, u.Epoch, u.Seq, s.rev)
	case u.Seq > s.rev+1:
		err = s.gapLocked(u.Epoch, u.Seq-1)
	}
	s.epoch, s.stream = u.Epoch, u.Epoch
	s.rev = u.Seq
	s.writeLocked(&u)
	s.rememberLocked(u)
	s.noteLocked(u)
	return err
}

// BeginEpoch handles a new leader's epoch marker: the leader of epoch took
// over at revision seq, so its next put is seq+1. It returns ErrOldEpoch
// (and changes nothing) for an epoch below the highest known. For an epoch
// whose start this store has not seen it repositions at seq, returning a
// *GapError when seq is past this store's revision (updates were missed) or
// ErrDiverged when it is below (this store holds writes the new leader
// lacks). A repeated marker of the current stream only reports a gap if it
// is ahead; one behind is ignored.
func (s *Store) BeginEpoch(epoch, seq uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch < s.epoch {
		return fmt.Errorf("%w: epoch marker %d, epoch %d is known", ErrOldEpoch, epoch, s.epoch)
	}
	if epoch == s.stream {
		if seq <= s.rev {
			return nil
		}
		err := s.gapLocked(epoch, seq)
		s.rev = seq
		return err
	}
	return s.repositionLocked(epoch, seq)
}

func (s *Store) repositionLocked(epoch, seq uint64) error {
	var err error
	switch {
	case seq > s.rev:
		err = s.gapLocked(epoch, seq)
	case seq < s.rev:
		s.holeLocked()
		s.hole.Diverged = true
		s.ahead++
		s.resetHistoryLocked(seq)
		err = fmt.Errorf("%w: epoch %d starts at seq %d, this store is at %d", ErrDiverged, epoch, seq, s.rev)
	}
	s.epoch, s.stream = epoch, epoch
	s.rev = seq
	return err
}

// gapLocked records that seq s.rev+1..to were missed.
func (s *Store) gapLocked(epoch, to uint64) error {
	g := &GapError{Epoch: epoch, From: s.rev + 1, To: to}
	s.holeLocked()
	s.resetHistoryLocked(to)
	// Revisions up to s.noted were counted already by NoteBehind.
	if from := max(s.rev, s.noted); to > from {
		s.gaps = addSat(s.gaps, to-from)
	}
	return g
}

// NoteBehind records that the leader is at revision rev: if this store is
// behind it, the missing revisions count as missed (Missed grows) without
// moving the store's position, so updates still in flight are applied as
// usual when they arrive.
func (s *Store) NoteBehind(rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if from := max(s.rev, s.noted); rev > from {
		s.gaps = addSat(s.gaps, rev-from)
		s.noted = rev
	}
}

// Observe raises the highest known epoch to epoch (learned from ZooKeeper,
// say), so updates and puts of older epochs are refused from now on. It
// reports whether epoch was new. It never lowers the epoch, and does not
// move the stream: the first marker or put of the new epoch does.
func (s *Store) Observe(epoch uint64) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch <= s.epoch {
		return false
	}
	s.epoch = epoch
	return true
}

// Revision is the last sequence number applied (or skipped past by a gap).
func (s *Store) Revision() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.rev
}

// Applied is the revision of the last update this store applied, or the
// revision a catch-up (CaughtUp) or a loaded snapshot (Restore) brought
// it to: unlike Revision, never a
// revision it only skipped past (a gap, or a new leader's epoch marker
// ahead of it). 0 until it applies one.
func (s *Store) Applied() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.applied
}

// Epoch is the highest epoch the store knows.
func (s *Store) Epoch() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.epoch
}

// Len is the number of keys.
func (s *Store) Len() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.data.len()
}

// Bytes is the size of the keys and values this store holds now (not
// counting their history or the index).
func (s *Store) Bytes() int {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.data.bytes
}

// Missed is the number of updates this store knows it missed, plus the
// number of times it found itself ahead of a new leader. Zero means the
// copy has seen every update since it started following.
func (s *Store) Missed() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return addSat(s.gaps, s.ahead)
}

// CaughtUp ends a catch-up: the store now follows epoch from revision rev,
// and no longer counts the updates it missed before.
func (s *Store) CaughtUp(epoch, rev uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch > s.epoch {
		s.epoch = epoch
	}
	s.stream = epoch
	s.rev = rev
	s.applied = rev
	s.gaps, s.ahead, s.noted = 0, 0, 0
	s.revEpoch, s.holed = 0, false
	s.resetHistoryLocked(rev)
}

// Requests returns, in ID order, the remembered request IDs after after
// and the updates they produced, up to limit of them or about maxBytes of
// keys and values (at least one). more says whether IDs remain. The IDs
// are copied under the lock and sorted outside it.
func (s *Store) Requests(after string, limit, maxBytes int) (out []Update, more bool) {
	s.mu.RLock()
	ids := make([]string, 0, len(s.requests))
	for id := range s.requests {
		if id > after {
			ids = append(ids, id)
		}
	}
	s.mu.RUnlock()
	sort.Strings(ids)
	size := 0
	for i, id := range ids {
		u, ok := s.Request(id)
		if !ok {
			continue // evicted meanwhile
		}
		if i > 0 && (len(out) >= limit || size+len(u.Key)+len(u.Value) > maxBytes) {
			return out, true
		}
		size += len(u.Key) + len(u.Value)
		out = append(out, u)
	}
	return out, false
}

// RememberRequests adds request IDs learned from the leader (a catch-up)
// to the window, so a retry of one is applied once here too.
func (s *Store) RememberRequests(us []Update) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, u := range us {
		s.rememberLocked(u)
	}
}
