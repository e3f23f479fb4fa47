package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/retry"
)

// Version is this client's version, which it tells servers in the
// HeaderClient header of every request.
const Version = bus.ProtocolVersion

// HeaderClient is the header every request carries: "zkv-go/" + Version.
const HeaderClient = "Zkv-Client"

var clientHeader = "zkv-go/" + Version

// Defaults of a Client.
const (
	// DefaultRequestTimeout bounds one NATS request of a Client.
	DefaultRequestTimeout = 2 * time.Second
	// DefaultRetryInitial is the first pause between two attempts.
	DefaultRetryInitial = 20 * time.Millisecond
	// DefaultRetryMax is the longest pause between two attempts.
	DefaultRetryMax = 500 * time.Millisecond
	// DefaultWatchBuffer is how many updates a Watcher holds for its
	// consumer.
	DefaultWatchBuffer = 256
)

// RoleUnreachable is the Role Client.Statuses reports for a node that was
// discovered, or is a member of the election, but did not answer its
// status request. No node reports it
// about itself.
const RoleUnreachable = "unreachable"

// discoveryQuiet is how long Nodes waits for one more answer after the last.
const discoveryQuiet = 250 * time.Millisecond

// statusConcurrency bounds the status requests Statuses has in flight.
const statusConcurrency = 8

// Option configures a Client; see the With functions.
type Option func(*options) error

type options struct {
	prefix         string
	requestTimeout time.Duration
	retryInitial   time.Duration
	retryMax       time.Duration
	watchBuffer    int
	discoveryQuiet time.Duration
	natsOptions    []nats.Option

	// onAttempt, if set, is called after every request attempt.
	onAttempt func(subject string, attempt int, err error)
}

// WithPrefix sets the subject prefix of the cluster (kvserver
// --subject-prefix; default bus.DefaultPrefix).
func WithPrefix(p string) Option {
	return func(o *options) error {
		if err := bus.ValidPrefix(p); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
		o.prefix = p
		return nil
	}
}

// WithRequestTimeout bounds each single NATS request (default
// DefaultRequestTimeout). The context of a call bounds the whole call,
// retries included.
func WithRequestTimeout(d time.Duration) Option {
	return func(o *options) error {
		if d <= 0 {
			return fmt.Errorf("%w: request timeout %v is not positive", ErrInvalidOption, d)
		}
		o.requestTimeout = d
		return nil
	}
}

// WithRetryBackoff sets the pauses between attempts: they start around
// initial and double, with ±50% jitter, up to max (default
// DefaultRetryInitial to DefaultRetryMax).
func WithRetryBackoff(initial, max time.Duration) Option {
	return func(o *options) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("%w: retry backoff %v..%v: want 0 < initial <= max", ErrInvalidOption, initial, max)
		}
		o.retryInitial, o.retryMax = initial, max
		return nil
	}
}

// WithWatchBuffer sets how many updates a Watcher holds for its consumer
// (default DefaultWatchBuffer); a consumer further behind holds the
// watcher back, and what arrives meanwhile is fetched again, not lost.
func WithWatchBuffer(n int) Option {
	return func(o *options) error {
		if n < 1 {
			return fmt.Errorf("%w: watch buffer %d: want at least 1", ErrInvalidOption, n)
		}
		o.watchBuffer = n
		return nil
	}
}

// WithNATSOptions are passed to nats.Connect by Connect (a name,
// credentials, TLS...). New ignores them.
func WithNATSOptions(opts ...nats.Option) Option {
	return func(o *options) error {
		o.natsOptions = append(o.natsOptions, opts...)
		return nil
	}
}

// Client speaks zkv's wire protocol over a NATS connection. It is safe for
// concurrent use.
type Client struct {
	nc       *nats.Conn
	owned    bool // Connect made nc: Close closes it
	subjects bus.Subjects
	opts     options
	dropped  atomic.Uint64
}

// New returns a Client that sends requests over nc, an existing
// connection the caller keeps owning: Close leaves it open.
func New(nc *nats.Conn, opts ...Option) (*Client, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidOption)
	}
	o := options{
		prefix:         bus.DefaultPrefix,
		requestTimeout: DefaultRequestTimeout,
		retryInitial:   DefaultRetryInitial,
		retryMax:       DefaultRetryMax,
		watchBuffer:    DefaultWatchBuffer,
		discoveryQuiet: discoveryQuiet,
	}
	for _, opt := range opts {
		if opt == nil {
			continue
		}
		if err := opt(&o); err != nil {
			return nil, err
		}
	}
	return &Client{nc: nc, subjects: bus.Subjects{Prefix: o.prefix}, opts: o}, nil
}

