package bus

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"zkv/internal/retry"
)

// Defaults of a Client.
const (
	// DefaultRequestTimeout bounds one NATS request of a Client.
	DefaultRequestTimeout = 2 * time.Second
	// DefaultRetryInitial is the first pause between two attempts.
	DefaultRetryInitial = 20 * time.Millisecond
	// DefaultRetryMax is the longest pause between two attempts.
	DefaultRetryMax = 500 * time.Millisecond
	// DefaultWatchBuffer is how many updates Watch holds for a slow consumer
	// before it drops them.
	DefaultWatchBuffer = 256
)

// Metadata keys a node sets on its NATS micro service (NodeServiceName).
const (
	// MetadataNode holds the node's ID.
	MetadataNode = "node"
	// MetadataPrefix, if set, holds the node's subject prefix; Client.Nodes
	// then ignores nodes of other prefixes.
	MetadataPrefix = "prefix"
)

// RoleUnreachable is the Role Client.Statuses reports for a node that was
// discovered but did not answer its status request. No node reports it
// about itself.
const RoleUnreachable = "unreachable"

// discoveryQuiet is how long Nodes waits for one more answer after the last.
const discoveryQuiet = 250 * time.Millisecond

// statusConcurrency bounds the status requests Statuses has in flight.
const statusConcurrency = 8

// ErrInvalidOption is returned by NewClient for an unusable option or
// connection.
var ErrInvalidOption = errors.New("invalid client option")

// ClientOption configures a Client; see the With functions.
type ClientOption func(*clientOptions) error

type clientOptions struct {
	prefix         string
	requestTimeout time.Duration
	retryInitial   time.Duration
	retryMax       time.Duration
	watchBuffer    int
	discoveryQuiet time.Duration

	// onAttempt, if set, is called after every request attempt.
	onAttempt func(subject string, attempt int, err error)
	// onWatchMsg, if set, is called after Watch handled one message; it
	// reports whether the message was delivered.
	onWatchMsg func(delivered bool)
}

// WithPrefix sets the subject prefix of the cluster (default DefaultPrefix).
func WithPrefix(p string) ClientOption {
	return func(o *clientOptions) error {
		if err := ValidPrefix(p); err != nil {
			return fmt.Errorf("%w: %w", ErrInvalidOption, err)
		}
		o.prefix = p
		return nil
	}
}

// WithRequestTimeout bounds each single NATS request (default
// DefaultRequestTimeout). The context of a call bounds the whole call,
// retries included.
func WithRequestTimeout(d time.Duration) ClientOption {
	return func(o *clientOptions) error {
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
func WithRetryBackoff(initial, max time.Duration) ClientOption {
	return func(o *clientOptions) error {
		if initial <= 0 || max < initial {
			return fmt.Errorf("%w: retry backoff %v..%v: want 0 < initial <= max", ErrInvalidOption, initial, max)
		}
		o.retryInitial, o.retryMax = initial, max
		return nil
	}
}

// Client speaks zkv's wire protocol over a NATS connection. It is safe for
// concurrent use. It does not own the connection: closing it is the
// caller's business.
type Client struct {
	nc       *nats.Conn
	subjects Subjects
	opts     clientOptions
	dropped  atomic.Uint64
}

// NewClient returns a Client that sends requests over nc.
func NewClient(nc *nats.Conn, opts ...ClientOption) (*Client, error) {
	if nc == nil {
		return nil, fmt.Errorf("%w: nil NATS connection", ErrInvalidOption)
	}
	o := clientOptions{
		prefix:         DefaultPrefix,
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
	return &Client{nc: nc, subjects: Subjects{Prefix: o.prefix}, opts: o}, nil
}

// Subjects returns the subjects of the client's cluster.
func (c *Client) Subjects() Subjects { return c.subjects }

// Dropped is the number of updates Watch channels of this client discarded
// because their consumer did not keep up.
func (c *Client) Dropped() uint64 { return c.dropped.Load() }

// opKind tells what a failed request maps "no responders" to.
type opKind int

const (
	opWrite opKind = iota // nobody answers: no leader
	opRead                // nobody answers: the node(s) are unavailable
)

// Put writes value under key through Subjects.Write, which the leader
// answers.
//
// Each attempt is one request, bounded by the request timeout and ctx. Put
// retries with backoff, until ctx is done, when no leader answers, a request
// times out, or the reply is not_leader, no_leader or unavailable; any
// other error reply (bad_request, invalid_key, value_too_large, timeout,
// internal, and conflict or exists for a conditional write) is returned at once, as an error matching its sentinel. When
// ctx ends, the last error is returned wrapped; if nobody answered, the
// error matches ErrNoLeader, and ErrTimeout if replies timed out.
//
// Every call sends a fresh random request ID, so a retry after a lost reply
// (a timeout) is applied once: the leader, or a new leader after a
// failover, answers it with the first reply (WriteReply.Duplicate set).
func (c *Client) Put(ctx context.Context, key, value string, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Key: key, Value: value}, opts)
}

// GetOption changes one read.
type GetOption func(*ReadRequest)

// WithLeaderRead asks for the leader's answer at its current epoch.
func WithLeaderRead() GetOption {
	return func(r *ReadRequest) { r.Consistency = ConsistencyLeader }
}

// WithMinRevision asks the node to answer once it has applied rev, waiting
// up to wait (0: the server's default); otherwise the error matches
// ErrStale.
func WithMinRevision(rev uint64, wait time.Duration) GetOption {
	return func(r *ReadRequest) {
		r.Consistency, r.MinRevision, r.WaitMS = ConsistencyMinRevision, rev, int(wait/time.Millisecond)
	}
}

// PutOption changes one write.
type PutOption func(*WriteRequest)

// WithAcks asks the leader to hold the write to level (AcksLeader,
// AcksMajority or AcksAll) instead of the server's default.
func WithAcks(level string) PutOption { return func(w *WriteRequest) { w.Acks = level } }

// WithIfRevision makes a Put or Delete conditional: the key's revision
// must be rev (0: the key must not exist), or the error matches
// ErrConflict and carries the key's revision (Error.CurrentRevision).
func WithIfRevision(rev uint64) PutOption { return func(w *WriteRequest) { w.IfRevision = &rev } }

// Delete removes key through Subjects.Write, retrying like Put. Deleting a
// key that does not exist succeeds with WriteReply.Deleted false.
func (c *Client) Delete(ctx context.Context, key string, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Op: OpDelete, Key: key}, opts)
}

