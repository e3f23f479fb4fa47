package chaos

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
)

// client is one recording client: its own NATS connection and client.Client.
type loader struct {
	e    *runEnv
	id   int
	nc   *nats.Conn
	bc   *client.Client
	subj bus.Subjects
	seq  atomic.Int64
	// mine is the client's last acknowledged write of each key, for
	// read-your-writes reads.
	mine map[string]Op
	// seen is the revision of each key the client last read or was told
	// (0: absent), for its compare-and-sets.
	seen map[string]uint64
}

// Timeouts of the clients, derived from the servers' settings.
func (e *runEnv) writeAttemptTimeout() time.Duration {
	return e.s.cfg.WriteTimeout + 1500*time.Millisecond
}

// writeDeadline bounds one logical write, all attempts included: long
// enough to ride out a failover (a session timeout and an election).
func (e *runEnv) writeDeadline() time.Duration {
	return max(8*time.Second, 2*e.opts.session+e.s.cfg.WriteTimeout+2*time.Second)
}

const (
	leaderReadDeadline = 3 * time.Second
	localReadDeadline  = 1500 * time.Millisecond
	// minRevisionWait is the wait_ms of a min_revision read: below the
	// client's request timeout, so a "stale" answer arrives before it.
	minRevisionWait = 500 * time.Millisecond
)

func (e *runEnv) newClient(id int) (*loader, error) {
	nc, err := e.connect(fmt.Sprintf("client %d", id))
	if err != nil {
		return nil, err
	}
	bc, err := client.New(nc, client.WithPrefix(e.prefix), client.WithRequestTimeout(time.Second), client.WithRetryBackoff(20*time.Millisecond, 250*time.Millisecond))
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &loader{e: e, id: id, nc: nc, bc: bc, subj: bc.Subjects(), mine: map[string]Op{}, seen: map[string]uint64{}}, nil
}

func (c *loader) close() { c.nc.Close() }

// nextValue returns a value no other write of the run uses.
func (c *loader) nextValue() string {
	return fmt.Sprintf("c%d-%d", c.id, c.seq.Add(1))
}

// put writes value under key on the leader subject, with one request ID
// for every attempt, retrying until the write deadline, and records the
// operation with the outcome the package documentation defines.
func (c *loader) put(key, value, acks string) Op {
	return c.putWithin(key, value, acks, c.e.writeDeadline())
}

// putWithin is put with its own deadline for all attempts.
func (c *loader) putWithin(key, value, acks string, within time.Duration) Op {
	return c.write(bus.WriteRequest{Key: key, Value: value, Acks: acks}, "", within)
}