// Connect connects to NATS at url (one URL, or several separated by
// commas: the servers of one NATS cluster) and returns a Client that owns
// the connection: Close closes it. The connection reconnects forever
// unless WithNATSOptions says otherwise.
func Connect(url string, opts ...Option) (*Client, error) {
	var o options
	for _, opt := range opts {
		if opt != nil {
			if err := opt(&o); err != nil {
				return nil, err
			}
		}
	}
	natsOpts := append([]nats.Option{nats.Name("zkv client " + Version), nats.MaxReconnects(-1)}, o.natsOptions...)
	nc, err := nats.Connect(url, natsOpts...)
	if err != nil {
		return nil, fmt.Errorf("%w: connect to NATS %s: %w", ErrUnavailable, url, err)
	}
	c, err := New(nc, opts...)
	if err != nil {
		nc.Close()
		return nil, err
	}
	c.owned = true
	return c, nil
}

// Close closes the NATS connection if Connect made it; a connection
// given to New is left to its owner. Watchers end when their connection
// closes.
func (c *Client) Close() {
	if c.owned {
		c.nc.Close()
	}
}

// Conn is the client's NATS connection.
func (c *Client) Conn() *nats.Conn { return c.nc }

// Subjects returns the subjects of the client's cluster.
func (c *Client) Subjects() bus.Subjects { return c.subjects }

// Dropped is the number of live updates this client's watchers dropped
// because they could not keep up, and fetched again from a server.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// opKind tells what a failed request maps "no responders" to.
type opKind int

const (
	opWrite opKind = iota // nobody answers: no leader
	opRead                // nobody answers: the node(s) are unavailable
)

// Status asks node for its status on bus.Subjects.NodeStatus, with an empty
// request body. It retries like Get.
func (c *Client) Status(ctx context.Context, node string) (bus.Status, error) {
	if err := validNode(node); err != nil {
		return bus.Status{}, err
	}
	subject := c.subjects.NodeStatus(node)
	var st bus.Status
	err := c.request(ctx, opRead, subject, nil, func(data []byte) error {
		st = bus.Status{}
		return bus.DecodeReply(data, &st)
	})
	if err != nil {
		return bus.Status{}, err
	}
	return st, nil
}

// Nodes discovers the nodes of the cluster: it pings the NATS micro service
// bus.NodeServiceName and collects the bus.MetadataNode of every answer. It waits up
// to the request timeout for the first answer, then until no more answers
// come for a short quiet period, or until ctx is done. Answers whose
// bus.MetadataPrefix is set and differs from the client's prefix are ignored.
// It returns the sorted, unique IDs, or an error matching bus.ErrUnavailable if
// no node answered.
func (c *Client) Nodes(ctx context.Context) ([]string, error) {
	subject, err := micro.ControlSubject(micro.PingVerb, bus.NodeServiceName, "")
	if err != nil {
		return nil, fmt.Errorf("%w: ping subject: %w", bus.ErrInternal, err)
	}
	inbox := c.nc.NewInbox()
	sub, err := c.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("discover nodes: subscribe: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := c.nc.PublishRequest(subject, inbox, nil); err != nil {
		return nil, fmt.Errorf("discover nodes: ping %s: %w", subject, err)
	}

	seen := make(map[string]bool)
	wait := c.opts.requestTimeout
	for {
		wctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			// No responders: nobody serves bus.NodeServiceName.
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) {
				break
			}
			return nil, fmt.Errorf("discover nodes on %s: %w", subject, err)
		}
		wait = c.opts.discoveryQuiet
		var ping micro.Ping
		if err := json.Unmarshal(msg.Data, &ping); err != nil || ping.Name != bus.NodeServiceName {
			continue
		}
		if p := ping.Metadata[bus.MetadataPrefix]; p != "" && p != c.subjects.Prefixed() {
			continue
		}
		if id := ping.Metadata[bus.MetadataNode]; bus.ValidNodeID(id) == nil {
			seen[id] = true
		}
	}
	if len(seen) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: no node answered on %s: %w", bus.ErrUnavailable, subject, err)
		}
		return nil, fmt.Errorf("%w: no node answered on %s", bus.ErrUnavailable, subject)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Statuses discovers the nodes with Nodes and asks each for its
// bus.Status with StatusesOf, so the members of the election the nodes
// report are asked too: a server that crashed, and so does not answer
// the discovery, is listed as RoleUnreachable while ZooKeeper still holds
// its election znode. The result is sorted by node ID. It fails only if
// discovery fails.
func (c *Client) Statuses(ctx context.Context) ([]bus.Status, error) {
	ids, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	return c.StatusesOf(ctx, ids), nil
}

// maxStatusNodes bounds the nodes StatusesOf asks, whatever the answers
// name.
const maxStatusNodes = 1024

// StatusesOf asks each node of ids for its bus.Status, a few at a time,
// each for at most the request timeout (retries included), and then, the
// same way, every member of the election (bus.Status.Members) an answer
// names that was not asked yet. A node that does not answer gets an entry
// with Role RoleUnreachable. The result is sorted by node ID, one entry
// per valid ID.
func (c *Client) StatusesOf(ctx context.Context, ids []string) []bus.Status {
	asked := make(map[string]bool)
	var out []bus.Status
	next := ids
	for len(next) > 0 {
		var batch []string
		for _, id := range next {
			if !asked[id] && validNode(id) == nil && len(asked) < maxStatusNodes {
				asked[id] = true
				batch = append(batch, id)
			}
		}
		got := c.statusesOnce(ctx, batch)
		out = append(out, got...)
		next = nil
		for _, st := range got {
			next = append(next, st.Members...)
		}
	}
	slices.SortFunc(out, func(a, b bus.Status) int { return cmp.Compare(a.Node, b.Node) })
	return out
}

