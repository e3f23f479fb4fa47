package store

// Position is where a copy stands in the replication stream: what a data
// directory records with a snapshot, and what a restarted copy asks the
// leader to continue from.
type Position struct {
	// Epoch is the highest epoch known (the fence).
	Epoch uint64
	// Stream is the epoch whose stream Revision counts in.
	Stream uint64
	// Revision is the last revision applied (or skipped past by a gap).
	Revision uint64
	// RevEpoch is the epoch of the update at Revision, 0 if unknown (a
	// marker's position, or after a catch-up).
	RevEpoch uint64
	// Diverged, in a Held position, means the copy holds an update the
	// leader's stream replaced: no continuation from it is exact.
	Diverged bool
}

// Position returns the store's position now.
func (s *Store) Position() Position {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return Position{Epoch: s.epoch, Stream: s.stream, Revision: s.rev, RevEpoch: s.revEpoch}
}

// Restore positions an empty store loaded from a snapshot (with Install)
// at p, as if it had followed the stream to there: no update counts as
// missed, and history and replays start at p.Revision. A copy that
// restores a snapshot and then applies every later update it logged holds
// what it held before it stopped.
func (s *Store) Restore(p Position) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.epoch, s.stream, s.rev, s.revEpoch = p.Epoch, p.Stream, p.Revision, p.RevEpoch
	s.applied = p.Revision
	s.gaps, s.ahead, s.noted, s.holed = 0, 0, 0, false
	s.resetHistoryLocked(p.Revision)
}

// Held is the position up to which this copy holds every update without a
// hole: its position, or, once a gap or a divergence was found since it
// last caught up, the position just before the first one. A restarted copy
// continues from here: the leader's updates after Held().Revision are
// what it lacks.
func (s *Store) Held() Position {
	s.mu.RLock()
	defer s.mu.RUnlock()
	if s.holed {
		return s.hole
	}
	return Position{Epoch: s.epoch, Stream: s.stream, Revision: s.rev, RevEpoch: s.revEpoch}
}

// holeLocked remembers the position before the first gap or divergence
// since the last catch-up.
func (s *Store) holeLocked() {
	if !s.holed {
		s.hole = Position{Epoch: s.epoch, Stream: s.stream, Revision: s.rev, RevEpoch: s.revEpoch}
		s.holed = true
	}
}

// MarkHole records, at the store's position, that the copy may lack
// updates from here (a gap; diverged: it may also hold updates the
// leader's stream replaced), as a replay of a data directory's log does
// where the live copy found one: it counts as missed until CaughtUp.
func (s *Store) MarkHole(diverged bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.holeLocked()
	if diverged {
		s.hole.Diverged = true
		s.ahead++
	} else {
		s.gaps = addSat(s.gaps, 1)
	}
}

// RecentRequests returns every request ID the store remembers, with the
// update each produced, for a snapshot to keep.
func (s *Store) RecentRequests() []Update {
	out, _ := s.Requests("", s.window, int(^uint(0)>>1))
	return out
}
