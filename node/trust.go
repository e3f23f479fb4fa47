package node

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
)

// foreignWindow is how long a message of another cluster keeps this
// server unready and named in its status.
const foreignWindow = 30 * time.Second

// trust holds what this server knows about who may speak for its cluster:
// the signer made from the cluster record, and what it refused.
type trust struct {
	signer atomic.Pointer[bus.Signer]

	unsigned    atomic.Uint64 // server messages without cluster headers
	misdirected atomic.Uint64 // requests asking for the reply on a cluster subject
	forged      atomic.Uint64 // naming this cluster, with a MAC that fails
	foreign     atomic.Uint64 // naming another cluster

	mu          sync.Mutex
	lastForeign time.Time
	foreignID   string
	lastLog     map[string]time.Time // reason -> last log line, to bound logging
}

// signReply returns the headers of a reply of data to subject, or nil
// before the cluster record is known.
func (s *Server) signReply(subject string, data []byte) nats.Header {
	sg := s.trust.signer.Load()
	if sg == nil {
		return nil
	}
	return sg.Header(bus.DomainReply, subject, data)
}

// ownSubject reports whether a requester asked for the reply on one of
// this cluster's own subjects: a server never answers there, so its
// answers cannot be made to land where servers listen.
func (s *Server) ownSubject(reply string) bool {
	if reply == "" || !strings.HasPrefix(reply, s.cfg.SubjectPrefix+".") {
		return false
	}
	s.trust.misdirected.Add(1)
	s.rareLog("misdirected", func() {
		s.log.Warn("not answering a request whose reply subject is one of the cluster's own", "reply", reply)
	})
	return true
}

// publish sends data on subject, signed. It fails before the cluster
// record is known: nothing unsigned leaves a server.
func (s *Server) publish(subject string, data []byte) error {
	sg := s.trust.signer.Load()
	if sg == nil {
		return errors.New("the cluster record is not known yet")
	}
	return s.nc.PublishMsg(sg.Msg(subject, data))
}

// respond answers req with data, signed for the requester's inbox, so a
// server that relays or trusts the answer can check who sent it.
func (s *Server) respond(req micro.Request, data []byte) {
	if s.ownSubject(req.Reply()) {
		return
	}
	var opts []micro.RespondOpt
	if h := s.signReply(req.Reply(), data); h != nil {
		opts = append(opts, micro.WithHeaders(micro.Headers(h)))
	}
	if err := req.Respond(data, opts...); err != nil {
		s.rareLog("respond-failed", func() { s.log.Warn("cannot send a reply", "subject", req.Subject(), "bytes", len(data), "err", err) })
	}
}

// respondError answers req with the JSON error body and micro's error
// headers (the HTTP status as the code, the wire code and message as the
// description), signed like respond.
func (s *Server) respondError(req micro.Request, err error) {
	if s.ownSubject(req.Reply()) {
		return
	}
	e := bus.AsError(err)
	data := bus.EncodeError(e)
	var opts []micro.RespondOpt
	if h := s.signReply(req.Reply(), data); h != nil {
		opts = append(opts, micro.WithHeaders(micro.Headers(h)))
	}
	_ = req.Error(fmt.Sprint(e.HTTPStatus()), e.Error(), data, opts...)
}

// verify checks that msg was sent by a member of this cluster for domain
// d, and counts and logs (at a bounded rate) what it refuses. what names
// the message for the log.
func (s *Server) verify(msg *nats.Msg, d bus.Domain, what string) error {
	sg := s.trust.signer.Load()
	if sg == nil {
		return errors.New("the cluster record is not known yet")
	}
	err := sg.VerifyMsg(d, msg)
	if err == nil {
		return nil
	}
	var foreign *bus.ForeignClusterError
	switch {
	case errors.As(err, &foreign):
		s.trust.foreign.Add(1)
		s.trust.mu.Lock()
		s.trust.lastForeign, s.trust.foreignID = time.Now(), foreign.Cluster
		s.trust.mu.Unlock()
		s.rareLog("foreign", func() {
			s.log.Error("another cluster publishes on this cluster's subjects: its messages are dropped; give one cluster another --subject-prefix",
				"message", what, "subject", msg.Subject, "other_cluster", foreign.Cluster, "cluster", sg.Cluster())
		})
	case errors.Is(err, bus.ErrUnsigned):
		s.trust.unsigned.Add(1)
		s.rareLog("unsigned", func() {
			s.log.Warn("dropped an unsigned server message (not from a server of this cluster)", "message", what, "subject", msg.Subject)
		})
	default:
		s.trust.forged.Add(1)
		s.rareLog("forged", func() {
			s.log.Warn("dropped a server message whose signature does not verify (forged or altered)", "message", what, "subject", msg.Subject)
		})
	}
	return err
}

