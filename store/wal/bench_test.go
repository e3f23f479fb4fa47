package wal

import (
	"context"
	"sync"
	"testing"
	"time"
)

// BenchmarkAppend measures Append throughput with 16 appenders of 100-byte
// payloads in each sync mode. Each appender takes the next index and
// enqueues under a shared lock and waits outside it, the way a server that
// assigns revisions would, so concurrent appends can share an fsync.
func BenchmarkAppend(b *testing.B) {
	for _, mode := range []SyncMode{SyncAlways, SyncInterval, SyncNever} {
		b.Run(mode.String(), func(b *testing.B) {
			benchmarkAppend(b, mode, 16)
		})
	}
}

// benchmarkAppend runs b.N appends spread over workers goroutines.
func benchmarkAppend(b *testing.B, mode SyncMode, workers int) {
	l, err := Open(b.TempDir(), Options{Sync: mode, Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	payload := make([]byte, 100)
	var (
		mu   sync.Mutex
		next uint64 = 1
		left        = b.N
		wg   sync.WaitGroup
	)
	// take returns the next index, or false when b.N appends are handed out.
	take := func() (*Pending, bool) {
		mu.Lock()
		defer mu.Unlock()
		if left == 0 {
			return nil, false
		}
		left--
		p, err := l.Enqueue(next, payload)
		if err != nil {
			b.Error(err)
			return nil, false
		}
		next++
		return p, true
	}
	b.SetBytes(int64(len(payload)))
	b.ResetTimer()
	start := time.Now()
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				p, ok := take()
				if !ok {
					return
				}
				if err := p.Wait(context.Background()); err != nil {
					b.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	b.StopTimer()
	st := l.Stats()
	b.ReportMetric(float64(b.N)/elapsed.Seconds(), "appends/s")
	b.ReportMetric(float64(st.Fsyncs), "fsyncs")
	b.ReportMetric(float64(st.Fsyncs)/float64(b.N), "fsyncs/op")
	if err := l.Close(); err != nil {
		b.Fatal(err)
	}
}
