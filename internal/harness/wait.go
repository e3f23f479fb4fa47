package harness

import (
	"context"
	"fmt"
	"strings"
	"time"
)

// DefaultPollInterval is the interval between readiness probes.
const DefaultPollInterval = 25 * time.Millisecond

// WaitFor calls f, then again every interval, until f returns nil or ctx
// ends. When ctx ends first, it returns an error that wraps both ctx's error
// and the last error f returned, so errors.Is works on either. An interval
// of zero or less means DefaultPollInterval.
func WaitFor(ctx context.Context, interval time.Duration, f func() error) error {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	ticker := time.NewTicker(interval)
	defer ticker.Stop()
	for {
		err := f()
		if err == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w (last error: %w)", ctx.Err(), err)
		case <-ticker.C:
		}
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

// Sleep waits for d, or until ctx ends; it returns ctx's error in that
// case. It is the pause of every loop that Ctrl-C must stop.
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}
