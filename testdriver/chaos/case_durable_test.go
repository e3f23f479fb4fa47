package chaos

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zkvstore/zkv/store/wal"
)

// TestUncommittedRead: the history of a durable-full-restart run whose
// leader read reported a write at a revision no server had logged when
// every server was killed (the retry was acknowledged at another
// revision after the restart) is explained; a read of an acknowledged
// revision, or one after the kill, is not.
func TestUncommittedRead(t *testing.T) {
	at := func(op Op, rev uint64) Op { op.Revision = rev; return op }
	const kill = 400
	w1 := at(put(0, "k", "a", 0, 10, OK), 228)
	retried := at(put(1, "k", "b", 100, 700, OK), 1030)
	tests := []struct {
		name string
		ops  []Op
		want bool
	}{
		{"read of an unlogged write", []Op{w1, at(get(2, "k", "b", 200, 210), 235), retried}, true},
		{"read of an acknowledged write", []Op{w1, at(get(2, "k", "a", 200, 210), 228), retried}, false},
		{"read after the kill", []Op{w1, retried, at(get(2, "k", "b", 800, 810), 1030)}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, got := UncommittedRead(numbered(tt.ops...), ms(kill), 233); got != tt.want {
				t.Fatalf("explained %v, want %v", got, tt.want)
			}
		})
	}
}

// TestTearNewestRecord cuts a real log's last record and checks that the
// log, reopened, reports a torn tail of the bytes left and keeps every
// record before it.
func TestTearNewestRecord(t *testing.T) {
	dir := t.TempDir()
	l, err := wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	for i := uint64(1); i <= 5; i++ {
		if err := l.Append(t.Context(), i, []byte(`u{"seq":`+string(rune('0'+i))+`}`)); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.Close(); err != nil {
		t.Fatal(err)
	}
	c, err := tearNewestRecord(dir)
	if err != nil {
		t.Fatal(err)
	}
	if c.Index != 5 || c.Seq != 5 || c.Kind != 'u' || c.Cut <= c.Record || c.Cut >= c.Size {
		t.Fatalf("cut %+v", c)
	}
	if fi, err := os.Stat(filepath.Join(dir, c.Segment)); err != nil || fi.Size() != c.Cut {
		t.Fatalf("segment after the cut: %v, %v", fi, err)
	}
	l, err = wal.Open(dir, wal.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	rec := l.Recovery()
	if !rec.Truncated || rec.DroppedBytes != c.dropped() || l.LastIndex() != 4 {
		t.Fatalf("recovery %+v, last index %d; want a torn tail of %d bytes after record 4", rec, l.LastIndex(), c.dropped())
	}
}
