package store

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"testing"
)

// memoryKeys and memoryValueBytes are the shape of BenchmarkMemoryPerKey:
// a million distinct keys of 16 bytes with values of 100 bytes.
const (
	memoryKeys       = 1_000_000
	memoryValueBytes = 100
)

// BenchmarkMemoryPerKey fills a store with the default configuration with
// memoryKeys distinct keys, as a replica does (Apply of the leader's
// updates) and as the leader does (Write), each with a request ID of 32
// hex digits as the client library sends, and reports what the store
// holds per key: live heap bytes, resident bytes (after the runtime gives
// free memory back), and each as a ratio to the raw bytes of a key and its
// value. The window of recent updates and the request-ID window are full
// by then, so their fixed cost is counted too. Run it with -benchtime 1x.
func BenchmarkMemoryPerKey(b *testing.B) {
	b.Run("apply", func(b *testing.B) {
		measureMemory(b, func(s *Store, i int, key, value string) {
			u := Update{Epoch: 1, Seq: uint64(i + 1), Key: key, Value: value, RequestID: memoryRequestID(i), Time: int64(i), Leader: "n1"}
			if err := s.Apply(u); err != nil {
				b.Fatal(err)
			}
		})
	})
	b.Run("write", func(b *testing.B) {
		measureMemory(b, func(s *Store, i int, key, value string) {
			if _, _, _, err := s.Write(1, Write{Key: key, Value: value, RequestID: memoryRequestID(i), Time: int64(i), Leader: "n1"}); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// measureMemory fills a new store with memoryKeys keys through fill and
// reports the memory it holds per key.
func measureMemory(b *testing.B, fill func(s *Store, i int, key, value string)) {
	raw := float64(len(memoryKey(0)) + memoryValueBytes)
	var heapPerKey, rssPerKey float64
	for b.Loop() {
		heap0, rss0 := settledMemory(b)
		s := New()
		value := []byte(strings.Repeat("v", memoryValueBytes))
		for i := range memoryKeys {
			// Each value is its own string, as one decoded from a
			// message is.
			copy(value, strconv.Itoa(i))
			fill(s, i, memoryKey(i), string(value))
		}
		heap1, rss1 := settledMemory(b)
		if s.Len() != memoryKeys {
			b.Fatalf("store holds %d keys, want %d", s.Len(), memoryKeys)
		}
		runtime.KeepAlive(s)
		heapPerKey = float64(int64(heap1)-int64(heap0)) / memoryKeys
		rssPerKey = float64(rss1-rss0) / memoryKeys
	}
	b.ReportMetric(heapPerKey, "heap-B/key")
	b.ReportMetric(rssPerKey, "rss-B/key")
	b.ReportMetric(heapPerKey/raw, "heap/raw")
	b.ReportMetric(rssPerKey/raw, "rss/raw")
}

// memoryKey is the i-th key of BenchmarkMemoryPerKey: 16 bytes.
func memoryKey(i int) string { return fmt.Sprintf("key-%012d", i) }

// memoryRequestID is the request ID of the i-th write: 32 hex digits.
func memoryRequestID(i int) string { return fmt.Sprintf("%032x", i) }

// settledMemory collects garbage, returns free memory to the system and
// reports the live heap and the resident set, in bytes.
func settledMemory(b testing.TB) (heap uint64, rss int64) {
	runtime.GC()
	debug.FreeOSMemory()
	var m runtime.MemStats
	runtime.ReadMemStats(&m)
	return m.HeapAlloc, residentBytes(b)
}

// residentBytes reads VmRSS from /proc/self/status; the benchmark is
// skipped where there is none.
func residentBytes(b testing.TB) int64 {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		b.Skipf("no resident set size here: %v", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				b.Fatalf("VmRSS %q: %v", rest, err)
			}
			return kb << 10
		}
	}
	b.Skip("no VmRSS in /proc/self/status")
	return 0
}
