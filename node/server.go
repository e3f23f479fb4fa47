package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/election"
	"github.com/zkvstore/zkv/internal/natsnode"
	"github.com/zkvstore/zkv/internal/retry"
	"github.com/zkvstore/zkv/store"
)

// Version is reported by the NATS micro services.
const Version = bus.ProtocolVersion

// Elector is everything a Server needs from the leader election: the
// small interfaces below, each declared by the part of the server that
// consumes it. *election.Elector implements it.
type Elector interface {
	Campaign
	Lease
	SessionStatus
	ClusterRecord
}

// Campaign is the election itself, as the server's main loop drives it:
// Run and follow take part, takeOver announces, shutdown resigns, and a
// copy unfit to lead goes to the back of the line.
type Campaign interface {
	// Run takes part in the election until ctx ends or Resign is called.
	Run(ctx context.Context) error
	// Leadership delivers the latest Term (1-buffered, newest wins).
	Leadership() <-chan election.Term
	// Announce publishes the leader znode.
	Announce(ctx context.Context, d election.LeaderData) error
	// Resign deletes this server's znodes and closes the session.
	Resign(ctx context.Context) error
	// Requeue gives up this server's place in the line and registers again
	// at the back.
	Requeue(ctx context.Context) error
}

// ErrClosed is returned by Run when Close was called before it.
var ErrClosed = errors.New("server closed")

// Server is one zkv server. Create it with New, run it with Run, stop it
// by cancelling Run's ctx or with Close.
type Server struct {
	cfg   Config
	log   *slog.Logger
	subj  bus.Subjects
	store *store.Store

	// The election, seen through the part each piece of the server uses
	// (one *election.Elector in production).
	elect   Campaign
	lease   Lease
	zk      SessionStatus
	records ClusterRecord

	natsNode *natsnode.Server // the embedded NATS server, in embedded mode
	nc       *nats.Conn
	ncReady  atomic.Pointer[nats.Conn] // nc, for readers outside Run's goroutines
	nodeSvc  micro.Service
	httpSrv  *http.Server
	listener net.Listener
	web      *httpSecurity // HTTP TLS and users (http_security.go)
	budgets  budgets       // one bounded budget per kind of request that waits
	acks     *ackTracker
	repl     *replicator // the leader's replication queue (pipeline.go)
	disk     *durable    // the data directory, nil without one (durable.go)
	diskDone chan struct{}

	runCtx context.Context
	wg     sync.WaitGroup
	goMu   sync.Mutex // guards stopping, so no goroutine starts after Wait
	// stopping is set once shutdown begins; goFunc refuses after it.
	stopping bool

	// writeMu serialises the leader's writes so the replication stream is
	// in revision order, and guards changes of leaderEpoch and leaderSvc.
	writeMu sync.Mutex
	// leaderEpoch is non-zero while this server takes writes. It is
	// written under writeMu and read without it, so reads never wait for
	// a write.
	leaderEpoch atomic.Uint64
	leaderSvc   micro.Service
	// serving is true while the leader service answers the leader
	// subject; status reports "leader" only then.
	serving atomic.Bool

	mu   sync.Mutex
	term election.Term
	// appliedCh is closed and replaced whenever an update is applied, so
	// min_revision reads wake up.
	appliedCh chan struct{}

	// catch-up (--catch-up): while catching, live updates are buffered.
	catchMu       sync.Mutex
	catching      bool
	catchBuf      []bus.Update
	catchOverflow bool
	catchRunning  atomic.Bool

	droppedOld atomic.Uint64 // replication messages of old epochs dropped
	malformed  atomic.Uint64 // replication messages that did not decode
	lastApply  atomic.Int64  // unix nanos of the last update applied

	trust   trust    // the cluster's signer and what was refused
	metrics *metrics // Prometheus instruments (metrics.go)
	links   *links   // ZooKeeper and NATS, up or cut off (cutoff.go)
	// elections are the leader changes this server saw (status page).
	elections electionLog
	// views caches the cluster view of GET /v1/cluster briefly.
	views clusterViews
	// ackedRev is the highest revision this leader acknowledged to a
	// client; the cluster record is raised to it.
	ackedRev atomic.Uint64
	// ackedEpoch is the epoch in which ackedRev was acknowledged.
	ackedEpoch atomic.Uint64
	ackRec     ackRecorder // acks=majority|all writes recorded before they are acknowledged
	// lost is how many revisions the cluster record says were acknowledged
	// that this server did not hold when it took over as leader.
	lost atomic.Uint64
	// lossyEpoch is the epoch this server leads while its copy may lack
	// revisions the cluster acknowledged (lost > 0 at its takeover): it
	// refuses create and if_revision there, as it cannot check them.
	lossyEpoch atomic.Uint64
	// reserved is the cluster record's reserved revision as this leader
	// last wrote or read it: it acknowledges no revision above it.
	reserved  atomic.Uint64
	reserveMu sync.Mutex // one reservation at a time
	// failover is what failoverLoop watches (detector.go).
	failover failoverWatch
	// compared is set once this process has compared its copy with a
	// leader's (its status, a heartbeat, or by leading): until then a
	// restarted --catch-up server cannot know it is current.
	compared atomic.Bool

	// Stopping (see Close): closeCtx ends when Close is called and stops
	// Run; runMu guards started and closed; done is closed when Run
	// returns, and runErr is what it returned.
	closeCtx  context.Context
	closeRun  context.CancelFunc
	closeOnce sync.Once
	runMu     sync.Mutex
	started   bool
	closed    bool
	done      chan struct{}
	runErr    error
}

