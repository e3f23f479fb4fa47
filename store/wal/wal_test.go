package wal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// quiet is a logger that drops everything.
var quiet = slog.New(slog.DiscardHandler)

// openT opens a log in dir and closes it when the test ends.
func openT(t *testing.T, dir string, opts Options) *Log {
	t.Helper()
	if opts.Logger == nil {
		opts.Logger = quiet
	}
	l, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { l.Close() })
	return l
}

// payload is the test payload for index: its size varies with the index.
func payload(index uint64) []byte {
	return bytes.Repeat([]byte(fmt.Sprintf("rec-%d;", index)), int(index%7)+1)
}

// appendRange appends payload(i) for i in [from, to].
func appendRange(t *testing.T, l *Log, from, to uint64) {
	t.Helper()
	for i := from; i <= to; i++ {
		if err := l.Append(context.Background(), i, payload(i)); err != nil {
			t.Fatalf("Append(%d): %v", i, err)
		}
	}
}

// checkRange reads [from, to] back and checks the bounds.
func checkRange(t *testing.T, l *Log, from, to uint64) {
	t.Helper()
	if got := l.FirstIndex(); got != from {
		t.Errorf("FirstIndex = %d, want %d", got, from)
	}
	if got := l.LastIndex(); got != to {
		t.Errorf("LastIndex = %d, want %d", got, to)
	}
	for i := from; i <= to; i++ {
		p, err := l.Read(i)
		if err != nil {
			t.Fatalf("Read(%d): %v", i, err)
		}
		if !bytes.Equal(p, payload(i)) {
			t.Fatalf("Read(%d) = %q, want %q", i, p, payload(i))
		}
	}
	next := from
	err := l.Iterate(from, func(i uint64, p []byte) error {
		if i != next || !bytes.Equal(p, payload(i)) {
			return fmt.Errorf("iterate got %d %q, want %d", i, p, next)
		}
		next++
		return nil
	})
	if err != nil || next != to+1 {
		t.Fatalf("Iterate: %v, stopped before %d, want %d", err, next, to+1)
	}
}

// segmentFiles lists the segment file names in dir.
func segmentFiles(t *testing.T, dir string) []string {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(dir, "*"+segmentExt))
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range names {
		names[i] = filepath.Base(n)
	}
	return names
}

// lastSegment returns the path of the newest segment file in dir.
func lastSegment(t *testing.T, dir string) string {
	t.Helper()
	names := segmentFiles(t, dir)
	if len(names) == 0 {
		t.Fatal("no segments")
	}
	return filepath.Join(dir, names[len(names)-1])
}

// recordSize is the encoded size of the record for index.
func recordSize(index uint64) int64 { return int64(headerSize + len(payload(index))) }

func TestRoundTripAcrossSegments(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: 256})
	appendRange(t, l, 1, 200)
	checkRange(t, l, 1, 200)
	st := l.Stats()
	if st.Segments < 10 || len(segmentFiles(t, dir)) != st.Segments {
		t.Fatalf("Segments = %d, files %v: want many, one per file", st.Segments, segmentFiles(t, dir))
	}
	var want int64
	for i := uint64(1); i <= 200; i++ {
		want += recordSize(i)
	}
	if st.Bytes != want {
		t.Errorf("Bytes = %d, want %d", st.Bytes, want)
	}
	if names := segmentFiles(t, dir); names[0] != "00000000000000000001.wal" {
		t.Errorf("first segment %s, want 00000000000000000001.wal", names[0])
	}
}

func TestAppendBatch(t *testing.T) {
	l := openT(t, t.TempDir(), Options{SegmentBytes: 128})
	var ps [][]byte
	for i := uint64(5); i <= 40; i++ {
		ps = append(ps, payload(i))
	}
	if err := l.AppendBatch(context.Background(), 5, ps); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 5, 40)
	if err := l.AppendBatch(context.Background(), 40, ps); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("overlapping batch: %v, want ErrNotContiguous", err)
	}
}

