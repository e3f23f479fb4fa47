package retry

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cenkalti/backoff/v4"
)

var errAgain = errors.New("again")

// fast pauses for about a millisecond, so the tests need not wait.
var fast = Policy{Initial: time.Millisecond, Max: time.Millisecond}

func TestDo(t *testing.T) {
	errStop := errors.New("stop")
	tests := []struct {
		name     string
		fails    int   // attempts that fail with errAgain before the last
		last     error // the last attempt's error
		wantErr  error
		wantRuns int
	}{
		{name: "first try", last: nil, wantRuns: 1},
		{name: "after failures", fails: 3, last: nil, wantRuns: 4},
		{name: "permanent", fails: 2, last: Permanent(errStop), wantErr: errStop, wantRuns: 3},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			runs, notified := 0, 0
			err := Do(context.Background(), fast, func() error {
				runs++
				if runs <= tt.fails {
					return errAgain
				}
				return tt.last
			}, func(err error, next time.Duration) {
				notified++
				if !errors.Is(err, errAgain) || next <= 0 || next > fast.Max {
					t.Errorf("notify(%v, %v): want errAgain and a pause in (0, %v]", err, next, fast.Max)
				}
			})
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil && err != nil) {
				t.Fatalf("Do = %v, want %v", err, tt.wantErr)
			}
			var perm *backoff.PermanentError
			if errors.As(err, &perm) {
				t.Errorf("Do returned the permanent wrapper %v, want the error inside", err)
			}
			if runs != tt.wantRuns || notified != tt.fails {
				t.Errorf("runs %d, notified %d; want %d and %d", runs, notified, tt.wantRuns, tt.fails)
			}
		})
	}
}

func TestDoStopsWhenContextEnds(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	runs := 0
	err := Do(ctx, fast, func() error {
		runs++
		if runs == 3 {
			cancel()
		}
		return errAgain
	}, nil)
	if !errors.Is(err, context.Canceled) || runs != 3 {
		t.Fatalf("Do = %v after %d runs, want context.Canceled after 3", err, runs)
	}
}

func TestDoStopsAtDeadline(t *testing.T) {
	// A deadline already passed lets the first attempt run and no pause.
	runs := 0
	err := Do(context.Background(), fast.Until(time.Now()), func() error { runs++; return errAgain }, func(error, time.Duration) {
		t.Error("notify called although the deadline had passed")
	})
	if !errors.Is(err, errAgain) || runs != 1 {
		t.Fatalf("Do = %v after %d runs, want errAgain after 1", err, runs)
	}
}

func TestBackoffPauses(t *testing.T) {
	for _, p := range []Policy{Leader, BusyLeader, CatchUp, ZooKeeper, {Initial: time.Millisecond, Max: 8 * time.Millisecond, Multiplier: 2}} {
		b := p.Backoff()
		lo := time.Duration(float64(p.Initial) * (1 - backoff.DefaultRandomizationFactor))
		var d time.Duration
		for i := 0; i < 50; i++ {
			d = b.NextBackOff()
			if d < lo || d > p.Max {
				t.Fatalf("policy %+v: pause %d is %v, want within [%v, %v]", p, i, d, lo, p.Max)
			}
		}
		if d < p.Max/2 {
			t.Errorf("policy %+v: pause after 50 attempts is %v, want near %v", p, d, p.Max)
		}
		b.Reset()
		if d := b.NextBackOff(); d > time.Duration(float64(p.Initial)*(1+backoff.DefaultRandomizationFactor)) {
			t.Errorf("policy %+v: first pause after Reset is %v, want about %v", p, d, p.Initial)
		}
	}
}
