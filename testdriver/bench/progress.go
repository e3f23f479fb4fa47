package bench

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
)

// Progress shows runs done and an ETA: a bar when stderr is a terminal,
// else one line per step.
type Progress struct {
	mu    sync.Mutex
	p     *mpb.Progress
	bar   *mpb.Bar
	total int
	done  int
	start time.Time
	w     io.Writer
	last  time.Time
}

// IsTerminal reports whether f is a character device.
func IsTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// NewProgress starts a progress display of total steps named name on
// stderr; quiet hides it entirely.
func NewProgress(name string, total int, quiet bool) *Progress {
	pr := &Progress{total: total, start: time.Now()}
	switch {
	case quiet:
	case IsTerminal(os.Stderr):
		pr.p = mpb.New(mpb.WithOutput(os.Stderr), mpb.WithWidth(40), mpb.WithAutoRefresh())
		pr.bar = pr.p.AddBar(int64(total),
			mpb.PrependDecorators(decor.Name(name+" ", decor.WCSyncSpaceR), decor.CountersNoUnit("%d/%d", decor.WCSyncWidth)),
			mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.Name(" ETA "), decor.EwmaETA(decor.ET_STYLE_GO, 30, decor.WCSyncWidth)),
		)
	default:
		pr.w = os.Stderr
	}
	return pr
}

// Step marks one step done; label says what it was.
func (pr *Progress) Step(label string) {
	pr.mu.Lock()
	defer pr.mu.Unlock()
	pr.done++
	now := time.Now()
	if pr.bar != nil {
		pr.bar.EwmaIncrement(now.Sub(later(pr.last, pr.start)))
	}
	if pr.w != nil {
		eta := time.Duration(0)
		if pr.done > 0 {
			eta = time.Duration(float64(now.Sub(pr.start)) / float64(pr.done) * float64(pr.total-pr.done))
		}
		fmt.Fprintf(pr.w, "[%d/%d] %s (ETA %v)\n", pr.done, pr.total, label, eta.Round(time.Second))
	}
	pr.last = now
}

// Log is where other lines go while the bar is shown.
func (pr *Progress) Log() io.Writer {
	if pr.p != nil {
		return pr.p
	}
	if pr.w != nil {
		return pr.w
	}
	return io.Discard
}

// Done removes the bar.
func (pr *Progress) Done() {
	if pr.bar != nil {
		pr.bar.Abort(false)
		pr.p.Wait()
	}
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
