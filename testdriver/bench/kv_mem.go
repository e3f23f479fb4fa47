package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// memLoadPerConn is how many writes the memory load keeps in flight on
// each client connection.
const memLoadPerConn = 4

// memTarget is the cluster the memory load writes to: its process table,
// clients connected to its leader, and its servers.
type memTarget struct {
	mode      string // "embedded" or "external NATS"
	local     *cluster.Local
	clients   []*client.Client
	leader    string
	followers []string
}

// memTarget is the embedded-mode cluster when there is one, else the
// external one.
func (w *kvWorld) memTarget(external *cluster.Local) memTarget {
	if w.emb != nil {
		return memTarget{mode: "embedded", local: w.emb.local, clients: w.emb.toLeader, leader: w.emb.leader, followers: w.emb.followers}
	}
	return memTarget{mode: "external NATS", local: external, clients: w.clients, leader: w.leader, followers: w.replicas}
}

// memKey is the i-th key of the memory load.
func memKey(i int) string { return fmt.Sprintf("mem-%08d", i) }

// memoryPerKey reads every kvserver's resident set, writes MemKeys
// distinct keys through kv.write (acks=leader, many writes in flight),
// waits until every server applied the last revision, and reads the
// resident sets again: one row per server.
func (w *kvWorld) memoryPerKey(ctx context.Context, external *cluster.Local) ([]KVResult, error) {
	t := w.memTarget(external)
	servers := append([]string{t.leader}, t.followers...)
	before := map[string]int64{}
	for _, id := range servers {
		rss, err := t.rss(id)
		if err != nil {
			return nil, err
		}
		before[id] = rss
	}
	fmt.Fprintf(w.cfg.Log, "loading %d keys into the %s cluster\n", w.cfg.MemKeys, t.mode)
	load, err := loadKeys(ctx, t.clients, w.cfg.MemKeys, w.value)
	if err != nil {
		return nil, err
	}
	if err := waitApplied(ctx, t.clients[0], servers, load.lastRevision); err != nil {
		return nil, err
	}
	raw := len(memKey(0)) + len(w.value)
	var out []KVResult
	for _, id := range servers {
		after, err := t.rss(id)
		if err != nil {
			return nil, err
		}
		role := "follower"
		if id == t.leader {
			role = "leader"
		}
		out = append(out, KVResult{
			Op: OpMemPerKey, Clients: load.inFlight, Replica: fmt.Sprintf("%s %s (%s)", id, role, t.mode),
			Errors: load.errors, Elapsed: load.elapsed, Latency: load.latency.Summary(),
			Throughput: float64(load.latency.Count()) / load.elapsed.Seconds(),
			RSSBefore:  before[id], RSSAfter: after, RawPerKey: raw,
		})
	}
	return out, nil
}

// rss is the resident set of server id's process.
func (t memTarget) rss(id string) (int64, error) {
	n, ok := t.local.Node(id)
	if !ok || !n.Running {
		return 0, fmt.Errorf("kvserver %s is not running", id)
	}
	return ProcessRSS(n.PID)
}

// memLoad is what loadKeys did.
type memLoad struct {
	latency      *Hist
	errors       int64
	elapsed      time.Duration
	lastRevision uint64
	inFlight     int
}

// loadKeys writes n distinct keys of value with memLoadPerConn writes in
// flight per client, and returns their latencies, the failed writes and
// the highest revision a write got. More than 1% failed writes is an
// error: the key count would not mean much.
func loadKeys(ctx context.Context, clients []*client.Client, n int, value string) (memLoad, error) {
	workers := len(clients) * memLoadPerConn
	hists := make([]*Hist, workers)
	var next, errs atomic.Int64
	var last atomic.Uint64
	var firstErr atomic.Value
	var wg sync.WaitGroup
	start := time.Now()
	for i := range workers {
		hists[i] = NewHist()
		c := clients[i%len(clients)]
		wg.Go(func() {
			for ctx.Err() == nil {
				k := int(next.Add(1) - 1)
				if k >= n {
					return
				}
				rctx, cancel := context.WithTimeout(ctx, 10*time.Second)
				t := time.Now()
				rep, err := c.Put(rctx, memKey(k), value, client.WithAcks(bus.AcksLeader))
				el := time.Since(t)
				cancel()
				if err != nil {
					errs.Add(1)
					firstErr.CompareAndSwap(nil, err.Error())
					continue
				}
				hists[i].Record(el)
				storeMax(&last, rep.Revision)
			}
		})
	}
	wg.Wait()
	res := memLoad{latency: NewHist(), errors: errs.Load(), elapsed: time.Since(start), lastRevision: last.Load(), inFlight: workers}
	for _, h := range hists {
		res.latency.Merge(h)
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	if res.errors*100 > int64(n) {
		return res, fmt.Errorf("%d of %d writes failed, first: %v", res.errors, n, firstErr.Load())
	}
	return res, nil
}

// storeMax raises u to v unless it already is at least v.
func storeMax(u *atomic.Uint64, v uint64) {
	for {
		cur := u.Load()
		if v <= cur || u.CompareAndSwap(cur, v) {
			return
		}
	}
}

// waitApplied waits (at most five minutes) until every server's status
// reports revision rev applied.
func waitApplied(ctx context.Context, c *client.Client, servers []string, rev uint64) error {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	for _, id := range servers {
		err := harness.WaitFor(ctx, 50*time.Millisecond, func() error {
			st, err := c.Status(ctx, id)
			if err != nil {
				return err
			}
			if st.AppliedSeq < rev {
				return fmt.Errorf("%s applied %d of %d", id, st.AppliedSeq, rev)
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("waiting for %s to apply revision %d: %w", id, rev, err)
		}
	}
	return nil
}

// ProcessRSS is the resident set size of process pid in bytes (VmRSS in
// /proc/<pid>/status).
func ProcessRSS(pid int) (int64, error) {
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, fmt.Errorf("resident set of pid %d: %w", pid, err)
	}
	defer f.Close()
	rss, err := parseVmRSS(f)
	if err != nil {
		return 0, fmt.Errorf("resident set of pid %d: %w", pid, err)
	}
	return rss, nil
}

// parseVmRSS finds the VmRSS line ("VmRSS:	  12345 kB") of a
// /proc/<pid>/status file and returns it in bytes.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		if len(f) != 2 || f[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("VmRSS: %w", err)
		}
		return kb * 1024, nil
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line")
}