func TestReopen(t *testing.T) {
	dir := writtenLog(t, 300, 50)
	l := openT(t, dir, Options{SegmentBytes: 300})
	if r := l.Recovery(); r.Truncated || len(r.Removed) > 0 {
		t.Fatalf("clean reopen reported %+v", r)
	}
	checkRange(t, l, 1, 50)
	appendRange(t, l, 51, 60)
	checkRange(t, l, 1, 60)
}

func TestNonContiguousRefused(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	ctx := context.Background()
	if err := l.Append(ctx, 100, payload(100)); err != nil {
		t.Fatalf("first append at any index: %v", err)
	}
	for _, idx := range []uint64{0, 100, 102, 99} {
		if err := l.Append(ctx, idx, payload(idx)); !errors.Is(err, ErrNotContiguous) {
			t.Errorf("Append(%d) = %v, want ErrNotContiguous", idx, err)
		}
	}
	if err := l.Append(ctx, 101, payload(101)); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 100, 101)
}

// reopenDamaged writes records 1..n, closes, damages the last segment file
// with damage, and reopens.
func reopenDamaged(t *testing.T, n uint64, damage func(path string)) (*Log, string, error) {
	t.Helper()
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: 200})
	appendRange(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	damage(lastSegment(t, dir))
	l2, err := Open(dir, Options{SegmentBytes: 200, Logger: quiet})
	if err == nil {
		t.Cleanup(func() { l2.Close() })
	}
	return l2, dir, err
}

// flip flips one byte at off in the file at path (negative off counts from
// the end).
func flip(t *testing.T, path string, off int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if off < 0 {
		off += int64(len(b))
	}
	b[off] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// checkTornTail checks a recovery that dropped record n (dropped bytes) and
// that appends continue at n.
func checkTornTail(t *testing.T, l *Log, n uint64, dropped int64) {
	t.Helper()
	r := l.Recovery()
	if !r.Truncated || r.DroppedBytes != dropped || r.LastIndex != n-1 || r.Segment == "" {
		t.Fatalf("Recovery = %+v, want truncated, %d bytes dropped, last %d", r, dropped, n-1)
	}
	checkRange(t, l, 1, n-1)
	if _, err := l.Read(n); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(%d) after truncation: %v, want ErrNotFound", n, err)
	}
	appendRange(t, l, n, n+5)
	checkRange(t, l, 1, n+5)
}