// Create writes value under key only if the key does not exist; otherwise
// the error matches ErrExists and carries the key's revision. It retries
// like Put: a retry of a create that was applied gets its first reply, not
// ErrExists.
func (c *Client) Create(ctx context.Context, key, value string, opts ...PutOption) (WriteReply, error) {
	return c.write(ctx, opWrite, c.subjects.Write(), WriteRequest{Op: OpCreate, Key: key, Value: value}, opts)
}

// PutVia writes value under key through node's Subjects.NodeWrite; the node
// forwards the write to the leader. It retries like Put. When the node does
// not answer until ctx is done, the error matches ErrUnavailable (not
// ErrNoLeader: the node, not the leader, is missing; a node that cannot
// reach the leader answers no_leader itself).
func (c *Client) PutVia(ctx context.Context, node, key, value string, opts ...PutOption) (WriteReply, error) {
	return c.WriteVia(ctx, node, WriteRequest{Key: key, Value: value}, opts...)
}

// WriteVia sends req (a put, delete or create; its request ID is replaced
// by a fresh one) through node's Subjects.NodeWrite, retrying like PutVia.
func (c *Client) WriteVia(ctx context.Context, node string, req WriteRequest, opts ...PutOption) (WriteReply, error) {
	if err := validNode(node); err != nil {
		return WriteReply{}, err
	}
	return c.write(ctx, opRead, c.subjects.NodeWrite(node), req, opts)
}

// write sends req through subject with a fresh request ID; kind says what
// nobody answering means.
func (c *Client) write(ctx context.Context, kind opKind, subject string, req WriteRequest, opts []PutOption) (WriteReply, error) {
	req.RequestID = NewRequestID()
	for _, o := range opts {
		o(&req)
	}
	if err := req.Validate(); err != nil {
		return WriteReply{}, err
	}
	var reply WriteReply
	err := c.request(ctx, kind, subject, Encode(req), func(data []byte) error {
		reply = WriteReply{}
		if err := DecodeReply(data, &reply); err != nil {
			return err
		}
		if !reply.OK {
			return Errorf(CodeInternal, "write reply on %s is not ok: %s", subject, truncate(data, 80))
		}
		return nil
	})
	if err != nil {
		return WriteReply{}, err
	}
	return reply, nil
}

