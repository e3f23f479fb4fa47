package failover

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/nats-io/nats.go"
)

// Config tunes a Detector. The zero value of each field takes its default.
type Config struct {
	// Interval is the pause between two probes of the watched subject.
	// Default 3ms. Shorter detects sooner and costs the watched server
	// more requests (one empty reply each).
	Interval time.Duration
	// Window is how long an unbroken run of "no responders" must last
	// before the server is declared dead. Default 12ms. Too short risks
	// a takeover when a server's subscriptions blink (a reconnect of its
	// own); the fencing keeps that safe, but it costs a failover.
	Window time.Duration
	// MinProbes is the least number of "no responders" in the run, so a
	// run is never one stalled probe. Default 3.
	MinProbes int
	// Stable is how long the Detector's own connection must have been
	// connected since it last reconnected before a "no responders"
	// counts. Default 1s: after a NATS server restart every server
	// reconnects and subscribes again within this. A connection that
	// never reconnected (its first connect was no restart) counts as
	// stable from the start.
	Stable time.Duration
	// Timeout bounds one probe; a probe that times out (a paused or slow
	// server) ends the run. A probe in flight when the process dies gets
	// no answer at all, so this also delays the first "no responders".
	// Default 10ms.
	Timeout time.Duration
	// Logger receives what the Detector concludes. Default slog.Default().
	Logger *slog.Logger
}

// DefaultConfig returns a Config with every default filled in.
func DefaultConfig() Config {
	return Config{
		Interval:  3 * time.Millisecond,
		Window:    12 * time.Millisecond,
		MinProbes: 3,
		Stable:    time.Second,
		Timeout:   10 * time.Millisecond,
	}
}

func (c *Config) setDefaults() {
	d := DefaultConfig()
	c.Interval = cmp.Or(c.Interval, d.Interval)
	c.Window = cmp.Or(c.Window, d.Window)
	c.MinProbes = cmp.Or(c.MinProbes, d.MinProbes)
	c.Stable = cmp.Or(c.Stable, d.Stable)
	c.Timeout = cmp.Or(c.Timeout, d.Timeout)
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
}

// Validate reports every problem with c, after defaults.
func (c Config) Validate() error {
	var errs []error
	if c.Interval < 0 || c.Window < 0 || c.Stable < 0 || c.Timeout < 0 {
		errs = append(errs, fmt.Errorf("probe interval %s, window %s, stable %s and timeout %s must not be negative",
			c.Interval, c.Window, c.Stable, c.Timeout))
	}
	if c.MinProbes < 0 {
		errs = append(errs, fmt.Errorf("min probes %d must not be negative", c.MinProbes))
	}
	if c.Window > 0 && c.Interval > c.Window {
		errs = append(errs, fmt.Errorf("probe interval %s must be <= window %s", c.Interval, c.Window))
	}
	return errors.Join(errs...)
}

// Death describes a declared death: the run of "no responders" and the
// witness that answered meanwhile.
type Death struct {
	Probes  int           // "no responders" answers in the run
	Span    time.Duration // from the first to the last of them
	Witness string        // the subject that answered during the run
}

// Detector probes a subject over one NATS connection. Create it with New;
// one Detector may Watch several times, one Watch at a time.
type Detector struct {
	nc  *nats.Conn
	cfg Config
	log *slog.Logger

	// The connection's stability, as the last probe saw it.
	reconnects  uint64
	stableSince time.Time // zero: not connected
}

// New returns a Detector probing over nc.
func New(nc *nats.Conn, cfg Config) (*Detector, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("failover config: %w", err)
	}
	if nc == nil {
		return nil, errors.New("failover: no NATS connection")
	}
	d := &Detector{nc: nc, cfg: cfg, log: cfg.Logger.With("component", "failover"), reconnects: nc.Stats().Reconnects}
	now := time.Now()
	if d.stable(now); d.reconnects == 0 && !d.stableSince.IsZero() {
		// Connected and never reconnected: its first connect was no NATS
		// restart.
		d.stableSince = now.Add(-cfg.Stable)
	}
	return d, nil
}

// outcome is what one probe found.
type outcome int

const (
	answered     outcome = iota // a reply: alive
	noResponders                // no subscriber: gone (if we are stable)
	inconclusive                // timeout or a connection problem
)

// probe sends one empty request to subject.
func (d *Detector) probe(ctx context.Context, subject string) outcome {
	pctx, cancel := context.WithTimeout(ctx, d.cfg.Timeout)
	defer cancel()
	_, err := d.nc.RequestWithContext(pctx, subject, nil)
	switch {
	case err == nil:
		return answered
	case errors.Is(err, nats.ErrNoResponders):
		return noResponders
	default:
		return inconclusive
	}
}

// stable reports whether the connection has been connected, without a
// reconnect, for Config.Stable.
func (d *Detector) stable(now time.Time) bool {
	rc := d.nc.Stats().Reconnects
	if d.nc.Status() != nats.CONNECTED || rc != d.reconnects {
		d.reconnects = rc
		d.stableSince = time.Time{}
		return false
	}
	if d.stableSince.IsZero() {
		d.stableSince = now
	}
	return now.Sub(d.stableSince) >= d.cfg.Stable
}

// Watch probes target every Interval until it declares the server behind
// it dead, and returns what it saw; or until ctx ends, and returns
// ctx.Err(). witnesses is called when a run is long enough and lists the
// subjects of other servers, one of which must answer before the death is
// declared; with none answering, the run is dropped and probing goes on.
// Watch blocks and uses no goroutine of its own.
func (d *Detector) Watch(ctx context.Context, target string, witnesses func() []string) (Death, error) {
	var (
		run   int
		first time.Time
	)
	tick := time.NewTicker(d.cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return Death{}, ctx.Err()
		case <-tick.C:
		}
		stable := d.stable(time.Now())
		o := d.probe(ctx, target)
		now := time.Now()
		if o != noResponders || !stable || !d.stable(now) {
			run = 0
			continue
		}
		if run == 0 {
			first = now
		}
		run++
		if run < d.cfg.MinProbes || now.Sub(first) < d.cfg.Window {
			continue
		}
		w := d.witness(ctx, witnesses)
		if w == "" {
			d.log.Debug("no witness answered: not declaring a death", "subject", target, "probes", run)
			run = 0
			continue
		}
		// The witness answered after the run began; one more look at the
		// target, so the run ends after the witness's answer.
		if d.probe(ctx, target) != noResponders || !d.stable(time.Now()) {
			run = 0
			continue
		}
		death := Death{Probes: run + 1, Span: time.Since(first), Witness: w}
		d.log.Info("server gone: no responders", "subject", target, "probes", death.Probes,
			"span", death.Span, "witness", w)
		return death, nil
	}
}

// witness returns the first of witnesses() that answers a probe, or "".
func (d *Detector) witness(ctx context.Context, witnesses func() []string) string {
	if witnesses == nil {
		return ""
	}
	for _, w := range witnesses() {
		if d.probe(ctx, w) == answered {
			return w
		}
	}
	return ""
}