// rareLog runs log at most once per 10 seconds per reason, so a flood of
// bad messages cannot flood the log.
func (s *Server) rareLog(reason string, log func()) {
	s.trust.mu.Lock()
	if s.trust.lastLog == nil {
		s.trust.lastLog = make(map[string]time.Time)
	}
	last := s.trust.lastLog[reason]
	now := time.Now()
	due := now.Sub(last) >= 10*time.Second
	if due {
		s.trust.lastLog[reason] = now
	}
	s.trust.mu.Unlock()
	if due {
		log()
	}
}

// foreignCluster returns the id of another cluster seen on these subjects
// within foreignWindow, or "".
func (s *Server) foreignCluster() string {
	s.trust.mu.Lock()
	defer s.trust.mu.Unlock()
	if s.trust.foreignID == "" || time.Since(s.trust.lastForeign) > foreignWindow {
		return ""
	}
	return s.trust.foreignID
}

// verifiedReply sends a request to a subject only servers answer, once,
// and returns the first reply on its inbox that a member of this cluster
// signed. Replies from anyone else are counted and skipped; the request is
// never sent again, so a fake responder cannot make a server apply it
// twice. A "no responders" status is returned as nats.ErrNoResponders.
func (s *Server) verifiedReply(ctx context.Context, subject string, data []byte, what string) (*nats.Msg, error) {
	inbox := s.nc.NewInbox()
	sub, err := s.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("%s on %s: %w", what, subject, err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := s.nc.PublishRequest(subject, inbox, data); err != nil {
		return nil, fmt.Errorf("%s on %s: %w", what, subject, err)
	}
	var last error
	for {
		msg, err := sub.NextMsgWithContext(ctx)
		if err != nil {
			if last != nil {
				return nil, fmt.Errorf("%s on %s: no answer signed by this cluster (%w): %w", what, subject, err, last)
			}
			if errors.Is(err, context.DeadlineExceeded) {
				err = nats.ErrTimeout
			}
			return nil, err
		}
		if len(msg.Data) == 0 && msg.Header.Get("Status") == "503" {
			if last == nil {
				return nil, nats.ErrNoResponders
			}
			continue
		}
		if last = s.verify(msg, bus.DomainReply, what); last == nil {
			return msg, nil
		}
	}
}

// readiness reports whether this server is fit to serve, and why not.
func (s *Server) readiness() (bool, []string) {
	var why []string
	if !s.zk.Connected() {
		why = append(why, "zookeeper disconnected"+s.links.zk.forText())
	}
	if s.natsState() != "connected" {
		why = append(why, "nats "+s.natsState()+s.links.nats.forText())
	}
	if s.trust.signer.Load() == nil {
		why = append(why, "cluster record not read yet")
	}
	if p := s.records.RecordProblem(); p != "" {
		why = append(why, "cluster record: "+p)
	}
	if id := s.foreignCluster(); id != "" {
		why = append(why, "another cluster ("+id+") publishes on these subjects")
	}
	if s.cfg.CatchUp {
		if !s.compared.Load() {
			why = append(why, "not yet compared with a leader's copy")
		}
		if s.catchRunning.Load() {
			why = append(why, "catching up")
		} else if s.store.Missed() > 0 {
			why = append(why, "stale: missed updates")
		}
		if behind := s.behindRecord(); behind > 0 {
			why = append(why, fmt.Sprintf("holds %d revisions less than the cluster record", behind))
		}
	}
	return len(why) == 0, why
}

// recordRevision is the cluster record's lower bound on acknowledged
// revisions, as last read.
func (s *Server) recordRevision() uint64 {
	r, _ := s.records.LastRecord()
	return r.Acked
}

// recordReserved is the cluster record's reserved revision, as last read.
func (s *Server) recordReserved() uint64 {
	r, _ := s.records.LastRecord()
	return r.Revision
}

// behindRecord is how many revisions this copy holds less than the
// cluster record says were acknowledged (0 if none); a copy that never
// compared itself with a leader counts up to the reserved revision.
// stale reports whether this copy, in role, knows it may be out of date:
// it missed updates, or (not leading) holds less than the cluster record
// says was acknowledged. Replies to reads, histories and replays carry it.
func (s *Server) stale(role string) bool {
	return s.store.Missed() > 0 || role != bus.RoleLeader && s.behindRecord() > 0
}

func (s *Server) behindRecord() uint64 {
	r, _ := s.records.LastRecord()
	rec, rev := r.Acked, s.store.Revision()
	if !s.compared.Load() {
		rec = max(rec, r.Revision)
	}
	if rec > rev {
		return rec - rev
	}
	return 0
}

// isUnverified reports whether err says a reply was not signed by this
// cluster.
func isUnverified(err error) bool {
	return errors.Is(err, bus.ErrUnsigned) || errors.Is(err, bus.ErrBadSignature) || errors.Is(err, bus.ErrForeignCluster)
}