// Get reads key from one node's copy, which may be stale: from any one node
// (Subjects.Read) if node is "", else from node (Subjects.NodeRead). A
// missing key is not an error: the reply has Found false. Get retries like
// Put, and also on a stale answer to a WithMinRevision read; when nobody
// answers until ctx is done, the error matches ErrUnavailable.
func (c *Client) Get(ctx context.Context, node, key string, opts ...GetOption) (ReadReply, error) {
	req := ReadRequest{Key: key}
	for _, o := range opts {
		o(&req)
	}
	if err := req.Validate(); err != nil {
		return ReadReply{}, err
	}
	subject := c.subjects.Read()
	if node != "" {
		if err := validNode(node); err != nil {
			return ReadReply{}, err
		}
		subject = c.subjects.NodeRead(node)
	}
	var reply ReadReply
	err := c.request(ctx, opRead, subject, Encode(req), func(data []byte) error {
		reply = ReadReply{}
		return DecodeReply(data, &reply)
	})
	if err != nil {
		return ReadReply{}, err
	}
	return reply, nil
}

// Status asks node for its status on Subjects.NodeStatus, with an empty
// request body. It retries like Get.
func (c *Client) Status(ctx context.Context, node string) (Status, error) {
	if err := validNode(node); err != nil {
		return Status{}, err
	}
	subject := c.subjects.NodeStatus(node)
	var st Status
	err := c.request(ctx, opRead, subject, nil, func(data []byte) error {
		st = Status{}
		return DecodeReply(data, &st)
	})
	if err != nil {
		return Status{}, err
	}
	return st, nil
}

// Nodes discovers the nodes of the cluster: it pings the NATS micro service
// NodeServiceName and collects the MetadataNode of every answer. It waits up
// to the request timeout for the first answer, then until no more answers
// come for a short quiet period, or until ctx is done. Answers whose
// MetadataPrefix is set and differs from the client's prefix are ignored.
// It returns the sorted, unique IDs, or an error matching ErrUnavailable if
// no node answered.
func (c *Client) Nodes(ctx context.Context) ([]string, error) {
	subject, err := micro.ControlSubject(micro.PingVerb, NodeServiceName, "")
	if err != nil {
		return nil, fmt.Errorf("%w: ping subject: %w", ErrInternal, err)
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
			// No responders: nobody serves NodeServiceName.
			if ctx.Err() != nil || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, nats.ErrNoResponders) {
				break
			}
			return nil, fmt.Errorf("discover nodes on %s: %w", subject, err)
		}
		wait = c.opts.discoveryQuiet
		var ping micro.Ping
		if err := json.Unmarshal(msg.Data, &ping); err != nil || ping.Name != NodeServiceName {
			continue
		}
		if p := ping.Metadata[MetadataPrefix]; p != "" && p != c.subjects.p() {
			continue
		}
		if id := ping.Metadata[MetadataNode]; ValidNodeID(id) == nil {
			seen[id] = true
		}
	}
	if len(seen) == 0 {
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("%w: no node answered on %s: %w", ErrUnavailable, subject, err)
		}
		return nil, fmt.Errorf("%w: no node answered on %s", ErrUnavailable, subject)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Statuses discovers the nodes with Nodes and asks each for its Status,
// a few at a time, each for at most the request timeout (retries
// included). A node that does not answer gets an entry with Role
// RoleUnreachable. The result is sorted by node ID. It fails only if
// discovery fails.
func (c *Client) Statuses(ctx context.Context) ([]Status, error) {
	ids, err := c.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]Status, len(ids))
	sem := make(chan struct{}, statusConcurrency)
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() {
			sem <- struct{}{}
			defer func() { <-sem }()
			sctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
			defer cancel()
			st, err := c.Status(sctx, id)
			if err != nil {
				st = Status{Node: id, Role: RoleUnreachable}
			}
			if st.Node == "" {
				st.Node = id
			}
			out[i] = st
		})
	}
	wg.Wait()
	slices.SortFunc(out, func(a, b Status) int { return cmp.Compare(a.Node, b.Node) })
	return out, nil
}