// New validates cfg and returns a Server that has not started. If
// cfg.HTTPAddr is set, New binds it so a busy port fails here.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if err := cfg.Validate(); err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	web, err := newHTTPSecurity(cfg)
	if err != nil {
		return nil, err
	}
	var ln net.Listener
	if cfg.HTTPAddr != "" {
		if ln, err = net.Listen("tcp", cfg.HTTPAddr); err != nil {
			return nil, fmt.Errorf("http listen: %w", err)
		}
		if _, port, _ := net.SplitHostPort(cfg.AdvertiseAddr); port == "0" {
			// A free port was asked for: advertise the one we got.
			cfg.AdvertiseAddr = advertised(ln.Addr().String())
		}
	}
	newElector := cfg.newElector
	if newElector == nil {
		newElector = func(c election.Config) (Elector, error) { return election.New(c) }
	}
	st := store.NewWithConfig(store.Config{History: cfg.History, Changes: cfg.Changes, ChangesBytes: cfg.ChangesBytes})
	dd, err := openData(cfg, st)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		return nil, err
	}
	ec := cfg.electionConfig()
	ec.Known = func() (uint64, uint64) { return st.Epoch(), st.Revision() }
	el, err := newElector(ec)
	if err != nil {
		if ln != nil {
			ln.Close()
		}
		if dd != nil {
			dd.dir.Close()
		}
		return nil, err
	}
	s := &Server{
		cfg:       cfg,
		log:       cfg.Logger.With("node", cfg.ID),
		subj:      bus.Subjects{Prefix: cfg.SubjectPrefix},
		store:     st,
		elect:     el,
		lease:     el,
		zk:        el,
		records:   el,
		listener:  ln,
		web:       web,
		budgets:   newBudgets(cfg),
		acks:      newAckTracker(store.DefaultRequestWindow),
		repl:      newReplicator(),
		disk:      dd,
		appliedCh: make(chan struct{}),
		done:      make(chan struct{}),
		failover:  failoverWatch{kick: make(chan struct{}, 1)},
	}
	s.links, s.metrics = newLinks(), newMetrics(statusCollector{s})
	s.closeCtx, s.closeRun = context.WithCancel(context.Background())
	return s, nil
}

// advertisedAddr is the HTTP address this server tells others.
func (s *Server) advertisedAddr() string { return s.cfg.AdvertiseAddr }

// HTTPAddr is the address the HTTP API listens on ("" if disabled).
func (s *Server) HTTPAddr() string {
	if s.listener == nil {
		return ""
	}
	return s.listener.Addr().String()
}