func TestTornTailCutShort(t *testing.T) {
	const n = 30
	l, _, err := reopenDamaged(t, n, func(path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()-3); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	checkTornTail(t, l, n, recordSize(n)-3)
}

func TestTornTailHeaderOnly(t *testing.T) {
	const n = 30
	l, _, err := reopenDamaged(t, n, func(path string) {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(path, fi.Size()-recordSize(n)+5); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	checkTornTail(t, l, n, 5)
}

func TestTornTailBadChecksum(t *testing.T) {
	const n = 30
	l, _, err := reopenDamaged(t, n, func(path string) { flip(t, path, -1) })
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	checkTornTail(t, l, n, recordSize(n))
}

func TestTornTailZeroes(t *testing.T) {
	const n = 30
	l, _, err := reopenDamaged(t, n, func(path string) {
		f, err := os.OpenFile(path, os.O_APPEND|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.Write(make([]byte, 64)); err != nil {
			t.Fatal(err)
		}
	})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	checkTornTail(t, l, n+1, 64)
}

func TestCorruptMiddleOfLastSegment(t *testing.T) {
	const n = 30
	_, _, err := reopenDamaged(t, n, func(path string) {
		// The last payload byte of the next-to-last record.
		flip(t, path, -recordSize(n)-1)
	})
	if !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

func TestCorruptEarlierSegment(t *testing.T) {
	dir := writtenLog(t, 200, 60)
	names := segmentFiles(t, dir)
	// The tail of a segment that is not the last is not a torn tail.
	flip(t, filepath.Join(dir, names[0]), -1)
	if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

func TestMissingSegmentIsCorrupt(t *testing.T) {
	dir := writtenLog(t, 200, 60)
	names := segmentFiles(t, dir)
	if err := os.Remove(filepath.Join(dir, names[1])); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(dir, Options{Logger: quiet}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Open = %v, want ErrCorrupt", err)
	}
}

func TestTruncateFront(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 200}
	l := openT(t, dir, opts)
	appendRange(t, l, 1, 100)
	before := l.Stats().Segments
	if err := l.TruncateFront(50); err != nil {
		t.Fatal(err)
	}
	after := l.Stats().Segments
	if after >= before || len(segmentFiles(t, dir)) != after {
		t.Fatalf("segments %d -> %d, files %v", before, after, segmentFiles(t, dir))
	}
	if names := segmentFiles(t, dir); names[0] != segmentName(50) {
		t.Fatalf("first segment %s, want %s", names[0], segmentName(50))
	}
	for _, i := range []uint64{1, 49} {
		if _, err := l.Read(i); !errors.Is(err, ErrCompacted) {
			t.Errorf("Read(%d) = %v, want ErrCompacted", i, err)
		}
	}
	if err := l.Iterate(10, func(uint64, []byte) error { return nil }); !errors.Is(err, ErrCompacted) {
		t.Errorf("Iterate(10) = %v, want ErrCompacted", err)
	}
	checkRange(t, l, 50, 100)
	appendRange(t, l, 101, 110)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	checkRange(t, l, 50, 110)

	// Past the end: the log is empty and takes any index.
	if err := l.TruncateFront(500); err != nil {
		t.Fatal(err)
	}
	if l.FirstIndex() != 0 || l.LastIndex() != 0 || len(segmentFiles(t, dir)) != 0 {
		t.Fatalf("after TruncateFront past the end: %+v, files %v", l.Stats(), segmentFiles(t, dir))
	}
	appendRange(t, l, 500, 510)
	checkRange(t, l, 500, 510)
}

func TestInterruptedTruncateFront(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	appendRange(t, l, 1, 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The rewritten segment was renamed into place but the old one was not
	// yet deleted; a temporary file was left too.
	var buf []byte
	for i := uint64(10); i <= 20; i++ {
		buf = appendRecord(buf, i, payload(i))
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(10)), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(15)+".tmp"), buf[:5], 0o644); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Options{})
	if r := l.Recovery(); len(r.Removed) != 1 || r.Removed[0] != segmentName(1) {
		t.Fatalf("Recovery = %+v, want %s removed", r, segmentName(1))
	}
	checkRange(t, l, 10, 20)
	if got := segmentFiles(t, dir); len(got) != 1 {
		t.Fatalf("files %v", got)
	}
}

func TestTruncateBack(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 200}
	l := openT(t, dir, opts)
	appendRange(t, l, 1, 100)
	before := l.Stats().Segments
	if err := l.TruncateBack(30); err != nil {
		t.Fatal(err)
	}
	if after := l.Stats().Segments; after >= before || len(segmentFiles(t, dir)) != after {
		t.Fatalf("segments %d -> %d, files %v", before, after, segmentFiles(t, dir))
	}
	if _, err := l.Read(31); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read(31) = %v, want ErrNotFound", err)
	}
	checkRange(t, l, 1, 30)
	if err := l.Append(context.Background(), 40, payload(40)); !errors.Is(err, ErrNotContiguous) {
		t.Fatalf("Append(40) = %v, want ErrNotContiguous", err)
	}
	appendRange(t, l, 31, 70)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, opts)
	checkRange(t, l, 1, 70)

	if err := l.TruncateBack(0); err != nil {
		t.Fatal(err)
	}
	if l.LastIndex() != 0 || len(segmentFiles(t, dir)) != 0 {
		t.Fatalf("after TruncateBack(0): %+v", l.Stats())
	}
	appendRange(t, l, 7, 9)
	checkRange(t, l, 7, 9)
}