// Watch subscribes to Subjects.Replication and delivers the updates: puts of
// key (every put if key is "") and every epoch marker. Messages that do not
// decode as an Update are skipped; fields unknown to this client are
// ignored, so a client reads a newer server's stream. When Watch returns, the
// subscription is registered with the server.
//
// The channel is closed when ctx is done or the subscription ends (the
// connection closed, say). It holds DefaultWatchBuffer updates; if the
// consumer falls further behind, updates are dropped and counted in Dropped,
// so a slow consumer never stalls the connection.
func (c *Client) Watch(ctx context.Context, key string) (<-chan Update, error) {
	if key != "" {
		if err := ValidateKey(key); err != nil {
			return nil, err
		}
	}
	subject := c.subjects.Replication()
	out := make(chan Update, c.opts.watchBuffer)

	// The callback sends only while the channel is open; the owner closes it
	// under the same lock, so no send can follow the close.
	var (
		mu     sync.Mutex
		closed bool
	)
	handle := func(m *nats.Msg) {
		var u Update
		if !decodeStreamUpdate(m.Data, &u) {
			return
		}
		if key != "" && (u.Kind == KindPut || u.Kind == KindDelete) && u.Key != key {
			return
		}
		mu.Lock()
		delivered := false
		if !closed {
			select {
			case out <- u:
				delivered = true
			default:
				c.dropped.Add(1)
			}
		}
		mu.Unlock()
		if c.opts.onWatchMsg != nil {
			c.opts.onWatchMsg(delivered)
		}
	}

	// Listen for the connection closing before subscribing, so a close
	// between the two is not missed.
	connClosed := c.nc.StatusChanged(nats.CLOSED)
	sub, err := c.nc.Subscribe(subject, handle)
	if err != nil {
		c.nc.RemoveStatusListener(connClosed)
		return nil, fmt.Errorf("watch %s: %w", subject, err)
	}
	subClosed := sub.StatusChanged(nats.SubscriptionClosed)
	fctx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	err = c.nc.FlushWithContext(fctx)
	cancel()
	if err != nil {
		_ = sub.Unsubscribe()
		c.nc.RemoveStatusListener(connClosed)
		return nil, fmt.Errorf("watch %s: flush: %w", subject, err)
	}

	go func() {
		select {
		case <-ctx.Done():
		case <-subClosed:
		case <-connClosed:
		}
		_ = sub.Unsubscribe()
		c.nc.RemoveStatusListener(connClosed)
		mu.Lock()
		closed = true
		close(out)
		mu.Unlock()
	}()
	return out, nil
}

// request sends body to subject and hands each reply to decode, retrying
// as the package documents on Put until ctx is done.
func (c *Client) request(ctx context.Context, kind opKind, subject string, body []byte, decode func([]byte) error) error {
	var last, fatal error
	attempt := 0
	if ctx.Err() == nil {
		err := retry.Do(ctx, retry.Policy{Initial: c.opts.retryInitial, Max: c.opts.retryMax, Multiplier: 2}, func() error {
			if ctx.Err() != nil {
				return retry.Permanent(ctx.Err()) // ended during the pause: no attempt
			}
			attempt++
			err := c.attempt(ctx, subject, body, decode)
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
func (c *Client) attempt(ctx context.Context, subject string, body []byte, decode func([]byte) error) error {
	actx, cancel := context.WithTimeout(ctx, c.opts.requestTimeout)
	defer cancel()
	msg, err := c.nc.RequestWithContext(actx, subject, body)
	switch {
	case err == nil:
		return decode(msg.Data)
	case !errors.Is(err, context.DeadlineExceeded) && !errors.Is(err, context.Canceled):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	default: // this attempt's own timeout
		return fmt.Errorf("no reply on %s within %v: %w", subject, c.opts.requestTimeout, nats.ErrTimeout)
	}
}

// retryable reports whether a failed attempt is worth another.
func retryable(err error) bool {
	for _, target := range []error{nats.ErrNoResponders, nats.ErrTimeout, ErrNotLeader, ErrNoLeader, ErrUnavailable, ErrStale} {
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
		return fmt.Errorf("%w: no reply on %s (%d attempts): %w", ErrTimeout, subject, attempts, ctxErr)
	case last == nil || last == ctxErr:
		return fmt.Errorf("%s (%d attempts): %w", subject, attempts, ctxErr)
	case errors.Is(last, nats.ErrNoResponders):
		sentinel := ErrUnavailable
		if kind == opWrite {
			sentinel = ErrNoLeader
		}
		return fmt.Errorf("%w: nobody answered on %s (%d attempts): %w: %w", sentinel, subject, attempts, last, ctxErr)
	case errors.Is(last, nats.ErrTimeout), errors.Is(last, context.DeadlineExceeded):
		return fmt.Errorf("%w: no reply on %s (%d attempts): %w: %w", ErrTimeout, subject, attempts, last, ctxErr)
	default:
		return fmt.Errorf("%s (%d attempts): %w: %w", subject, attempts, last, ctxErr)
	}
}

// NewRequestID returns a random request ID for one write.
func NewRequestID() string {
	var b [16]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

// validNode checks a node ID before it goes into a subject.
func validNode(id string) error {
	if err := ValidNodeID(id); err != nil {
		return fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	return nil
}