// Run connects to NATS and ZooKeeper and serves until ctx ends or Close
// is called, then stops cleanly (resigning leadership) and returns. It
// returns an error if a part fails to start or the election fails, and
// ErrClosed at once if Close was called first. Run may be called once.
func (s *Server) Run(ctx context.Context) (err error) {
	s.runMu.Lock()
	switch {
	case s.closed:
		s.runMu.Unlock()
		return ErrClosed
	case s.started:
		s.runMu.Unlock()
		return errors.New("node: Run called twice")
	}
	s.started = true
	s.runMu.Unlock()
	defer func() {
		s.closeData()
		s.runErr = err
		close(s.done)
	}()
	// Close stops Run as cancelling ctx does.
	ctx, cancelCtx := context.WithCancel(ctx)
	defer cancelCtx()
	defer context.AfterFunc(s.closeCtx, cancelCtx)()

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.runCtx = runCtx
	defer func() {
		if s.listener != nil && s.httpSrv == nil {
			s.listener.Close()
		}
	}()

	if err := s.startNATSNode(); err != nil {
		return err
	}
	defer s.stopNATSNode() // after the connection is closed
	if err := s.connectNATS(); err != nil {
		return err
	}
	defer s.nc.Close()
	if err := s.startNodeService(); err != nil {
		return err
	}
	if s.listener != nil {
		s.startHTTP()
	}

	// The election outlives ctx: on a signal, shutdown resigns first (which
	// ends the election's Run), so the successor need not wait for the
	// session to time out.
	electCtx, stopElection := context.WithCancel(context.WithoutCancel(ctx))
	defer stopElection()
	electErr := make(chan error, 1)
	s.goFunc(func() { electErr <- s.elect.Run(electCtx) })
	s.log.Info("server started", "http", s.HTTPAddr(), "nats", s.cfg.NATSURL,
		"zookeeper", strings.Join(s.cfg.ZooKeeper, ","), "session_timeout", s.cfg.SessionTimeout.String(),
		"election_path", s.cfg.ElectionPath, "subject_prefix", s.cfg.SubjectPrefix)
	// runCtx, not ctx: Run may end on an error (a refused data
	// directory), and cancels runCtx before it waits for its goroutines.
	s.goFunc(func() { s.watchLinks(runCtx) })

	// Nothing is sent or trusted on the cluster's own subjects before the
	// cluster record gives this server the cluster's id and key.
	err = s.joinCluster(ctx)
	if err == nil {
		err = s.subscribeReplication()
	}
	switch {
	case err == nil:
		s.goFunc(s.replicateLoop)
		if s.disk != nil {
			s.diskDone = make(chan struct{})
			s.goFunc(func() { defer close(s.diskDone); s.durableLoop() })
			s.goFunc(s.snapshotLoop)
		}
		s.goFunc(s.heartbeatLoop)
		s.goFunc(s.expiryLoop)
		s.goFunc(s.recordLoop)
		s.goFunc(s.failoverLoop)
		err = s.follow(ctx, electErr)
	case errors.Is(err, election.ErrClosed):
		if err = <-electErr; err != nil { // the election failed first
			err = fmt.Errorf("election: %w", err)
		}
	case ctx.Err() != nil:
		err = nil // stopped while waiting for ZooKeeper
	}
	s.shutdown()
	stopElection()
	cancel()
	s.goMu.Lock()
	s.stopping = true
	s.goMu.Unlock()
	s.wg.Wait()
	return err
}

// Close stops the server as cancelling Run's ctx does (it steps down,
// resigns and stops every service), waits for Run to return and returns
// what Run returned. Called before Run, it releases the HTTP listener New
// bound and returns nil; Run then returns ErrClosed. Close is idempotent
// and safe for concurrent use: every call waits for the same stop and
// returns the same result. After Run's ctx was cancelled, Close only
// waits for Run and reports.
func (s *Server) Close() error {
	s.closeOnce.Do(func() {
		s.runMu.Lock()
		s.closed = true
		started := s.started
		s.runMu.Unlock()
		s.closeRun()
		if !started && s.listener != nil {
			s.listener.Close()
		}
		if !started {
			s.closeData()
		}
	})
	s.runMu.Lock()
	started := s.started
	s.runMu.Unlock()
	if !started {
		return nil
	}
	<-s.done
	return s.runErr
}

// follow reacts to the election until it fails or ctx ends.
func (s *Server) follow(ctx context.Context, electErr <-chan error) error {
	for {
		select {
		case t := <-s.elect.Leadership():
			s.onTerm(t)
		case err := <-electErr:
			if err != nil {
				return fmt.Errorf("election: %w", err)
			}
			return nil
		case <-ctx.Done():
			return nil
		}
	}
}