// write sends req (a put, create or delete, conditional or not) on the
// leader subject, or on via's node write subject, with one request ID for
// every attempt, retrying until within has passed, and records it. A
// conflict or exists answer is final: the write applied nothing (a retry
// of an applied write gets its first reply, never a refusal caused by
// itself). Through a node, every other error answer is ambiguous: the
// node retries the leader itself, and its last answer does not tell
// whether an earlier attempt applied.
func (c *loader) write(req bus.WriteRequest, via string, within time.Duration) Op {
	h := c.e.hist
	kind := OpPut
	switch req.Op {
	case bus.OpCreate:
		kind = OpCreate
	case bus.OpDelete:
		kind = OpDelete
	}
	tag := req.Value
	if kind == OpDelete {
		tag = "del" + c.nextValue()
	}
	req.RequestID = fmt.Sprintf("%s-%d-%s", c.e.tag, c.id, tag)
	body := bus.Encode(req)
	subject := c.subj.Write()
	if via != "" {
		subject = c.subj.NodeWrite(via)
	}
	op := Op{Client: c.id, Kind: kind, Key: req.Key, Value: req.Value, IfRevision: req.IfRevision, Via: via, Invoke: h.Now(),
		TTL: time.Duration(req.TTLMS) * time.Millisecond}
	deadline := time.Now().Add(within)
	unknown := false
	pause := 20 * time.Millisecond
	for {
		op.Attempts++
		ctx, cancel := context.WithTimeout(c.e.ctx, min(c.e.writeAttemptTimeout(), max(time.Until(deadline), 100*time.Millisecond)))
		msg, err := c.nc.RequestWithContext(ctx, subject, body)
		cancel()
		retry := true
		switch {
		case err == nil:
			var reply bus.WriteReply
			derr := bus.DecodeReply(msg.Data, &reply)
			if derr == nil && reply.OK {
				op.Return, op.Outcome = h.Now(), OK
				op.Revision, op.Epoch, op.Leader, op.Duplicate = reply.Revision, reply.Epoch, reply.Leader, reply.Duplicate
				op.Members, op.Confirmed, op.Deleted = reply.Members, reply.Confirmed, reply.Deleted
				op.Code, op.Err = "", ""
				return h.Add(op)
			}
			var be *bus.Error
			if errors.As(derr, &be) {
				op.Code, op.Err = string(be.Code), be.Message
				if be.Code == bus.CodeConflict || be.Code == bus.CodeExists {
					op.Revision, _ = be.CurrentRevision()
					op.Return, op.Outcome = h.Now(), Failed
					return h.Add(op)
				}
				if via != "" || !notApplied(be) {
					unknown = true
				}
				retry = retryableCode(be.Code) && !uncheckable(be)
			} else {
				op.Code, op.Err, unknown = "bad_reply", fmt.Sprintf("%v: %.80q", derr, msg.Data), true
			}
		case errors.Is(err, nats.ErrNoResponders):
			op.Code, op.Err = "no_responders", err.Error()
		case errors.Is(err, nats.ErrConnectionClosed):
			op.Code, op.Err, retry = "closed", err.Error(), false
		default:
			// No answer: the request may have been delivered and applied.
			op.Code, op.Err, unknown = "no_reply", err.Error(), true
		}
		if !retry || time.Now().Add(pause).After(deadline) || harness.Sleep(c.e.ctx, pause) != nil {
			break
		}
		pause = min(2*pause, 250*time.Millisecond)
	}
	op.Return, op.Outcome = h.Now(), Failed
	if unknown {
		op.Outcome = Ambiguous
	}
	return h.Add(op)
}

// notApplied reports whether an error answer to a write on the leader
// subject proves that this attempt did not apply it. not_leader is given
// both before applying and after (when the lease ran out during the write);
// only the messages of the former count.
func notApplied(e *bus.Error) bool {
	switch e.Code {
	case bus.CodeBadRequest, bus.CodeInvalidKey, bus.CodeValueTooLarge:
		return !strings.Contains(e.Message, "request_id")
	case bus.CodeUnavailable:
		return strings.Contains(e.Message, "nothing was applied")
	case bus.CodeNotLeader:
		m := e.Message
		return strings.Contains(m, "is not the leader") ||
			strings.Contains(m, "cannot confirm its ZooKeeper session") ||
			(strings.Contains(m, "a newer epoch") && strings.Contains(m, "exists"))
	}
	return false
}

// uncheckable reports whether e is a leader's refusal of a create or
// if_revision for the rest of its epoch (it took over without revisions
// the cluster may have acknowledged): retrying it is of no use.
func uncheckable(e *bus.Error) bool {
	return e.Code == bus.CodeUnavailable && strings.Contains(e.Message, "cannot check create or if_revision")
}

// retryableCode reports whether a write answered with code is tried again.
func retryableCode(c bus.Code) bool {
	switch c {
	case bus.CodeNotLeader, bus.CodeNoLeader, bus.CodeUnavailable, bus.CodeTimeout, bus.CodeStale:
		return true
	}
	return false
}

// errCode names the error of a failed read.
func errCode(err error) string {
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return "no_responders"
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, nats.ErrTimeout):
		if e := bus.AsError(err); e.Code != bus.CodeInternal {
			return string(e.Code)
		}
		return "no_reply"
	}
	return string(bus.AsError(err).Code)
}

// leaderGet reads key with consistency=leader through any node.
func (c *loader) leaderGet(key string) Op {
	h := c.e.hist
	op := Op{Client: c.id, Kind: OpGet, Key: key, Invoke: h.Now()}
	ctx, cancel := context.WithTimeout(c.e.ctx, leaderReadDeadline)
	r, err := c.bc.Read(ctx, key, client.WithLeaderRead())
	cancel()
	op.Return = h.Now()
	return h.Add(readOp(op, r, err))
}

