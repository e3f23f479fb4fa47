package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// CatchUpConfig configures RunCatchUp.
type CatchUpConfig struct {
	// Keys is how many keys are loaded before the catch-up (default 1M).
	Keys int
	// ValueSize is the bytes per value (default 100).
	ValueSize int
	// InFlight is how many loader writes are outstanding at once.
	InFlight int
	// Writers is the concurrency of the writer whose throughput is
	// measured before and during the catch-up (sequential Puts each).
	Writers int
	// Baseline is how long the writer is measured before the catch-up, and
	// again while Pagers run.
	Baseline time.Duration
	// Pagers is how many clients page the leader's snapshot one entry at a
	// time, in a phase of their own before the catch-up (0: no such phase).
	Pagers int
	// Timeout bounds the catch-up.
	Timeout  time.Duration
	KVServer string
	Log      io.Writer
	// OnCluster is called once the cluster is up.
	OnCluster func(*cluster.Local)
}

// CatchUpResult is what one run measured.
type CatchUpResult struct {
	Keys      int
	ValueSize int
	Writers   int
	// Load is how long loading Keys took through the leader.
	Load time.Duration
	// LoadErrors are loader writes answered with an error (and sent again).
	LoadErrors int64
	// Baseline and During are the writer's successful writes per second
	// before the catch-up and while it ran.
	Baseline, During float64
	// WithPagers is the writer's throughput while Pagers clients paged the
	// leader's snapshot one entry at a time; Pages and Refused are the pages
	// they got and the ones refused (snapshot_pages budget full).
	Pagers         int
	WithPagers     float64
	Pages, Refused int64
	// WriterErrors counts failed writes of the writer in all phases.
	WriterErrors int64
	// Restart is how long the follower took to start again (to /healthz).
	Restart time.Duration
	// CatchUp is from the restarted follower answering /healthz to its
	// status reporting Keys keys, not stale and not catching up.
	CatchUp time.Duration
	// FollowerLog are the follower's log lines about its catch-up.
	FollowerLog []string
	// Follower and Leader are the node IDs.
	Follower, Leader string
}

// PagerRatio is the writer's throughput while the pagers ran over before.
func (r CatchUpResult) PagerRatio() float64 {
	if r.Baseline == 0 {
		return 0
	}
	return r.WithPagers / r.Baseline
}

// Ratio is the writer's throughput during the catch-up over before it.
func (r CatchUpResult) Ratio() float64 {
	if r.Baseline == 0 {
		return 0
	}
	return r.During / r.Baseline
}