// shutdown stops taking writes, resigns, and stops every service.
func (s *Server) shutdown() {
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownTimeout)
	defer cancel()
	s.stepDown("shutting down")
	s.stopReplication(ctx)
	s.stopDurable(ctx, s.diskDone)
	// The record raise and the resign get time of their own: waiting for
	// the queue and the log may have used up ctx.
	zctx, zcancel := context.WithTimeout(context.Background(), s.cfg.SessionTimeout)
	defer zcancel()
	if acked := s.ackedRev.Load(); acked > 0 {
		// The record learns what this leader acknowledged last, so the
		// next leader after a full restart knows what it must hold.
		if _, err := s.records.RaiseRecord(zctx, s.ackedEpoch.Load(), 0, acked); err != nil {
			s.log.Warn("cannot raise the cluster record at stop", "revision", acked, "err", err)
		}
	}
	if err := s.elect.Resign(zctx); err != nil {
		s.log.Warn("resign failed", "err", err)
	}
	if s.nodeSvc != nil {
		if err := s.nodeSvc.Stop(); err != nil {
			s.log.Warn("stop node service", "err", err)
		}
	}
	if s.httpSrv != nil {
		if err := s.httpSrv.Shutdown(ctx); err != nil {
			s.log.Warn("http shutdown", "err", err)
		}
	}
	if err := s.nc.Drain(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) {
		s.log.Warn("nats drain", "err", err)
	}
	s.log.Info("server stopped")
}

// goFunc starts f as a goroutine owned by the server and reports whether
// it did: once shutdown has begun it refuses, so Run's final Wait cannot
// race with a late Add.
func (s *Server) goFunc(f func()) bool {
	s.goMu.Lock()
	defer s.goMu.Unlock()
	if s.stopping {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Server) connectNATS() error {
	opts := []nats.Option{
		nats.Name("zkv " + s.cfg.ID),
		// A node never needs its own messages: the leader ignores its own
		// updates, and requests to itself are served locally. Without echo
		// the leader is not woken for every update it publishes.
		nats.NoEcho(),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.RetryOnFailedConnect(true),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err == nil { // closed by this server: a clean stop
				s.log.Debug("nats connection closed")
				return
			}
			s.log.Warn("nats disconnected", "err", err)
		}),
		nats.ReconnectHandler(func(nc *nats.Conn) {
			s.log.Info("nats reconnected", "url", nc.ConnectedUrlRedacted())
		}),
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			subject := ""
			if sub != nil {
				subject = sub.Subject
			}
			s.log.Warn("nats error", "subject", subject, "err", err)
		}),
	}
	opts = append(opts, s.cfg.NATSOptions...)
	if s.natsNode != nil {
		opts = append(opts, nats.InProcessServer(s.natsNode.InProcess()))
	}
	nc, err := nats.Connect(s.cfg.NATSURL, opts...)
	if err != nil {
		return fmt.Errorf("connect to NATS %s: %w", s.cfg.NATSURL, err)
	}
	s.nc = nc
	s.ncReady.Store(nc)
	return nil
}

func (s *Server) startNodeService() error {
	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        bus.NodeServiceName,
		Version:     Version,
		Description: "zkv node " + s.cfg.ID + ": local reads, routed writes, status",
		Metadata:    map[string]string{bus.MetadataNode: s.cfg.ID, bus.MetadataPrefix: s.cfg.SubjectPrefix},
	})
	if err != nil {
		return fmt.Errorf("register NATS micro service %s: %w", bus.NodeServiceName, err)
	}
	s.nodeSvc = svc
	eps := []struct {
		name    string
		subject string
		h       micro.HandlerFunc
		opts    []micro.EndpointOpt
	}{
		{"read", s.subj.NodeRead(s.cfg.ID), s.handleRead, nil},
		{"any-read", s.subj.Read(), s.handleRead, []micro.EndpointOpt{micro.WithEndpointQueueGroup(bus.ReadQueueGroup)}},
		{"list", s.subj.NodeList(s.cfg.ID), s.handleList, nil},
		{"history", s.subj.NodeHistory(s.cfg.ID), s.handleHistory, nil},
		{"changes", s.subj.NodeChanges(s.cfg.ID), s.handleChanges, nil},
		{"write", s.subj.NodeWrite(s.cfg.ID), s.handleNodeWrite, nil},
		{"status", s.subj.NodeStatus(s.cfg.ID), s.handleStatus, nil},
		{"ping", s.subj.NodePing(s.cfg.ID), s.handlePing, nil},
	}
	for _, ep := range eps {
		opts := append([]micro.EndpointOpt{micro.WithEndpointSubject(ep.subject)}, ep.opts...)
		if err := svc.AddEndpoint(ep.name, s.metrics.nats(endpointOps[ep.name], ep.h), opts...); err != nil {
			svc.Stop()
			return fmt.Errorf("add endpoint %s on %s: %w", ep.name, ep.subject, err)
		}
	}
	return nil
}

