// Package retry is zkv's one way of trying again.
//
// # The policy
//
// Every loop that retries a call to the leader, to NATS or to ZooKeeper
// pauses the same way: exponential backoff with jitter. The first pause is
// about Policy.Initial, each next one Policy.Multiplier times longer, each
// drawn at random within ±50% of its nominal value, and none longer than
// Policy.Max. A policy never gives up by itself: the loop's context, its
// deadline (Policy.Until) or an error marked Permanent ends the retries.
//
// Why: a failover or a ZooKeeper reconnect ends after a few round trips,
// so the first pauses are short and a client sees the new leader soon;
// a lasting outage must not be hammered, so the pauses grow; servers and
// clients that failed together must not retry in step, so they are
// jittered; and the cap keeps the wait after an outage ends short.
//
// The policies the loops use are the named variables below; a loop picks
// the one that names what it waits for, so the numbers live here alone.
//
// # The helper
//
// Do runs an operation under a policy, built on cenkalti/backoff's
// RetryNotify: it returns when the operation succeeds, returns an error
// marked with Permanent, the context ends, or the deadline would pass.
// Loops that wait on something else as well as on the pause (a ZooKeeper
// watch, a session event) cannot be one call: they take Policy.Backoff
// and pause themselves.
package retry

import (
	"context"
	"time"

	"github.com/cenkalti/backoff/v4"
)

// Policy is how long to pause between attempts. The zero Multiplier means
// 1.5. Initial and Max must be positive, Initial <= Max.
type Policy struct {
	// Initial is the nominal first pause.
	Initial time.Duration
	// Max caps every pause, jitter included.
	Max time.Duration
	// Multiplier is how much longer each pause is than the one before.
	Multiplier float64
	// Deadline, if set, ends the retries once the next pause would end
	// after it; Do then returns the operation's last error.
	Deadline time.Time
}

// The policies of zkv's loops.
var (
	// Leader is for a request to the leader while an election may be
	// under way (forwarded writes and reads): 20 ms to 500 ms, as a
	// failover takes a few ZooKeeper round trips.
	Leader = Policy{Initial: 20 * time.Millisecond, Max: 500 * time.Millisecond}
	// BusyLeader is for a request the leader refused because the budget it
	// needs is full (snapshot pages): 10 ms to 200 ms, as a budget frees
	// as soon as one request ends.
	BusyLeader = Policy{Initial: 10 * time.Millisecond, Max: 200 * time.Millisecond}
	// CatchUp is for copying the leader's store and asking it how far it
	// is: 100 ms to 2 s, as a failed catch-up is heavy and its cause (no
	// leader, a leader restarting) lasts.
	CatchUp = Policy{Initial: 100 * time.Millisecond, Max: 2 * time.Second}
	// ZooKeeper is for the election's calls to ZooKeeper and the leader's
	// announcement: 50 ms to 1 s, as go-zookeeper reconnects on its own
	// and the calls fail fast while it does.
	ZooKeeper = Policy{Initial: 50 * time.Millisecond, Max: time.Second}
)

// Until returns p with Deadline set to t.
func (p Policy) Until(t time.Time) Policy {
	p.Deadline = t
	return p
}

// Backoff returns a fresh backoff.BackOff that follows p, for loops that
// pause themselves. Its NextBackOff returns backoff.Stop only when the
// deadline would pass.
func (p Policy) Backoff() backoff.BackOff {
	mult := p.Multiplier
	if mult == 0 {
		mult = backoff.DefaultMultiplier
	}
	b := backoff.NewExponentialBackOff(
		backoff.WithInitialInterval(p.Initial),
		backoff.WithMaxInterval(p.Max),
		backoff.WithMultiplier(mult),
		backoff.WithRandomizationFactor(backoff.DefaultRandomizationFactor),
		backoff.WithMaxElapsedTime(0),
	)
	return &capped{ExponentialBackOff: b, max: p.Max, deadline: p.Deadline}
}

// capped keeps jittered pauses at or below max (backoff alone lets them
// reach 1.5 × MaxInterval) and stops before the deadline.
type capped struct {
	*backoff.ExponentialBackOff
	max      time.Duration
	deadline time.Time
}

func (c *capped) NextBackOff() time.Duration {
	d := min(c.ExponentialBackOff.NextBackOff(), c.max)
	if !c.deadline.IsZero() && time.Now().Add(d).After(c.deadline) {
		return backoff.Stop
	}
	return d
}

// Do calls op, and again after a pause each time it fails, until it
// returns nil or an error marked with Permanent, ctx ends, or the next
// pause would pass p.Deadline. Before each pause it calls notify (if not
// nil) with op's error and the pause. Do blocks; op runs on the caller's
// goroutine, at least once even if ctx has already ended. It returns nil, the permanent error (unwrapped), ctx.Err()
// once ctx has ended, or op's last error when the deadline stopped it.
func Do(ctx context.Context, p Policy, op func() error, notify func(err error, next time.Duration)) error {
	return backoff.RetryNotify(op, backoff.WithContext(p.Backoff(), ctx), notify)
}

// Permanent marks err so that Do returns it (unwrapped) at once instead
// of retrying.
func Permanent(err error) error { return backoff.Permanent(err) }