// RunCatchUp starts ZooKeeper, NATS and three kvservers with --catch-up,
// loads Keys keys through the leader, measures a writer's throughput,
// restarts one follower empty and measures how long it takes to catch up
// and the writer's throughput meanwhile.
func RunCatchUp(ctx context.Context, cfg CatchUpConfig) (CatchUpResult, error) {
	res := CatchUpResult{Keys: cfg.Keys, ValueSize: cfg.ValueSize, Writers: cfg.Writers, Pagers: cfg.Pagers}
	if cfg.Log == nil {
		cfg.Log = io.Discard
	}
	local, err := startLocal(ctx, cluster.LocalOptions{
		KVServer:       cfg.KVServer,
		JetStream:      true,   // as in every run so far, though nothing here uses it
		ServerLogLevel: "info", // transitions only: the follower's "caught up" line is reported
		NodeArgs:       []string{"--catch-up"},
	})
	if err != nil {
		return res, err
	}
	defer closeLocal(ctx, local)
	if cfg.OnCluster != nil {
		cfg.OnCluster(local)
	}
	nc, err := dial(local)
	if err != nil {
		return res, err
	}
	defer nc.Close()
	kv, err := client.New(nc, client.WithRequestTimeout(5*time.Second))
	if err != nil {
		return res, err
	}
	leader, followers, err := firstLeader(ctx, kv, local)
	if err != nil {
		return res, err
	}
	res.Leader, res.Follower = leader, followers[len(followers)-1]
	fmt.Fprintf(cfg.Log, "leader %s; loading %d keys of %d bytes\n", res.Leader, cfg.Keys, cfg.ValueSize)

	start := time.Now()
	if res.LoadErrors, err = load(ctx, local, cfg); err != nil {
		return res, err
	}
	res.Load = time.Since(start)
	fmt.Fprintf(cfg.Log, "loaded in %s (%.0f writes/s); waiting for every copy\n", res.Load.Round(time.Millisecond), float64(cfg.Keys)/res.Load.Seconds())
	for _, id := range local.Nodes() {
		if err := waitCaughtUp(ctx, kv, id, cfg.Keys, 2*time.Minute); err != nil {
			return res, err
		}
	}

	w, err := startLoadWriter(ctx, local, cfg.Writers, cfg.ValueSize)
	if err != nil {
		return res, err
	}
	defer w.stop()
	n0, t0 := w.count()
	if harness.Sleep(ctx, cfg.Baseline) != nil {
		return res, ctx.Err()
	}
	n1, t1 := w.count()
	res.Baseline = float64(n1-n0) / t1.Sub(t0).Seconds()
	fmt.Fprintf(cfg.Log, "writer before the catch-up: %.0f writes/s\n", res.Baseline)
	if cfg.Pagers > 0 {
		if err := measurePagers(ctx, local, cfg, w, &res); err != nil {
			return res, err
		}
		fmt.Fprintf(cfg.Log, "writer with %d one-entry pagers: %.0f writes/s (%.2f× before; %d pages, %d refused)\n", cfg.Pagers, res.WithPagers, res.PagerRatio(), res.Pages, res.Refused)
	}
	fmt.Fprintf(cfg.Log, "restarting %s empty\n", res.Follower)

	rstart := time.Now()
	rctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	err = local.Start(rctx, res.Follower)
	cancel()
	if err != nil {
		return res, fmt.Errorf("restart %s: %w", res.Follower, err)
	}
	n2, t2 := w.count()
	res.Restart = t2.Sub(rstart)
	if err := waitCaughtUp(ctx, kv, res.Follower, cfg.Keys, cfg.Timeout); err != nil {
		return res, err
	}
	n3, t3 := w.count()
	res.CatchUp = t3.Sub(t2)
	res.During = float64(n3-n2) / t3.Sub(t2).Seconds()
	res.WriterErrors = w.errors.Load()
	for line := range strings.SplitSeq(local.Process(res.Follower).LogTail(200), "\n") {
		if strings.Contains(line, "caught up") || strings.Contains(line, "catch-up failed") {
			res.FollowerLog = append(res.FollowerLog, line)
		}
	}
	for _, line := range res.FollowerLog {
		fmt.Fprintf(cfg.Log, "%s: %s\n", res.Follower, line)
	}
	fmt.Fprintf(cfg.Log, "%s caught up in %s; writer meanwhile %.0f writes/s (%.2f× before)\n", res.Follower, res.CatchUp.Round(time.Millisecond), res.During, res.Ratio())
	return res, nil
}

// measurePagers runs cfg.Pagers clients that page the leader's snapshot
// one entry at a time for cfg.Baseline, measuring the writer meanwhile.
func measurePagers(ctx context.Context, local *cluster.Local, cfg CatchUpConfig, w *loadWriter, res *CatchUpResult) error {
	pctx, stop := context.WithCancel(ctx)
	var pages, refused atomic.Int64
	var wg sync.WaitGroup
	defer func() {
		stop()
		wg.Wait()
	}()
	subj := bus.Subjects{Prefix: bus.DefaultPrefix}.LeaderSnapshot()
	for range cfg.Pagers {
		nc, err := dial(local)
		if err != nil {
			return err
		}
		wg.Go(func() {
			defer nc.Close()
			after := ""
			for pctx.Err() == nil {
				rctx, cancel := context.WithTimeout(pctx, 30*time.Second)
				msg, err := nc.RequestWithContext(rctx, subj, bus.Encode(bus.SnapshotRequest{After: after, Limit: 1}))
				cancel()
				if err != nil {
					continue
				}
				var p bus.SnapshotReply
				if err := bus.DecodeReply(msg.Data, &p); err != nil {
					refused.Add(1)
					continue
				}
				pages.Add(1)
				after = ""
				if p.More && len(p.Entries) > 0 {
					after = p.Entries[len(p.Entries)-1].Key
				}
			}
		})
	}
	n0, t0 := w.count()
	if harness.Sleep(ctx, cfg.Baseline) != nil {
		return ctx.Err()
	}
	n1, t1 := w.count()
	res.WithPagers = float64(n1-n0) / t1.Sub(t0).Seconds()
	res.Pages, res.Refused = pages.Load(), refused.Load()
	return nil
}