// onTerm reacts to a change in the election.
func (s *Server) onTerm(t election.Term) {
	s.mu.Lock()
	prev := s.term
	s.term = t
	s.mu.Unlock()
	s.probeTerm(t)
	if t.Role != prev.Role || t.Leader.ID != prev.Leader.ID || t.Epoch != prev.Epoch {
		s.log.Info("election: "+t.Role.String(), "role", t.Role.String(), "epoch", t.Epoch, "leader", t.Leader.ID)
		s.metrics.elections.Inc()
	}
	defer s.noteTerm(t)
	if t.Role == election.RoleLeader {
		s.takeOver(t)
		return
	}
	s.stepDown("election: " + t.Role.String())
	if t.Epoch > 0 && t.Leader.ID != "" && t.Epoch > s.store.Epoch() {
		// A leader we have not heard from on the bus yet: take its epoch and
		// its starting revision, so a node that joined late knows what it
		// missed.
		err := s.store.BeginEpoch(t.Epoch, t.Leader.Revision)
		s.logApplyErr(err, "leader znode", t.Epoch, t.Leader.Revision)
		if errors.Is(err, store.ErrDiverged) {
			s.noteHole(true)
		}
	}
	if t.Leader.ID != "" && t.Leader.ID != s.cfg.ID && (t.Leader.ID != prev.Leader.ID || t.Epoch != prev.Epoch) {
		if s.store.Missed() > 0 {
			s.startCatchUp("missed updates before " + t.Leader.ID + " led")
		} else {
			s.probeLeader(t.Leader.ID, t.Epoch)
		}
	}
}

