package bench

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// measureFunc measures op with c concurrent clients for d and returns the
// latencies of the successful calls, the errors and the elapsed time.
type measureFunc func(ctx context.Context, op string, c int, d time.Duration) (*Hist, int64, time.Duration)

// interleaved measures every op at every concurrency once a round, for
// d each, and merges the rounds: a noisy moment of a shared machine then
// hits every operation alike. onStep, if not nil, is called after each
// measurement. The results are in the order of ops, then clients.
func interleaved(ctx context.Context, rounds int, ops []string, clients []int, d time.Duration, measure measureFunc, onStep func(string)) ([]KVResult, error) {
	type key struct {
		op string
		c  int
	}
	hists := map[key]*Hist{}
	errs := map[key]int64{}
	elapsed := map[key]time.Duration{}
	for round := 1; round <= rounds; round++ {
		for _, op := range ops {
			for _, c := range clients {
				if err := ctx.Err(); err != nil {
					return nil, err
				}
				h, n, el := measure(ctx, op, c, d)
				k := key{op, c}
				if hists[k] == nil {
					hists[k] = NewHist()
				}
				hists[k].Merge(h)
				errs[k] += n
				elapsed[k] += el
				if onStep != nil {
					onStep(fmt.Sprintf("round %d %s ×%d: p50 %s µs", round, op, c, Us(h.Quantile(50))))
				}
			}
		}
	}
	var out []KVResult
	for _, op := range ops {
		for _, c := range clients {
			k := key{op, c}
			h := hists[k]
			r := KVResult{Op: op, Clients: c, Errors: errs[k], Elapsed: elapsed[k], Latency: h.Summary()}
			if elapsed[k] > 0 {
				r.Throughput = float64(h.Count()) / elapsed[k].Seconds()
			}
			out = append(out, r)
		}
	}
	return out, nil
}

// runCalls runs each of calls on a goroutine of its own, one call after
// another (each bounded by 5 s), for d, and returns the latencies of the
// successful calls, the errors and the elapsed time.
func runCalls(ctx context.Context, calls []func(context.Context) error, d time.Duration) (*Hist, int64, time.Duration) {
	hists := make([]*Hist, len(calls))
	var errs atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	end := start.Add(d)
	for i, f := range calls {
		hists[i] = NewHist()
		wg.Go(func() {
			for time.Now().Before(end) && ctx.Err() == nil {
				rctx, cancel := context.WithTimeout(ctx, 5*time.Second)
				t := time.Now()
				err := f(rctx)
				el := time.Since(t)
				cancel()
				if err != nil {
					errs.Add(1)
					continue
				}
				hists[i].Record(el)
			}
		})
	}
	wg.Wait()
	elapsed := time.Since(start)
	h := NewHist()
	for _, x := range hists {
		h.Merge(x)
	}
	return h, errs.Load(), elapsed
}