// waitCaughtUp polls id's status until it holds at least keys keys and
// is neither stale nor catching up.
func waitCaughtUp(ctx context.Context, c *client.Client, id string, keys int, timeout time.Duration) error {
	wctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var last bus.Status
	err := harness.WaitFor(wctx, 10*time.Millisecond, func() error {
		st, err := c.Status(wctx, id)
		if err != nil {
			return err
		}
		last = st
		if st.Keys < keys || st.Stale || st.CatchingUp {
			return errors.New("not yet")
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("%s to hold %d keys (last status: %d keys, stale %v, catching up %v): %w", id, keys, last.Keys, last.Stale, last.CatchingUp, err)
	}
	return nil
}

// load writes keys key-0000000... through the leader subject with up to
// cfg.InFlight writes outstanding, sending a write again if it failed. It
// returns how many writes failed.
func load(ctx context.Context, local *cluster.Local, cfg CatchUpConfig) (int64, error) {
	nc, err := dial(local)
	if err != nil {
		return 0, err
	}
	defer nc.Close()
	subj := bus.Subjects{Prefix: bus.DefaultPrefix}.Write()
	value := strings.Repeat("v", cfg.ValueSize)
	body := func(i int) []byte { return bus.Encode(bus.WriteRequest{Key: fmt.Sprintf("key-%07d", i), Value: value}) }
	inbox := nats.NewInbox()
	tokens := make(chan struct{}, cfg.InFlight)
	retry := make(chan int, cfg.InFlight) // a failed write keeps its token, so this never fills
	var failed, answered atomic.Int64
	all := make(chan struct{})
	sub, err := nc.Subscribe(inbox+".*", func(m *nats.Msg) {
		i, _ := strconv.Atoi(m.Subject[len(inbox)+1:])
		var r bus.WriteReply
		if bus.DecodeReply(m.Data, &r) != nil {
			failed.Add(1)
			retry <- i
			return
		}
		<-tokens
		if answered.Add(1) == int64(cfg.Keys) {
			close(all)
		}
	})
	if err != nil {
		return 0, err
	}
	defer sub.Unsubscribe()
	if err := sub.SetPendingLimits(-1, -1); err != nil {
		return 0, err
	}
	send := func(i int) error { return nc.PublishRequest(subj, inbox+"."+strconv.Itoa(i), body(i)) }
	stall := time.NewTicker(10 * time.Second)
	defer stall.Stop()
	last := int64(-1)
	for i := 0; answered.Load() < int64(cfg.Keys); {
		var next chan struct{}
		if i < cfg.Keys {
			next = tokens
		}
		select {
		case <-ctx.Done():
			return failed.Load(), ctx.Err()
		case <-all:
		case j := <-retry:
			if err := send(j); err != nil {
				return failed.Load(), err
			}
		case next <- struct{}{}:
			if err := send(i); err != nil {
				return failed.Load(), err
			}
			i++
		case <-stall.C:
			n := answered.Load()
			if n == last {
				return failed.Load(), fmt.Errorf("load: no write answered for 10s (%d of %d answered)", n, cfg.Keys)
			}
			last = n
		}
	}
	return failed.Load(), nil
}

// loadWriter is n clients each putting one key after another through the
// leader subject until stopped, counting the successes.
type loadWriter struct {
	ok, errors atomic.Int64
	cancel     context.CancelFunc
	wg         sync.WaitGroup
	conns      []*nats.Conn
}

func startLoadWriter(ctx context.Context, local *cluster.Local, n, valueSize int) (*loadWriter, error) {
	wctx, cancel := context.WithCancel(ctx)
	w := &loadWriter{cancel: cancel}
	value := strings.Repeat("w", valueSize)
	for i := range n {
		nc, err := dial(local)
		if err != nil {
			w.stop()
			return nil, err
		}
		w.conns = append(w.conns, nc)
		c, err := client.New(nc, client.WithRequestTimeout(5*time.Second))
		if err != nil {
			w.stop()
			return nil, err
		}
		key := "writer-" + strconv.Itoa(i)
		w.wg.Go(func() {
			for wctx.Err() == nil {
				if _, err := c.Put(wctx, key, value); err != nil {
					if wctx.Err() == nil {
						w.errors.Add(1)
					}
					continue
				}
				w.ok.Add(1)
			}
		})
	}
	return w, nil
}

// count is the successful writes so far and when they were counted.
func (w *loadWriter) count() (int64, time.Time) { return w.ok.Load(), time.Now() }

func (w *loadWriter) stop() {
	w.cancel()
	w.wg.Wait()
	for _, nc := range w.conns {
		nc.Close()
	}
}