// takeOver starts taking writes as leader of t.Epoch: adopt the epoch,
// publish the epoch marker, then answer the leader subject. The marker is
// published under writeMu, so it precedes every put of the epoch on the
// replication stream.
func (s *Server) takeOver(t election.Term) {
	if s.leaderEpoch.Load() == t.Epoch {
		return
	}
	if !s.diskOK() {
		s.refuseToLead(t, "the data directory failed")
		return
	}
	rec := s.freshRecord()
	if s.loadedData() && !s.compared.Load() && !s.cfg.ForceLead {
		// Restarted from disk, and not compared with a leader since: not
		// behind the record's acknowledged revision, and no peer holds
		// more (durable.go).
		held := s.store.Held()
		if behindAcked(held, rec) {
			s.refuseToLead(t, "this copy holds less than the cluster record says was acknowledged (start the others, or pass --force-lead to accept the loss)",
				"held_epoch", held.RevEpoch, "held_revision", held.Revision, "record_acked_epoch", rec.AckedEpoch, "record_acked", rec.Acked)
			return
		}
		if peer, ahead, ok := s.peerAhead(s.runCtx); ok {
			s.refuseToLead(t, "a peer holds more of the stream (start it, or pass --force-lead to accept the loss)",
				"peer", peer, "peer_epoch", ahead.epoch, "peer_revision", ahead.rev, "held_epoch", held.RevEpoch, "held_revision", held.Revision)
			return
		}
	}
	s.writeMu.Lock()
	if s.leaderEpoch.Load() == t.Epoch {
		s.writeMu.Unlock()
		return
	}
	missed := s.store.Missed()
	if s.cfg.CatchUp && missed > 0 && !s.cfg.ForceLead {
		s.writeMu.Unlock()
		s.refuseToLead(t, "this copy missed updates", "missed", missed)
		return
	}
	rev := s.store.Revision()
	// Where this epoch starts. A copy that has followed a leader holds at
	// least every revision acknowledged before rec.Acked; revisions go on
	// from there. A copy that never compared itself with a leader (this
	// process started since) cannot know what was acknowledged after
	// rec.Acked, so it starts past every revision ever reserved: revisions
	// never go backwards, even after every server restarted empty.
	floor := rec.Acked
	if !s.compared.Load() && !s.loadedData() {
		floor = max(floor, rec.Revision)
	}
	start := max(rev, floor)
	if lost := start - rev + missed; lost > 0 {
		if s.cfg.CatchUp && !s.cfg.ForceLead {
			s.writeMu.Unlock()
			s.refuseToLead(t, "this copy may hold less than the cluster acknowledged (start one server with --force-lead to accept the loss)",
				"revision", rev, "record_acked", rec.Acked, "record_reserved", rec.Revision)
			return
		}
		s.log.Error("leading without revisions the cluster may have acknowledged: those writes are lost",
			"revision", rev, "missed", missed, "record_acked", rec.Acked, "record_reserved", rec.Revision, "lost", lost, "epoch", t.Epoch)
		s.lost.Store(lost)
		s.lossyEpoch.Store(t.Epoch)
	}
	if s.loadedData() && !s.compared.Load() {
		// Restarted from its data directory: it holds every revision the
		// cluster acknowledged, but the old leader may have applied and
		// published revisions up to the reserved one that no server logged
		// before every server stopped (replicas and watchers saw them).
		// They were never acknowledged; skip them, so that no revision
		// names two different updates.
		start = max(start, rec.Revision)
	}
	s.reserved.Store(rec.Revision)
	marker := bus.Update{Kind: bus.KindEpoch, Epoch: t.Epoch, Seq: start, Leader: s.cfg.ID, Time: time.Now().UnixNano()}
	if err := s.beginEpochLogged(marker, start != rev || missed > 0); err != nil {
		s.writeMu.Unlock()
		s.log.Error("refusing to lead", "epoch", t.Epoch, "known_epoch", s.store.Epoch(), "err", err)
		return
	}
	rev = start
	if err := s.replicateSync(marker); err != nil {
		s.writeMu.Unlock()
		s.log.Error("cannot publish epoch marker; not taking writes", "epoch", t.Epoch, "err", err)
		return
	}
	s.leaderEpoch.Store(t.Epoch)
	s.compared.Store(true)
	s.writeMu.Unlock()

	svc, err := micro.AddService(s.nc, micro.Config{
		Name:        bus.LeaderServiceName,
		Version:     Version,
		Description: fmt.Sprintf("zkv leader %s, epoch %d: answers %s", s.cfg.ID, t.Epoch, s.subj.Write()),
		Metadata:    map[string]string{bus.MetadataNode: s.cfg.ID, bus.MetadataPrefix: s.cfg.SubjectPrefix, "epoch": fmt.Sprint(t.Epoch)},
	})
	if err == nil {
		// No queue group on the write subjects: a paused or deposed
		// leader that is still subscribed must not take a share of the
		// writes (see bus.WriteQueueGroup).
		err = svc.AddEndpoint("write", s.metrics.nats(opWrite, s.handleLeaderWrite),
			micro.WithEndpointSubject(s.subj.Write()), micro.WithEndpointQueueGroupDisabled())
		if err == nil {
			err = svc.AddEndpoint("epoch-write", s.metrics.nats(opWrite, s.handleLeaderWrite),
				micro.WithEndpointSubject(s.subj.EpochWrite(t.Epoch)), micro.WithEndpointQueueGroupDisabled())
		}
		if err == nil {
			err = svc.AddEndpoint("read", s.metrics.nats(opRead, s.handleLeaderRead),
				micro.WithEndpointSubject(s.subj.LeaderRead()), micro.WithEndpointQueueGroup(bus.WriteQueueGroup))
		}
		if err == nil {
			err = svc.AddEndpoint("snapshot", s.metrics.nats(opSnapshot, s.handleLeaderSnapshot),
				micro.WithEndpointSubject(s.subj.LeaderSnapshot()), micro.WithEndpointQueueGroup(bus.WriteQueueGroup))
		}
		if err != nil {
			_ = svc.Stop()
		}
	}
	if err != nil {
		s.log.Error("cannot serve the leader subject; stepping down", "epoch", t.Epoch, "err", err)
		s.stepDown("leader service failed")
		return
	}
	s.writeMu.Lock()
	stillLeading := s.leaderEpoch.Load() == t.Epoch
	if stillLeading {
		s.leaderSvc = svc
	}
	s.writeMu.Unlock()
	if !stillLeading {
		_ = svc.Stop() // stepped down meanwhile
		return
	}
	if err := s.nc.Flush(); err != nil {
		s.log.Warn("nats flush after takeover", "err", err)
	}
	s.serving.Store(s.leaderEpoch.Load() == t.Epoch)
	s.log.Info("leader: taking writes", "epoch", t.Epoch, "revision", rev, "subject", s.subj.Write())
	s.metrics.takeovers.Inc()
	s.noteLeading(t.Epoch)
	data := election.LeaderData{ID: s.cfg.ID, Addr: s.advertisedAddr(), Epoch: t.Epoch, Revision: rev, Znode: t.Znode,
		Subject: s.subj.EpochWrite(t.Epoch)}
	s.goFunc(func() { s.announce(data) })
	s.goFunc(func() {
		ctx, cancel := context.WithTimeout(s.runCtx, s.cfg.SessionTimeout)
		defer cancel()
		if _, err := s.records.RaiseRecord(ctx, t.Epoch, 0, 0); err != nil {
			s.log.Warn("cannot record the new epoch", "epoch", t.Epoch, "err", err)
		}
	})
}