// statusesOnce asks each of ids for its status in parallel, a few at a
// time.
func (c *Client) statusesOnce(ctx context.Context, ids []string) []bus.Status {
	out := make([]bus.Status, len(ids))
	sem := make(chan struct{}, statusConcurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
			defer cancel()
			st, err := c.Status(sctx, id)
			if st.Node == "" {
				st.Node = id
			}
			if err != nil || st.Node != id { // no answer, or another node's
				st = bus.Status{Node: id, Role: RoleUnreachable}
			}
			out[i] = st
		})
	}
	wg.Wait()
	return out
}

// request sends body to subject and hands each reply to decode, retrying
// as the package documents on Put until ctx is done.
func (c *Client) request(ctx context.Context, kind opKind, subject string, body []byte, decode func([]byte) error) error {
	return c.requestWithin(ctx, kind, subject, body, 0, decode)
}

// requestWithin is request whose attempts each wait extra longer for their
// reply (a long poll's wait).
func (c *Client) requestWithin(ctx context.Context, kind opKind, subject string, body []byte, extra time.Duration, decode func([]byte) error) error {
	var last, fatal error
	attempt := 0
	if ctx.Err() == nil {
		err := retry.Do(ctx, retry.Policy{Initial: c.opts.retryInitial, Max: c.opts.retryMax, Multiplier: 2}, func() error {
			if ctx.Err() != nil {
				return retry.Permanent(ctx.Err()) // ended during the pause: no attempt
			}
			attempt++
			err := c.attempt(ctx, subject, body, extra, decode)
			if c.opts.onAttempt != nil {
				c.opts.onAttempt(subject, attempt, err)
			}
			if err == nil {
				return nil
			}
			// An attempt cut short by ctx says less than the one before it.
			byCtx := ctx.Err() != nil && err == ctx.Err()
			if !byCtx && !retryable(err) {
				fatal = fmt.Errorf("%s: %w", subject, err)
				return retry.Permanent(fatal)
			}
			if !byCtx || last == nil {
				last = err
			}
			return err
		}, nil)
		switch {
		case err == nil:
			return nil
		case fatal != nil:
			return fatal
		}
	}
	return giveUp(ctx, kind, subject, attempt, last)
}

// attempt sends one request, bounded by the request timeout and ctx.
func (c *Client) attempt(ctx context.Context, subject string, body []byte, extra time.Duration, decode func([]byte) error) error {
	actx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout+extra)
	defer cancel()
	msg, err := c.nc.RequestMsgWithContext(actx, &nats.Msg{Subject: subject, Data: body, Header: nats.Header{HeaderClient: []string{clientHeader}}})
	switch {
	case err == nil:
		return decode(msg.Data)
	case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	default: // this attempt's own timeout
		return fmt.Errorf("no reply on %s within %v: %w", subject, c.opts.requestTimeout+extra, nats.ErrTimeout)
	}
}

// retryable reports whether a failed attempt is worth another.
func retryable(err error) bool {
	for _, target := range []error{nats.ErrNoResponders, nats.ErrTimeout, bus.ErrNotLeader, bus.ErrNoLeader, bus.ErrUnavailable, bus.ErrStale} {
		if errors.Is(err, target) {
			return true
		}
	}
	return false
}

// giveUp builds the error of a call whose ctx ended: it wraps the last
// attempt's error, and the ctx error, under the sentinel the outcome means.
func giveUp(ctx context.Context, kind opKind, subject string, attempts int, last error) error {
	ctxErr := ctx.Err()
	switch {
	case (last == nil || last == ctxErr) && errors.Is(ctxErr, context.DeadlineExceeded):
		return fmt.Errorf("%w: no reply on %s (%d attempts): %w", bus.ErrTimeout, subject, attempts, ctxErr)
	case last == nil || last == ctxErr:
		return fmt.Errorf("%s (%d attempts): %w", subject, attempts, ctxErr)
	case errors.Is(last, nats.ErrNoResponders):
		sentinel := bus.ErrUnavailable
		if kind == opWrite {
			sentinel = bus.ErrNoLeader
		}
		return fmt.Errorf("%w: nobody answered on %s (%d attempts): %w: %w", sentinel, subject, attempts, last, ctxErr)
	case errors.Is(last, nats.ErrTimeout), errors.Is(last, context.DeadlineExceeded):
		return fmt.Errorf("%w: no reply on %s (%d attempts): %w: %w", bus.ErrTimeout, subject, attempts, last, ctxErr)
	default:
		return fmt.Errorf("%s (%d attempts): %w: %w", subject, attempts, last, ctxErr)
	}
}

// validNode checks a node ID before it goes into a subject.
func validNode(id string) error {
	if err := bus.ValidNodeID(id); err != nil {
		return fmt.Errorf("%w: %w", bus.ErrBadRequest, err)
	}
	return nil
}
