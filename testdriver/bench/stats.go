package bench

import (
	"fmt"
	"math"
	"slices"
	"time"

	hdrhistogram "github.com/HdrHistogram/hdrhistogram-go"
)

// Histogram bounds: durations are recorded in microseconds, from 1 µs to
// 10 minutes, with three significant digits.
const (
	histMinMicros = 1
	histMaxMicros = int64(10 * time.Minute / time.Microsecond)
	histSigFigs   = 3
)

// Hist records durations with HdrHistogram, in microseconds. Values below
// one microsecond count as one; values above ten minutes as ten minutes.
// It is not safe for concurrent use; merge per-goroutine histograms with
// Merge.
type Hist struct {
	h *hdrhistogram.Histogram
}

// NewHist returns an empty histogram.
func NewHist() *Hist {
	return &Hist{h: hdrhistogram.New(histMinMicros, histMaxMicros, histSigFigs)}
}

// Record adds one duration.
func (h *Hist) Record(d time.Duration) {
	us := int64(d / time.Microsecond)
	us = min(max(us, histMinMicros), histMaxMicros)
	_ = h.h.RecordValue(us) // in range by construction
}

// Merge adds every value of o to h.
func (h *Hist) Merge(o *Hist) {
	if o != nil {
		h.h.Merge(o.h)
	}
}

// Count is the number of recorded values.
func (h *Hist) Count() int64 { return h.h.TotalCount() }

// Quantile returns the value at quantile q (0 to 100).
func (h *Hist) Quantile(q float64) time.Duration {
	return time.Duration(h.h.ValueAtQuantile(q)) * time.Microsecond
}

// Summary summarises the histogram.
func (h *Hist) Summary() Summary {
	if h.Count() == 0 {
		return Summary{}
	}
	return Summary{
		N:    int(h.Count()),
		Min:  time.Duration(h.h.Min()) * time.Microsecond,
		P50:  h.Quantile(50),
		P90:  h.Quantile(90),
		P99:  h.Quantile(99),
		Max:  time.Duration(h.h.Max()) * time.Microsecond,
		Mean: time.Duration(h.h.Mean() * float64(time.Microsecond)),
		SD:   time.Duration(h.h.StdDev() * float64(time.Microsecond)),
	}
}

// Summary is the usual description of a latency distribution.
type Summary struct {
	N                       int
	Min, P50, P90, P99, Max time.Duration
	Mean, SD                time.Duration
}

// Summarize describes ds with a histogram (percentiles to three
// significant digits) and an exact mean and standard deviation (the
// sample standard deviation, n-1). An empty slice gives the zero Summary.
func Summarize(ds []time.Duration) Summary {
	if len(ds) == 0 {
		return Summary{}
	}
	h := NewHist()
	for _, d := range ds {
		h.Record(d)
	}
	s := h.Summary()
	s.Min, s.Max = slices.Min(ds), slices.Max(ds)
	var sum float64
	for _, d := range ds {
		sum += float64(d)
	}
	mean := sum / float64(len(ds))
	var sq float64
	for _, d := range ds {
		sq += (float64(d) - mean) * (float64(d) - mean)
	}
	s.Mean = time.Duration(mean)
	s.SD = 0
	if len(ds) > 1 {
		s.SD = time.Duration(math.Sqrt(sq / float64(len(ds)-1)))
	}
	return s
}

// Median returns the middle value of ds (the mean of the two middle values
// for an even count), or 0 for an empty slice. ds is not modified.
func Median(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	m := len(s) / 2
	if len(s)%2 == 1 {
		return s[m]
	}
	return (s[m-1] + s[m]) / 2
}

// Ms formats d in milliseconds with a precision that suits its size:
// "0.123", "12.3", "1234".
func Ms(d time.Duration) string {
	ms := float64(d) / float64(time.Millisecond)
	switch a := math.Abs(ms); {
	case a == 0:
		return "0"
	case a < 1:
		return fmt.Sprintf("%.3f", ms)
	case a < 100:
		return fmt.Sprintf("%.1f", ms)
	}
	return fmt.Sprintf("%.0f", ms)
}

// Us formats d in microseconds: "87", "1234".
func Us(d time.Duration) string {
	return fmt.Sprintf("%.0f", float64(d)/float64(time.Microsecond))
}

// Ratio formats a/b as "1.23×", or "–" when b is zero.
func Ratio(a, b float64) string {
	if b == 0 || math.IsNaN(a) || math.IsNaN(b) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", a/b)
}

// Verdict is "met" when ok, else "missed".
func Verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "missed"
}