// announce publishes the leader znode, retrying with backoff while this
// server still leads data.Epoch; it steps down if a newer leader exists.
func (s *Server) announce(data election.LeaderData) {
	err := retry.Do(s.runCtx, retry.ZooKeeper, func() error {
		if s.leaderEpoch.Load() != data.Epoch {
			return nil // no longer leading this epoch
		}
		err := s.elect.Announce(s.runCtx, data)
		if errors.Is(err, election.ErrDeposed) || errors.Is(err, election.ErrNotLeader) {
			// ErrNotLeader: the election moved on; the next term says what to do.
			return retry.Permanent(err)
		}
		return err
	}, func(err error, d time.Duration) {
		s.log.Warn("announce leadership failed, retrying", "epoch", data.Epoch, "err", err, "retry_in", d)
	})
	if errors.Is(err, election.ErrDeposed) {
		s.stepDown("deposed: " + err.Error())
	}
}

// stepDown stops taking writes. Requests already queued on the leader
// service are answered not_leader by the handler.
func (s *Server) stepDown(reason string) {
	s.writeMu.Lock()
	epoch, svc := s.leaderEpoch.Load(), s.leaderSvc
	s.leaderEpoch.Store(0)
	s.serving.Store(false)
	s.leaderSvc = nil
	s.writeMu.Unlock()
	if epoch == 0 {
		return
	}
	if svc != nil {
		if err := svc.Stop(); err != nil {
			s.log.Warn("stop leader service", "err", err)
		}
	}
	s.log.Warn("stepped down", "epoch", epoch, "reason", reason)
}

// role returns the role and epoch to report.
func (s *Server) role() (string, uint64, string) {
	if epoch := s.leaderEpoch.Load(); epoch != 0 {
		if !s.serving.Load() {
			return bus.RoleCandidate, epoch, s.cfg.ID // taking over
		}
		return bus.RoleLeader, epoch, s.cfg.ID
	}
	s.mu.Lock()
	t := s.term
	s.mu.Unlock()
	role := t.Role.String()
	if t.Role == election.RoleLeader {
		role = bus.RoleCandidate // elected but not yet taking writes
	}
	return role, s.store.Epoch(), t.Leader.ID
}

// applied returns a channel closed at the next applied update.
func (s *Server) applied() <-chan struct{} {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.appliedCh
}

// notifyApplied wakes the readers waiting for a revision.
func (s *Server) notifyApplied() {
	s.mu.Lock()
	defer s.mu.Unlock()
	close(s.appliedCh)
	s.appliedCh = make(chan struct{})
}