// ownGet reads key from node's copy once it has applied the client's own
// last acknowledged write of key (consistency=min_revision).
func (c *loader) ownGet(node, key string) (Op, bool) {
	w, ok := c.mine[key]
	if !ok {
		return Op{}, false
	}
	return c.minRevGet(node, key, w.Revision), true
}

// minRevGet reads key from node's copy once it has applied rev.
func (c *loader) minRevGet(node, key string, rev uint64) Op {
	h := c.e.hist
	op := Op{Client: c.id, Kind: OpLocalGet, Key: key, Node: node, Invoke: h.Now(), MinRevision: rev}
	ctx, cancel := context.WithTimeout(c.e.ctx, localReadDeadline)
	r, err := c.bc.Read(ctx, key, client.FromNode(node), client.WithMinRevision(rev, minRevisionWait))
	cancel()
	op.Return = h.Now()
	return h.Add(readOp(op, r, err))
}

// localGet reads key from node's own copy.
func (c *loader) localGet(node, key string) Op {
	h := c.e.hist
	op := Op{Client: c.id, Kind: OpLocalGet, Key: key, Node: node, Invoke: h.Now()}
	ctx, cancel := context.WithTimeout(c.e.ctx, localReadDeadline)
	r, err := c.bc.Read(ctx, key, client.FromNode(node))
	cancel()
	op.Return = h.Now()
	return h.Add(readOp(op, r, err))
}

func readOp(op Op, r bus.ReadReply, err error) Op {
	if err != nil {
		op.Outcome, op.Code, op.Err = Failed, errCode(err), err.Error()
		return op
	}
	op.Outcome = OK
	op.Found, op.Value, op.Revision, op.Epoch, op.Role = r.Found, r.Value, r.Revision, r.Epoch, r.Role
	if r.Node != "" {
		op.Node = r.Node
	}
	return op
}

// ----------------------------------------------------------------------------
// Load

// loadOptions shapes the concurrent clients' operations.
type loadOptions struct {
	clients int
	keys    []string
	// acks is sent with every write ("" = the servers' --acks).
	acks string
	// interval is the pause between two operations of one client.
	interval time.Duration
	// writes, leaderReads and ownReads (min_revision reads of the client's
	// own last write of the key) are the shares of those operations; the
	// rest are local reads of a random running node.
	writes, leaderReads, ownReads float64
	// deletes, creates and cas are the shares of the writes that are
	// deletes, creates and compare-and-sets (two puts with if_revision for
	// one delete), at the revision the client last read or was told of the
	// key; the rest are plain puts on the leader subject. via is the share
	// of the deletes, creates and compare-and-sets sent to a random running
	// node's write subject instead.
	deletes, creates, cas, via float64
	// ttl is the share of the writes that are plain puts with a time to
	// live between ttlMin and ttlMax, each on a key of its own (see
	// ttlKeyPrefix), which nothing else writes or reads until the end.
	ttl            float64
	ttlMin, ttlMax time.Duration
}

// ttlKeyPrefix begins the keys of the writes with a time to live. Such a
// key disappears without a client's delete, so it is left out of the
// checks that model a key by its writes (linearizability, the final reads
// of every key) and checked by CheckExpired instead.
const ttlKeyPrefix = "ttl-"

// isTTLKey reports whether key is one of the load's keys with a time to
// live.
func isTTLKey(key string) bool { return strings.HasPrefix(key, ttlKeyPrefix) }

// withoutTTLKeys returns the operations of ops on other keys.
func withoutTTLKeys(ops []Op) []Op {
	out := make([]Op, 0, len(ops))
	for _, op := range ops {
		if !isTTLKey(op.Key) {
			out = append(out, op)
		}
	}
	return out
}

