package store

import (
	"errors"
	"fmt"
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
)

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
}

// Update is one replicated write: the leader's epoch, the sequence number
// (the revision the write created on the leader), the key and the value,
// and the client's request ID if it gave one.
type Update struct {
	Epoch     uint64
	Seq       uint64
	Key       string
	Value     string
	RequestID string
}

// DefaultRequestWindow is how many recent request IDs a store remembers.
const DefaultRequestWindow = 16384

// Store is a concurrent in-memory key-value map. The zero value is not
// usable; call New.
type Store struct {
	mu sync.RWMutex
	// data holds every key's entry: Get is one map access. The entry is
	// boxed so keys, the ordered index of the same boxes, reads it without
	// a map lookup; a write to a held key updates its box in place (under
	// mu), so only a new key touches the index. Keys are never removed.
	data  map[string]*Entry
	keys  *btree.BTreeG[indexItem]
	rev   uint64 // the last sequence number applied (or skipped past)
	epoch uint64 // the highest epoch known: the fence
	// stream is the epoch whose stream rev counts in: the last epoch whose
	// marker or put this store followed.
	stream uint64
	gaps   uint64 // updates known to be missed
	noted  uint64 // revisions up to here were counted as missed by NoteBehind
	ahead  uint64 // times a new epoch started below rev

	// requests remembers the Update of each recent request ID, oldest
	// evicted first once window IDs are held, so a retried write is applied
	// once. Replicas record the IDs they apply, so a new leader knows them.
	requests map[string]Update
	order    []string // ring of request IDs, oldest at next
	next     int
	window   int
}

// New returns an empty store at revision 0, epoch 0, remembering
// DefaultRequestWindow request IDs.
func New() *Store { return NewWithWindow(DefaultRequestWindow) }

// NewWithWindow is New remembering the last window request IDs (at least 1).
func NewWithWindow(window int) *Store {
	window = max(window, 1)
	return &Store{data: make(map[string]*Entry), keys: newKeyIndex(), requests: make(map[string]Update), order: make([]string, window), window: window}
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
	if p, ok := s.data[key]; ok {
		return *p, true
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
	s.mu.Lock()
	defer s.mu.Unlock()
	if epoch < s.epoch {
		return Update{}, false, fmt.Errorf("%w: put under epoch %d, epoch %d is known", ErrOldEpoch, epoch, s.epoch)
	}
	if prev, ok := s.requests[id]; ok && id != "" {
		return prev, true, nil
	}
	s.epoch, s.stream = epoch, epoch
	s.rev++
	s.setLocked(key, Entry{Value: value, Revision: s.rev})
	u = Update{Epoch: epoch, Seq: s.rev, Key: key, Value: value, RequestID: id}
	s.rememberLocked(u)
	return u, false, nil
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
	if u.Seq == 0 {
		return fmt.Errorf("%w: epoch %d key %q has seq 0", ErrBadUpdate, u.Epoch, u.Key)
	}
	if u.Epoch < s.epoch {
		return fmt.Errorf("%w: update epoch %d seq %d, epoch %d is known", ErrOldEpoch, u.Epoch, u.Seq, s.epoch)
	}
	var err error
	switch {
	case u.Epoch > s.stream:
		err = s.repositionLocked(u.Epoch, u.Seq-1)
	case u.Seq <= s.rev:
		return fmt.Errorf("%w: epoch %d seq %d, applied up to %d", ErrDuplicate, u.Epoch, u.Seq, s.rev)
	case u.Seq > s.rev+1:
		err = s.gapLocked(u.Epoch, u.Seq-1)
	}
	s.epoch, s.stream = u.Epoch, u.Epoch
	s.rev = u.Seq
	s.setLocked(u.Key, Entry{Value: u.Value, Revision: u.Seq})
	s.rememberLocked(u)
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
		s.ahead++
		err = fmt.Errorf("%w: epoch %d starts at seq %d, this store is at %d", ErrDiverged, epoch, seq, s.rev)
	}
	s.epoch, s.stream = epoch, epoch
	s.rev = seq
	return err
}

// gapLocked records that seq s.rev+1..to were missed.
func (s *Store) gapLocked(epoch, to uint64) error {
	g := &GapError{Epoch: epoch, From: s.rev + 1, To: to}
	// Revisions up to s.noted were counted already by NoteBehind.
	if from := max(s.rev, s.noted); to > from {
		s.gaps += to - from
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
		s.gaps += rev - from
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
	return len(s.data)
}

// Missed is the number of updates this store knows it missed, plus the
// number of times it found itself ahead of a new leader. Zero means the
// copy has seen every update since it started following.
func (s *Store) Missed() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.gaps + s.ahead
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
	s.gaps, s.ahead, s.noted = 0, 0, 0
}