// natsState describes the NATS connection ("connected", "reconnecting", ...).
func (s *Server) natsState() string {
	nc := s.ncReady.Load()
	if nc == nil {
		return "disconnected"
	}
	return strings.ToLower(nc.Status().String())
}

// Status reports the server's state. It is safe to call at any time.
func (s *Server) Status() bus.Status {
	role, epoch, leader := s.role()
	s.mu.Lock()
	znode := s.term.Znode
	s.mu.Unlock()
	missed := s.store.Missed()
	ready, why := s.readiness()
	var cluster string
	if sg := s.trust.signer.Load(); sg != nil {
		cluster = sg.Cluster()
	}
	var behind uint64
	if role != bus.RoleLeader {
		behind = s.behindRecord()
	}
	hist := s.store.HistoryHeld()
	held := s.store.Held()
	return bus.Status{
		Node:       s.cfg.ID,
		Role:       role,
		Epoch:      epoch,
		Leader:     leader,
		AppliedSeq: s.store.Revision(),
		Keys:       s.store.Len(),
		Stale:      missed > 0 || behind > 0,
		Gaps:       missed,

		AppliedRevision: s.store.Applied(),
		Members:         s.lease.Members(),

		DroppedOldEpoch:   s.droppedOld.Load(),
		LastApplied:       s.lastApply.Load(),
		CatchingUp:        s.catchRunning.Load(),
		PublishedMessages: s.repl.messages.Load(),
		PublishedUpdates:  s.repl.updates.Load(),
		ZooKeeper:         s.zk.SessionState(),
		NATS:              s.natsState(),
		ZooKeeperCutOffMS: s.links.zk.cutOffMS(),
		NATSCutOffMS:      s.links.nats.cutOffMS(),
		HTTP:              s.advertisedAddr(),
		HTTPWarning:       s.httpWarning(),
		Znode:             znode,

		Cluster:          cluster,
		RecordRevision:   s.recordRevision(),
		RecordReserved:   s.recordReserved(),
		BehindRecord:     behind,
		LostRevisions:    s.lost.Load(),
		RecordProblem:    s.records.RecordProblem(),
		RejectedUnsigned: s.trust.unsigned.Load(),
		RejectedForged:   s.trust.forged.Load(),
		ForeignMessages:  s.trust.foreign.Load(),
		ForeignCluster:   s.foreignCluster(),
		Diverged:         s.store.Diverged(),
		Ready:            ready,
		NotReady:         strings.Join(why, "; "),
		HistoryFrom:      hist.Floor,
		ReplayFrom:       hist.ChangesFrom,
		HistoryKeys:      hist.Keys,
		ExpiringKeys:     hist.Expiring,
		Budgets:          s.budgets.status(),
		HeldRevision:     held.Revision,
		HeldEpoch:        held.RevEpoch,
		Data:             s.dataStatus(),
	}
}

// handleStatus answers with the node's status; the body is ignored.
func (s *Server) handleStatus(req micro.Request) {
	s.respond(req, bus.Encode(s.Status()))
}

// logApplyErr logs what a replication step reported.
func (s *Server) logApplyErr(err error, from string, epoch, seq uint64) {
	var gap *store.GapError
	switch {
	case err == nil:
	case errors.As(err, &gap):
		s.metrics.gaps.Inc()
		s.log.Warn("replication gap: updates missed", "from", from, "epoch", gap.Epoch, "missed_from", gap.From, "missed_to", gap.To, "missed", gap.To-gap.From+1)
	case errors.Is(err, store.ErrOldEpoch):
		s.droppedOld.Add(1)
		s.rareLog("old-epoch", func() {
			s.log.Warn("dropped update from an old epoch (one line per 10 s; status counts them all)", "from", from, "epoch", epoch, "seq", seq, "known_epoch", s.store.Epoch())
		})
	case errors.Is(err, store.ErrDuplicate):
		s.log.Debug("duplicate update ignored", "epoch", epoch, "seq", seq)
	case errors.Is(err, store.ErrDiverged):
		s.log.Warn("this copy holds writes the new leader lacks", "from", from, "epoch", epoch, "seq", seq, "err", err)
	default:
		s.log.Error("replication", "from", from, "err", err)
	}
}
