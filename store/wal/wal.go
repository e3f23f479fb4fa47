package wal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Errors returned by Log. Callers branch on them with errors.Is.
var (
	// ErrCorrupt means a record failed its checks somewhere other than the
	// tail of the log, or the segments do not fit together. Nothing is
	// repaired; the log does not open.
	ErrCorrupt = errors.New("wal: corrupt")
	// ErrClosed means the log was closed.
	ErrClosed = errors.New("wal: closed")
	// ErrNotFound means the index is above the last durable record.
	ErrNotFound = errors.New("wal: index not found")
	// ErrCompacted means the index is below the first record: it was
	// dropped by TruncateFront.
	ErrCompacted = errors.New("wal: index compacted")
	// ErrNotContiguous means an append does not start right after the last
	// record; nothing was appended.
	ErrNotContiguous = errors.New("wal: index not contiguous")
	// ErrFailed means an earlier write or fsync failed. The log refuses
	// further appends, since what reached the disk is unknown; reopen it.
	ErrFailed = errors.New("wal: failed")
)

// SyncMode says when appended records are fsynced.
type SyncMode int

const (
	// SyncAlways fsyncs before an append returns; concurrent appends share
	// one fsync (group commit). This is the default.
	SyncAlways SyncMode = iota
	// SyncInterval returns after the write reaches the operating system
	// and fsyncs in the background every Options.SyncInterval. A crash of
	// the machine (not of the process) can lose the last interval.
	SyncInterval
	// SyncNever writes through to the operating system and never fsyncs,
	// not even at Close.
	SyncNever
)

// String returns the mode's flag spelling: always, interval or never.
func (m SyncMode) String() string {
	switch m {
	case SyncAlways:
		return "always"
	case SyncInterval:
		return "interval"
	case SyncNever:
		return "never"
	}
	return fmt.Sprintf("SyncMode(%d)", int(m))
}

// ParseSyncMode parses always, interval or never.
func ParseSyncMode(s string) (SyncMode, error) {
	for _, m := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		if m.String() == s {
			return m, nil
		}
	}
	return 0, fmt.Errorf("wal: unknown sync mode %q (want always, interval or never)", s)
}

// Defaults for zero Options fields.
const (
	DefaultSegmentBytes = 64 << 20
	DefaultSyncInterval = 100 * time.Millisecond
)

// Options configure a Log. The zero value is SyncAlways with 64 MiB
// segments and slog.Default.
type Options struct {
	// Sync says when records are fsynced.
	Sync SyncMode
	// SyncInterval is the background fsync period for SyncInterval.
	SyncInterval time.Duration
	// SegmentBytes is the size at which a new segment is started. A segment
	// holds at least one record, so one larger record makes a larger file.
	SegmentBytes int64
	// Logger receives recovery warnings and lifecycle messages.
	Logger *slog.Logger
}

