package wal

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
)

// TruncateFront drops every record below index, typically after a
// snapshot at index-1. Segments entirely below index are deleted; the
// segment holding index is rewritten to start at it (a new file, renamed
// into place, before the old ones are deleted). An index above LastIndex
// empties the log, and the next append may use any index. Queued appends
// are written first.
func (l *Log) TruncateFront(index uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.prepareTruncate(); err != nil {
		return err
	}
	l.mu.RLock()
	first, last := l.first, l.last
	l.mu.RUnlock()
	switch {
	case last == 0 || index <= first:
		return nil
	case index > last:
		return l.removeAll()
	}
	l.mu.Lock()
	keep := l.segmentLocked(index)
	l.first = index // hide the records before they go
	l.mu.Unlock()
	if keep.first < index {
		var err error
		if keep, err = l.rewriteFrom(keep, index); err != nil {
			return err
		}
	}
	return l.dropBelow(keep)
}

// TruncateBack drops every record above index, for a replica whose tail
// diverged from the leader's. Segments entirely above index are deleted and
// the one holding index is cut after it. An index below FirstIndex empties
// the log. Queued appends are written first; the next append must use
// index+1 (any index when the log is now empty).
func (l *Log) TruncateBack(index uint64) error {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	if err := l.prepareTruncate(); err != nil {
		return err
	}
	l.mu.RLock()
	first, last := l.first, l.last
	l.mu.RUnlock()
	switch {
	case last == 0 || index >= last:
		return nil
	case index < first:
		return l.removeAll()
	}
	l.mu.Lock()
	l.last, l.next = index, index+1 // hide the records before they go
	l.mu.Unlock()
	for {
		s := l.active()
		if s.first <= index {
			return l.cutAfter(s, index)
		}
		if err := l.removeSegment(s); err != nil {
			return err
		}
	}
}

// prepareTruncate writes queued appends and refuses a closed or failed log.
// wmu must be held.
func (l *Log) prepareTruncate() error {
	l.flushLocked()
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return ErrClosed
	}
	if l.failed != nil {
		return fmt.Errorf("%w: %w", ErrFailed, l.failed)
	}
	return nil
}

// rewriteFrom copies the records of s from index on into a new segment
// named for index and returns it. The copy is written to a temporary file,
// fsynced and renamed, so a crash leaves either the old segment alone or
// both (and Open then deletes the old one).
func (l *Log) rewriteFrom(s *segment, index uint64) (*segment, error) {
	path := filepath.Join(l.dir, segmentName(index))
	tmp := path + ".tmp"
	ns, err := l.createSegment(index, tmp)
	if err != nil {
		return nil, err
	}
	l.mu.RLock()
	off := s.offset(index)
	size := s.size
	for i := index; i <= s.lastIndex(); i++ {
		ns.offsets = append(ns.offsets, s.offset(i)-off)
	}
	l.mu.RUnlock()
	if err := l.copyTail(ns, s, off, size); err != nil {
		ns.f.Close()
		os.Remove(tmp)
		return nil, err
	}
	if err := os.Rename(tmp, path); err != nil {
		ns.f.Close()
		os.Remove(tmp)
		return nil, fmt.Errorf("wal: rename %s: %w", filepath.Base(tmp), err)
	}
	ns.path = path
	if err := l.syncDir(); err != nil {
		return nil, err
	}
	l.mu.Lock()
	for i, cur := range l.segs {
		if cur == s {
			l.segs = append(l.segs[:i+1:i+1], append([]*segment{ns}, l.segs[i+1:]...)...)
			break
		}
	}
	l.mu.Unlock()
	return ns, nil
}

// copyTail copies bytes [off, size) of s into ns and fsyncs ns (except with
// SyncNever).
func (l *Log) copyTail(ns, s *segment, off, size int64) error {
	n, err := io.Copy(ns.f, io.NewSectionReader(s.f, off, size-off))
	if err != nil {
		return fmt.Errorf("wal: copy %s: %w", s.name(), err)
	}
	ns.size = n
	if l.opts.Sync != SyncNever {
		if err := l.fsync(ns.f); err != nil {
			return fmt.Errorf("wal: fsync %s: %w", ns.name(), err)
		}
	}
	return nil
}

// dropBelow deletes every segment before keep and sets the bounds.
func (l *Log) dropBelow(keep *segment) error {
	for {
		l.mu.RLock()
		s := l.segs[0]
		l.mu.RUnlock()
		if s == keep {
			break
		}
		if err := l.removeSegment(s); err != nil {
			return err
		}
	}
	l.log.Info("wal truncated front", slog.Uint64("first_index", keep.first))
	return l.syncDir()
}

// cutAfter truncates s, the last segment, after the record at index.
func (l *Log) cutAfter(s *segment, index uint64) error {
	l.mu.RLock()
	off := s.offset(index + 1)
	l.mu.RUnlock()
	if err := s.f.Truncate(off); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", s.name(), err)
	}
	if l.opts.Sync != SyncNever {
		if err := l.fsync(s.f); err != nil {
			return fmt.Errorf("wal: fsync %s: %w", s.name(), err)
		}
		if err := l.syncDir(); err != nil {
			return err
		}
	}
	l.mu.Lock()
	s.offsets = s.offsets[:index-s.first+1]
	s.size = off
	l.last, l.next = index, index+1
	l.mu.Unlock()
	l.dirty = false
	l.log.Info("wal truncated back", slog.Uint64("last_index", index))
	return nil
}

// removeAll deletes every segment, leaving an empty log.
func (l *Log) removeAll() error {
	l.mu.Lock()
	l.first, l.last, l.next = 0, 0, 0
	l.mu.Unlock()
	for {
		s := l.active()
		if s == nil {
			break
		}
		if err := l.removeSegment(s); err != nil {
			return err
		}
	}
	l.dirty = false
	l.log.Info("wal emptied")
	return l.syncDir()
}

// removeSegment closes and deletes s and takes it out of the list.
func (l *Log) removeSegment(s *segment) error {
	l.mu.Lock()
	for i, cur := range l.segs {
		if cur == s {
			l.segs = append(l.segs[:i:i], l.segs[i+1:]...)
			break
		}
	}
	l.mu.Unlock()
	s.f.Close()
	if err := os.Remove(s.path); err != nil {
		return fmt.Errorf("wal: remove %s: %w", s.name(), err)
	}
	return nil
}