// mixedWrite runs one write of the kind opts's shares pick, and learns
// the key's revision from its outcome.
func (c *loader) mixedWrite(rng *rand.Rand, key string, opts loadOptions) {
	req := bus.WriteRequest{Key: key, Acks: opts.acks}
	if opts.ttl > 0 && rng.Float64() < opts.ttl {
		req.Value = c.nextValue()
		req.Key = ttlKeyPrefix + req.Value
		ttl := opts.ttlMin + time.Duration(rng.Int64N(int64(opts.ttlMax-opts.ttlMin)+1))
		req.TTLMS = int64(ttl / time.Millisecond)
		c.write(req, "", c.e.writeDeadline())
		return
	}
	switch y := rng.Float64(); {
	case y < opts.deletes:
		req.Op = bus.OpDelete
	case y < opts.deletes+opts.creates:
		req.Op, req.Value = bus.OpCreate, c.nextValue()
	case y < opts.deletes+opts.creates+opts.cas:
		rev := c.seen[key]
		req.IfRevision = &rev
		if rng.IntN(3) == 0 {
			req.Op = bus.OpDelete
		} else {
			req.Value = c.nextValue()
		}
	default:
		req.Value = c.nextValue()
		c.learn(c.write(req, "", c.e.writeDeadline()))
		return
	}
	via := ""
	if rng.Float64() < opts.via {
		if ids := c.e.running(); len(ids) > 0 {
			via = ids[rng.IntN(len(ids))]
		}
	}
	c.learn(c.write(req, via, c.e.writeDeadline()))
}

// learn keeps what op tells of its key: the client's own acknowledged
// writes (for read-your-writes reads) and the key's revision (for
// compare-and-sets).
func (c *loader) learn(op Op) {
	switch {
	case op.Acked() && op.writesValue():
		c.mine[op.Key] = op
		c.seen[op.Key] = op.Revision
	case op.Acked() && op.Kind == OpDelete:
		delete(c.mine, op.Key)
		c.seen[op.Key] = 0
	case op.condFailed():
		c.seen[op.Key] = op.Revision
	case op.Kind == OpGet && op.Outcome == OK:
		c.seen[op.Key] = 0
		if op.Found {
			c.seen[op.Key] = op.Revision
		}
	}
}

// load is a set of clients running operations until Stop.
type load struct {
	stop    chan struct{}
	wg      sync.WaitGroup
	clients []*loader
	once    sync.Once
}

// startLoad starts opts.clients clients, which run until Stop or until
// ctx ends.
func (e *runEnv) startLoad(ctx context.Context, opts loadOptions) (*load, error) {
	l := &load{stop: make(chan struct{})}
	for range opts.clients {
		c, err := e.newClient(e.clients)
		e.clients++
		if err != nil {
			l.Stop()
			return nil, err
		}
		l.clients = append(l.clients, c)
	}
	for i, c := range l.clients {
		rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
		l.wg.Go(func() {
			for {
				select {
				case <-l.stop:
					return
				case <-ctx.Done():
					return
				default:
				}
				key := opts.keys[rng.IntN(len(opts.keys))]
				switch x := rng.Float64(); {
				case x < opts.writes:
					c.mixedWrite(rng, key, opts)
				case x < opts.writes+opts.leaderReads:
					c.learn(c.leaderGet(key))
				case x < opts.writes+opts.leaderReads+opts.ownReads:
					if ids := e.running(); len(ids) > 0 {
						if _, ok := c.ownGet(ids[rng.IntN(len(ids))], key); !ok {
							c.learn(c.leaderGet(key))
						}
					}
				default:
					if ids := e.running(); len(ids) > 0 {
						c.localGet(ids[rng.IntN(len(ids))], key)
					}
				}
				if opts.interval > 0 {
					select {
					case <-l.stop:
						return
					case <-ctx.Done():
						return
					case <-time.After(time.Duration(float64(opts.interval) * (0.5 + rng.Float64()))):
					}
				}
			}
		})
	}
	e.loads = append(e.loads, l)
	return l, nil
}

// Stop lets every operation in flight finish and closes the clients.
func (l *load) Stop() {
	l.once.Do(func() {
		close(l.stop)
		l.wg.Wait()
		for _, c := range l.clients {
			c.close()
		}
	})
}
