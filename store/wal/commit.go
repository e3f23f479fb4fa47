package wal

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// batch is records queued by Enqueue for one write (and one fsync).
type batch struct {
	first uint64
	buf   []byte // encoded records, back to back
	sizes []int  // encoded size of each record
	done  chan struct{}
	err   error
}

// finish records the batch's outcome and wakes its waiters.
func (b *batch) finish(err error) {
	b.err = err
	close(b.done)
}

// commitLoop is the committer: it writes whatever is queued, as one batch,
// whenever kicked, so appends that arrive during a write or fsync share the
// next one. On stop it writes what is left and returns.
func (l *Log) commitLoop() {
	defer l.wg.Done()
	for {
		select {
		case <-l.kick:
			l.flush()
		case <-l.stop:
			l.flush()
			return
		}
	}
}

// syncLoop fsyncs the active segment every SyncInterval when it was
// written since the last fsync.
func (l *Log) syncLoop() {
	defer l.wg.Done()
	t := time.NewTicker(l.opts.SyncInterval)
	defer t.Stop()
	for {
		select {
		case <-t.C:
			l.wmu.Lock()
			if l.dirty {
				if err := l.syncActive(); err != nil {
					l.fail(err)
				}
			}
			l.wmu.Unlock()
		case <-l.stop:
			return
		}
	}
}

// flush writes the queued batch, fsyncs it under SyncAlways, publishes its
// records and wakes its waiters.
func (l *Log) flush() {
	l.wmu.Lock()
	defer l.wmu.Unlock()
	l.flushLocked()
}

// flushLocked is flush with wmu held.
func (l *Log) flushLocked() {
	l.mu.Lock()
	b, failed := l.pend, l.failed
	l.pend = nil
	l.mu.Unlock()
	if b == nil {
		return
	}
	if failed != nil {
		b.finish(fmt.Errorf("%w: %w", ErrFailed, failed))
		return
	}
	err := l.write(b)
	if err == nil && l.opts.Sync == SyncAlways {
		err = l.syncActive()
	}
	if err != nil {
		l.fail(err)
		b.finish(fmt.Errorf("%w: %w", ErrFailed, err))
		return
	}
	l.mu.Lock()
	if l.first == 0 {
		l.first = b.first
	}
	l.last = b.first + uint64(len(b.sizes)) - 1
	l.mu.Unlock()
	b.finish(nil)
}

// fail marks the log failed after a write or fsync error.
func (l *Log) fail(err error) {
	l.mu.Lock()
	if l.failed == nil {
		l.failed = err
		l.log.Error("wal failed", slog.String("error", err.Error()))
	}
	l.mu.Unlock()
}

// write appends the batch's records to the active segment, rolling to a new
// segment when one would pass SegmentBytes. Each segment's share is one
// write call.
func (l *Log) write(b *batch) error {
	var pos, i int
	for i < len(b.sizes) {
		index := b.first + uint64(i)
		s := l.active()
		if s == nil || s.count() > 0 && s.size+int64(b.sizes[i]) > l.opts.SegmentBytes {
			var err error
			if s, err = l.roll(index); err != nil {
				return err
			}
		}
		// Take records while they fit (at least one).
		start, size := i, s.size
		for i < len(b.sizes) && (i == start || size+int64(b.sizes[i]) <= l.opts.SegmentBytes) {
			size += int64(b.sizes[i])
			i++
		}
		chunk := b.buf[pos : pos+int(size-s.size)]
		if _, err := s.f.WriteAt(chunk, s.size); err != nil {
			return fmt.Errorf("wal: write %s: %w", s.name(), err)
		}
		l.dirty = true
		l.mu.Lock()
		off := s.size
		for _, n := range b.sizes[start:i] {
			s.offsets = append(s.offsets, off)
			off += int64(n)
		}
		s.size = off
		l.mu.Unlock()
		pos += len(chunk)
	}
	return nil
}

// active returns the segment being appended to, nil when there is none.
func (l *Log) active() *segment {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if len(l.segs) == 0 {
		return nil
	}
	return l.segs[len(l.segs)-1]
}

// roll fsyncs the active segment (except with SyncNever) and starts a new
// one whose first record is first.
func (l *Log) roll(first uint64) (*segment, error) {
	if old := l.active(); old != nil && l.dirty && l.opts.Sync != SyncNever {
		if err := l.syncActive(); err != nil {
			return nil, err
		}
	}
	s, err := l.createSegment(first, filepath.Join(l.dir, segmentName(first)))
	if err != nil {
		return nil, err
	}
	if err := l.syncDir(); err != nil {
		s.f.Close()
		return nil, err
	}
	l.mu.Lock()
	l.segs = append(l.segs, s)
	l.mu.Unlock()
	l.dirty = false
	return s, nil
}

// createSegment creates an empty segment file at path.
func (l *Log) createSegment(first uint64, path string) (*segment, error) {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return nil, fmt.Errorf("wal: create segment: %w", err)
	}
	return &segment{first: first, path: path, f: f}, nil
}

// syncActive fsyncs the active segment.
func (l *Log) syncActive() error {
	s := l.active()
	if s == nil {
		return nil
	}
	if err := l.fsync(s.f); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", s.name(), err)
	}
	l.dirty = false
	return nil
}

// syncDir fsyncs the directory, so created, renamed and removed segment
// files survive a crash. SyncNever skips it.
func (l *Log) syncDir() error {
	if l.opts.Sync == SyncNever {
		return nil
	}
	d, err := os.Open(l.dir)
	if err != nil {
		return fmt.Errorf("wal: open %s: %w", l.dir, err)
	}
	defer d.Close()
	if err := l.fsync(d); err != nil {
		return fmt.Errorf("wal: fsync %s: %w", l.dir, err)
	}
	return nil
}

// fsync syncs f and counts and times it.
func (l *Log) fsync(f *os.File) error {
	start := time.Now()
	err := f.Sync()
	l.lastFsync.Store(int64(time.Since(start)))
	l.fsyncs.Add(1)
	return err
}
