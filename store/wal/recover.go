package wal

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// recover loads the segments in l.dir and repairs a torn tail; see the
// package documentation for the rules.
func (l *Log) recover() error {
	if err := l.removeTemps(); err != nil {
		return err
	}
	segs, err := l.openSegments()
	l.segs = segs
	if err != nil {
		return err
	}
	for i, s := range segs {
		d, err := s.scan()
		if err != nil {
			return err
		}
		if d == nil {
			continue
		}
		if i < len(segs)-1 && s.first+s.count() >= segs[i+1].first {
			// The damage lies in records a newer segment holds too: this
			// is a leftover of an unfinished TruncateFront, which
			// checkChain deletes.
			s.leftover = true
			continue
		}
		if i != len(segs)-1 || d.followed {
			return fmt.Errorf("%w: record %d in %s at offset %d: %w", ErrCorrupt, s.first+s.count(), s.name(), d.offset, d.err)
		}
		if err := l.cutTail(s, d); err != nil {
			return err
		}
	}
	if err := l.checkChain(); err != nil {
		return err
	}
	if err := l.dropEmptyOnly(); err != nil {
		return err
	}
	if l.recovery.Truncated {
		l.recovery.LastIndex = l.last
	}
	return nil
}

// removeTemps deletes files left by a TruncateFront that did not finish.
func (l *Log) removeTemps() error {
	temps, err := filepath.Glob(filepath.Join(l.dir, "*"+segmentExt+".tmp"))
	if err != nil {
		return fmt.Errorf("wal: list %s: %w", l.dir, err)
	}
	for _, t := range temps {
		if err := os.Remove(t); err != nil {
			return fmt.Errorf("wal: remove %s: %w", filepath.Base(t), err)
		}
	}
	return nil
}

// openSegments opens the segment files in index order.
func (l *Log) openSegments() ([]*segment, error) {
	entries, err := os.ReadDir(l.dir)
	if err != nil {
		return nil, fmt.Errorf("wal: list %s: %w", l.dir, err)
	}
	var segs []*segment
	for _, e := range entries {
		first, ok := parseSegmentName(e.Name())
		if !ok || !e.Type().IsRegular() {
			if strings.HasSuffix(e.Name(), segmentExt) {
				return segs, fmt.Errorf("%w: unexpected file %s", ErrCorrupt, e.Name())
			}
			continue
		}
		path := filepath.Join(l.dir, e.Name())
		f, err := os.OpenFile(path, os.O_RDWR, 0)
		if err != nil {
			return segs, fmt.Errorf("wal: open %s: %w", e.Name(), err)
		}
		segs = append(segs, &segment{first: first, path: path, f: f})
	}
	sort.Slice(segs, func(i, j int) bool { return segs[i].first < segs[j].first })
	return segs, nil
}

// cutTail truncates the last segment at the damaged record and reports it.
func (l *Log) cutTail(s *segment, d *damage) error {
	dropped := s.size - d.offset
	if err := s.f.Truncate(d.offset); err != nil {
		return fmt.Errorf("wal: truncate %s: %w", s.name(), err)
	}
	if l.opts.Sync != SyncNever {
		if err := l.fsync(s.f); err != nil {
			return fmt.Errorf("wal: fsync %s: %w", s.name(), err)
		}
	}
	s.size = d.offset
	l.recovery.Truncated = true
	l.recovery.Segment = s.name()
	l.recovery.Offset = d.offset
	l.recovery.DroppedBytes = dropped
	l.log.Warn("wal torn tail truncated", slog.String("segment", s.name()),
		slog.Int64("offset", d.offset), slog.Int64("dropped_bytes", dropped),
		slog.Uint64("bad_index", s.first+s.count()), slog.String("reason", d.err.Error()))
	return nil
}

// checkChain verifies that each segment starts right after the one before
// it. Segments below a newer one that overlaps them are the leftovers of an
// unfinished TruncateFront and are deleted. It sets first, last and next.
func (l *Log) checkChain() error {
	for i := len(l.segs) - 2; i >= 0; i-- {
		cur, nxt := l.segs[i], l.segs[i+1]
		switch {
		case cur.lastIndex()+1 == nxt.first && cur.count() > 0 && !cur.leftover:
			continue
		case cur.lastIndex() >= nxt.first || cur.leftover:
			if err := l.removeLeftovers(i + 1); err != nil {
				return err
			}
			i = 0
		default:
			return fmt.Errorf("%w: %s ends at %d but %s starts at %d", ErrCorrupt, cur.name(), cur.lastIndex(), nxt.name(), nxt.first)
		}
	}
	l.setBoundsLocked()
	return nil
}

// removeLeftovers deletes the first n segments.
func (l *Log) removeLeftovers(n int) error {
	for _, s := range l.segs[:n] {
		s.f.Close()
		if err := os.Remove(s.path); err != nil {
			return fmt.Errorf("wal: remove %s: %w", s.name(), err)
		}
		l.recovery.Removed = append(l.recovery.Removed, s.name())
		l.log.Warn("wal leftover segment removed", slog.String("segment", s.name()))
	}
	l.segs = l.segs[n:]
	return l.syncDir()
}

// dropEmptyOnly deletes the only segment when it holds no record, so an
// empty log accepts any first index.
func (l *Log) dropEmptyOnly() error {
	if len(l.segs) != 1 || l.segs[0].count() != 0 {
		return nil
	}
	s := l.segs[0]
	s.f.Close()
	l.segs = nil
	if err := os.Remove(s.path); err != nil {
		return fmt.Errorf("wal: remove %s: %w", s.name(), err)
	}
	l.setBoundsLocked()
	return l.syncDir()
}

// setBoundsLocked derives first, last and next from the segments.
func (l *Log) setBoundsLocked() {
	l.first, l.last, l.next = 0, 0, 0
	if len(l.segs) == 0 {
		return
	}
	tail := l.segs[len(l.segs)-1]
	l.next = tail.lastIndex() + 1
	for _, s := range l.segs {
		if s.count() > 0 {
			l.first = s.first
			l.last = tail.lastIndex()
			return
		}
	}
}