// withDefaults fills zero fields.
func (o Options) withDefaults() Options {
	if o.SegmentBytes <= 0 {
		o.SegmentBytes = DefaultSegmentBytes
	}
	if o.SyncInterval <= 0 {
		o.SyncInterval = DefaultSyncInterval
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// Stats describe the log for status pages and metrics.
type Stats struct {
	FirstIndex, LastIndex uint64
	Bytes                 int64         // bytes in segment files
	Segments              int           // segment files
	Fsyncs                uint64        // fsyncs of segment files and the directory
	LastFsync             time.Duration // duration of the latest fsync
}

// Recovery reports what Open repaired. The zero value means nothing.
type Recovery struct {
	// Truncated is true when a torn or corrupt tail was cut off.
	Truncated bool
	// Segment is the file name of the segment that was cut.
	Segment string
	// Offset is the byte offset in Segment where the bad record started;
	// the file now ends there.
	Offset int64
	// DroppedBytes is how many bytes were cut off.
	DroppedBytes int64
	// LastIndex is the last record kept (0 when none).
	LastIndex uint64
	// Removed lists segment files below a newer segment that overlaps
	// them, left by a TruncateFront that did not finish; they were deleted.
	Removed []string
}

// Log is a write-ahead log of payloads at contiguous indexes. All methods
// are safe for concurrent use.
type Log struct {
	dir  string
	opts Options
	log  *slog.Logger

	// wmu serializes everything that writes files: batches, rolls,
	// truncations and fsyncs. It is taken before mu.
	wmu   sync.Mutex
	dirty bool // written since the last fsync of the active segment (wmu)

	mu     sync.RWMutex
	segs   []*segment // by first index; the last is the active one
	first  uint64     // first durable index, 0 when empty
	last   uint64     // last durable index, 0 when empty
	next   uint64     // index the next append must use, 0 for any
	pend   *batch     // records waiting for the committer
	closed bool
	failed error

	kick chan struct{}
	stop chan struct{}
	wg   sync.WaitGroup

	fsyncs    atomic.Uint64
	lastFsync atomic.Int64
	recovery  Recovery
}

// Open opens the log in dir, creating dir if needed, and recovers it: see
// the package documentation for the rules. What was repaired is logged at
// WARN and returned by Recovery.
func Open(dir string, opts Options) (*Log, error) {
	opts = opts.withDefaults()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wal: create %s: %w", dir, err)
	}
	l := &Log{
		dir:  dir,
		opts: opts,
		log:  opts.Logger.With(slog.String("component", "wal")),
		kick: make(chan struct{}, 1),
		stop: make(chan struct{}),
	}
	if err := l.recover(); err != nil {
		l.closeFiles()
		return nil, err
	}
	l.wg.Add(1)
	go l.commitLoop()
	if opts.Sync == SyncInterval {
		l.wg.Add(1)
		go l.syncLoop()
	}
	l.log.Info("wal opened", slog.String("sync", opts.Sync.String()),
		slog.Uint64("first_index", l.first), slog.Uint64("last_index", l.last),
		slog.Int("segments", len(l.segs)))
	return l, nil
}

// Recovery returns what Open repaired.
func (l *Log) Recovery() Recovery { return l.recovery }

// FirstIndex returns the first durable index, 0 when the log is empty.
func (l *Log) FirstIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.first
}

// LastIndex returns the last durable index (acknowledged under the sync
// mode), 0 when the log is empty.
func (l *Log) LastIndex() uint64 {
	l.mu.RLock()
	defer l.mu.RUnlock()
	return l.last
}

// Append appends payload at index and returns once it is durable under the
// sync mode. index must be the one after the last appended (durable or
// pending); any index is accepted when the log is empty. If ctx ends first,
// Append returns ctx's error, and the record may still be written.
func (l *Log) Append(ctx context.Context, index uint64, payload []byte) error {
	return l.AppendBatch(ctx, index, [][]byte{payload})
}

// AppendBatch appends payloads at first, first+1, ... and returns once all
// are durable; they share one write and one fsync.
func (l *Log) AppendBatch(ctx context.Context, first uint64, payloads [][]byte) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	p, err := l.Enqueue(first, payloads...)
	if err != nil {
		return err
	}
	return p.Wait(ctx)
}

// Pending is an enqueued append; Wait for it to be durable.
type Pending struct {
	b *batch
}