// stall holds the committer off until the returned func is called.
func stall(l *Log) (release func()) {
	l.wmu.Lock()
	return l.wmu.Unlock
}

func TestGroupCommitSharesOneFsync(t *testing.T) {
	const n = 32
	l := openT(t, t.TempDir(), Options{Sync: SyncAlways})
	appendRange(t, l, 1, 1) // creates the segment
	base := l.Stats().Fsyncs
	release := stall(l)
	var (
		mu   sync.Mutex
		next uint64 = 2
		wg   sync.WaitGroup
		errs = make(chan error, n)
	)
	queued := make(chan struct{}, n)
	for range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			mu.Lock()
			idx := next
			next++
			p, err := l.Enqueue(idx, payload(idx))
			mu.Unlock()
			queued <- struct{}{}
			if err == nil {
				err = p.Wait(context.Background())
			}
			errs <- err
		}()
	}
	for range n {
		<-queued
	}
	release()
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := l.Stats().Fsyncs - base; got != 1 {
		t.Fatalf("%d queued appends took %d fsyncs, want 1", n, got)
	}
	checkRange(t, l, 1, n+1)
}

func TestGroupCommitConcurrentAppenders(t *testing.T) {
	const workers, each = 16, 100
	l := openT(t, t.TempDir(), Options{Sync: SyncAlways})
	var (
		mu   sync.Mutex
		next uint64 = 1
		wg   sync.WaitGroup
	)
	errs := make(chan error, workers)
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range each {
				mu.Lock()
				idx := next
				next++
				p, err := l.Enqueue(idx, payload(idx))
				mu.Unlock()
				if err == nil {
					err = p.Wait(context.Background())
				}
				if err != nil {
					errs <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	st := l.Stats()
	if st.Fsyncs == 0 || st.Fsyncs >= workers*each {
		t.Fatalf("%d appends took %d fsyncs, want fewer (and some)", workers*each, st.Fsyncs)
	}
	t.Logf("%d appends, %d fsyncs", workers*each, st.Fsyncs)
	checkRange(t, l, 1, workers*each)
}

func TestSyncNeverDoesNoFsync(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{Sync: SyncNever, SegmentBytes: 200})
	appendRange(t, l, 1, 100)
	if err := l.TruncateFront(20); err != nil {
		t.Fatal(err)
	}
	if err := l.TruncateBack(80); err != nil {
		t.Fatal(err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Fsyncs; got != 0 {
		t.Fatalf("SyncNever did %d fsyncs", got)
	}
	l = openT(t, dir, Options{Sync: SyncNever})
	checkRange(t, l, 20, 80)
}

func TestSyncIntervalFsyncsOnClose(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{Sync: SyncInterval, SyncInterval: 1 << 40})
	appendRange(t, l, 1, 10)
	if got := l.Stats().Fsyncs; got > 1 {
		t.Fatalf("SyncInterval fsynced %d times while appending", got)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if got := l.Stats().Fsyncs; got == 0 {
		t.Fatal("Close did not fsync")
	}
	l = openT(t, dir, Options{})
	checkRange(t, l, 1, 10)
}

func TestClosed(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	appendRange(t, l, 1, 3)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	if err := l.Append(context.Background(), 4, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("Append after Close = %v", err)
	}
	if _, err := l.Read(1); !errors.Is(err, ErrClosed) {
		t.Errorf("Read after Close = %v", err)
	}
	if err := l.TruncateBack(1); !errors.Is(err, ErrClosed) {
		t.Errorf("TruncateBack after Close = %v", err)
	}
	if err := l.Close(); !errors.Is(err, ErrClosed) {
		t.Errorf("second Close = %v", err)
	}
}

func TestWaitHonoursContext(t *testing.T) {
	l := openT(t, t.TempDir(), Options{})
	release := stall(l)
	p, err := l.Enqueue(1, payload(1))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := p.Wait(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
	release()
	if err := p.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	checkRange(t, l, 1, 1)
}

func TestEmptyPayloadAndEmptyLog(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	if _, err := l.Read(1); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Read on empty log = %v", err)
	}
	if err := l.Append(context.Background(), 1, nil); err != nil {
		t.Fatal(err)
	}
	if p, err := l.Read(1); err != nil || len(p) != 0 {
		t.Fatalf("Read(1) = %q, %v", p, err)
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Options{})
	if l.LastIndex() != 1 || l.Recovery().Truncated {
		t.Fatalf("reopen: last %d, recovery %+v", l.LastIndex(), l.Recovery())
	}
}

func TestParseSyncMode(t *testing.T) {
	for _, m := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		got, err := ParseSyncMode(m.String())
		if err != nil || got != m {
			t.Errorf("ParseSyncMode(%q) = %v, %v", m, got, err)
		}
	}
	if _, err := ParseSyncMode("sometimes"); err == nil {
		t.Error("ParseSyncMode(sometimes) succeeded")
	}
}

func TestInterruptedTruncateFrontTornLeftover(t *testing.T) {
	dir := t.TempDir()
	l := openT(t, dir, Options{})
	appendRange(t, l, 1, 20)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	// The old segment lost its unsynced tail in the crash; the rewritten
	// one (fsynced before the rename) holds those records.
	old := filepath.Join(dir, segmentName(1))
	if err := os.Truncate(old, recordSize(1)+recordSize(2)+recordSize(3)+4); err != nil {
		t.Fatal(err)
	}
	var buf []byte
	for i := uint64(4); i <= 20; i++ {
		buf = appendRecord(buf, i, payload(i))
	}
	if err := os.WriteFile(filepath.Join(dir, segmentName(4)), buf, 0o644); err != nil {
		t.Fatal(err)
	}
	l = openT(t, dir, Options{})
	if r := l.Recovery(); len(r.Removed) != 1 || r.Truncated {
		t.Fatalf("Recovery = %+v, want the old segment removed", r)
	}
	checkRange(t, l, 4, 20)
}

func TestConcurrentAppendReadTruncate(t *testing.T) {
	l := openT(t, t.TempDir(), Options{SegmentBytes: 512, Sync: SyncInterval, SyncInterval: time.Millisecond})
	const total = 2000
	var (
		mu   sync.Mutex
		next uint64 = 1
		wg   sync.WaitGroup
	)
	errs := make(chan error, 8)
	// appendOne appends the next index and returns it, 0 when done.
	appendOne := func() (uint64, error) {
		mu.Lock()
		if next > total {
			mu.Unlock()
			return 0, nil
		}
		idx := next
		next++
		p, err := l.Enqueue(idx, payload(idx))
		mu.Unlock()
		if err != nil {
			return 0, err
		}
		return idx, p.Wait(context.Background())
	}
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				idx, err := appendOne()
				if err != nil {
					errs <- err
					return
				}
				if idx == 0 {
					return
				}
				// Read back what this and the other appenders wrote, while
				// others append and truncate.
				for i := idx; i > 0 && i+10 > idx; i-- {
					p, err := l.Read(i)
					if errors.Is(err, ErrCompacted) {
						break
					}
					if err != nil || !bytes.Equal(p, payload(i)) {
						errs <- fmt.Errorf("Read(%d) = %q, %v", i, p, err)
						return
					}
				}
				if idx%100 == 0 {
					if err := l.TruncateFront(idx - 50); err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if l.LastIndex() != total || l.FirstIndex() < total-100 {
		t.Fatalf("bounds %d..%d, want about %d..%d", l.FirstIndex(), l.LastIndex(), total-50, total)
	}
}

// writtenLog writes records 1..n with segments of segBytes into a new
// directory, closes the log and returns the directory.
func writtenLog(t *testing.T, segBytes int64, n uint64) string {
	t.Helper()
	dir := t.TempDir()
	l := openT(t, dir, Options{SegmentBytes: segBytes})
	appendRange(t, l, 1, n)
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}