// Wait returns once the enqueued records are durable under the sync mode,
// with the write's error, or with ctx's error if ctx ends first.
func (p *Pending) Wait(ctx context.Context) error {
	if p.b == nil {
		return nil
	}
	select {
	case <-p.b.done:
		return p.b.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Enqueue queues payloads at first, first+1, ... without waiting. It is
// Append split in two: a caller that assigns indexes under its own lock
// enqueues under that lock (so records queue in index order) and waits
// outside it, and concurrent callers then share one fsync. The payloads
// are copied; the caller may reuse them.
func (l *Log) Enqueue(first uint64, payloads ...[]byte) (*Pending, error) {
	if len(payloads) == 0 {
		return &Pending{}, nil
	}
	if first == 0 {
		return nil, fmt.Errorf("%w: index 0 is reserved", ErrNotContiguous)
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case l.closed:
		return nil, ErrClosed
	case l.failed != nil:
		return nil, fmt.Errorf("%w: %w", ErrFailed, l.failed)
	case l.next != 0 && first != l.next:
		return nil, fmt.Errorf("%w: append at %d, want %d", ErrNotContiguous, first, l.next)
	}
	for _, p := range payloads {
		if len(p) > MaxPayload {
			return nil, fmt.Errorf("wal: payload of %d bytes exceeds %d", len(p), MaxPayload)
		}
	}
	if l.pend == nil {
		l.pend = &batch{first: first, done: make(chan struct{})}
	}
	b := l.pend
	for i, p := range payloads {
		start := len(b.buf)
		b.buf = appendRecord(b.buf, first+uint64(i), p)
		b.sizes = append(b.sizes, len(b.buf)-start)
	}
	l.next = first + uint64(len(payloads))
	select {
	case l.kick <- struct{}{}:
	default:
	}
	return &Pending{b: b}, nil
}

// Read returns the payload at index.
func (l *Log) Read(index uint64) ([]byte, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, ErrClosed
	}
	if err := l.checkRangeLocked(index); err != nil {
		return nil, err
	}
	s := l.segmentLocked(index)
	return s.read(index)
}

// checkRangeLocked returns ErrCompacted or ErrNotFound for an index outside
// the durable records.
func (l *Log) checkRangeLocked(index uint64) error {
	if l.last == 0 || index > l.last {
		return fmt.Errorf("%w: %d (last %d)", ErrNotFound, index, l.last)
	}
	if index < l.first {
		return fmt.Errorf("%w: %d (first %d)", ErrCompacted, index, l.first)
	}
	return nil
}

// segmentLocked returns the segment holding index, which must be in range.
func (l *Log) segmentLocked(index uint64) *segment {
	i := sort.Search(len(l.segs), func(i int) bool { return l.segs[i].first > index })
	return l.segs[i-1]
}

// Iterate calls fn for each record from index from to the last durable one
// at the time of the call, in order, and stops at fn's first error, which
// it returns. from below FirstIndex is ErrCompacted; from above LastIndex
// calls nothing.
func (l *Log) Iterate(from uint64, fn func(index uint64, payload []byte) error) error {
	first, last := l.FirstIndex(), l.LastIndex()
	if last == 0 || from > last {
		return nil
	}
	if from < first {
		return fmt.Errorf("%w: %d (first %d)", ErrCompacted, from, first)
	}
	// A segment's records are read with one read, not one each.
	for i := from; i <= last; {
		recs, end, err := l.readRun(i, last)
		if err != nil {
			return err
		}
		for j := i; j <= end; j++ {
			p, n, err := decodeRecord(recs, j)
			if err != nil {
				return fmt.Errorf("%w: record %d: %w", ErrCorrupt, j, err)
			}
			if err := fn(j, p); err != nil {
				return err
			}
			recs = recs[n:]
		}
		i = end + 1
	}
	return nil
}

// readRun reads the records from index to the end of its segment (at most
// to last) with one read, and returns them and the last index read.
func (l *Log) readRun(index, last uint64) ([]byte, uint64, error) {
	l.mu.RLock()
	defer l.mu.RUnlock()
	if l.closed {
		return nil, 0, ErrClosed
	}
	if err := l.checkRangeLocked(index); err != nil {
		return nil, 0, err
	}
	s := l.segmentLocked(index)
	end := min(last, s.lastIndex(), l.last)
	off := s.offset(index)
	buf := make([]byte, s.offset(end+1)-off)
	if _, err := s.f.ReadAt(buf, off); err != nil {
		return nil, 0, fmt.Errorf("wal: read %d-%d from %s: %w", index, end, s.name(), err)
	}
	return buf, end, nil
}

// Stats returns the log's sizes and fsync counters.
func (l *Log) Stats() Stats {
	l.mu.RLock()
	defer l.mu.RUnlock()
	st := Stats{
		FirstIndex: l.first,
		LastIndex:  l.last,
		Segments:   len(l.segs),
		Fsyncs:     l.fsyncs.Load(),
		LastFsync:  time.Duration(l.lastFsync.Load()),
	}
	for _, s := range l.segs {
		st.Bytes += s.size
	}
	return st
}

// Close writes what is queued, fsyncs (except with SyncNever), stops the
// log's goroutines and closes its files. Appends waiting on Close get their
// write's result; later calls get ErrClosed.
func (l *Log) Close() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return ErrClosed
	}
	l.closed = true
	l.mu.Unlock()
	close(l.stop)
	l.wg.Wait()

	l.wmu.Lock()
	defer l.wmu.Unlock()
	var err error
	if l.opts.Sync != SyncNever && l.dirty {
		err = l.syncActive()
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if cerr := l.closeFiles(); err == nil {
		err = cerr
	}
	l.log.Info("wal closed", slog.Uint64("last_index", l.last))
	return err
}

// closeFiles closes every segment file.
func (l *Log) closeFiles() error {
	var err error
	for _, s := range l.segs {
		if cerr := s.f.Close(); cerr != nil && err == nil {
			err = fmt.Errorf("wal: close %s: %w", s.name(), cerr)
		}
	}
	return err
}
