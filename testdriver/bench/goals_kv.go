package bench

import (
	"fmt"
	"io"
	"math"
	"strings"
)

// GoalMemKeys is the key count the memory goal is stated at.
const GoalMemKeys = 1_000_000

// KVGoal is one goal of the kv benchmark, judged on a run.
type KVGoal struct {
	Name string
	// Measured describes the measured value and what it is compared with.
	Measured string
	// Ratio is the measured value over its reference (R, the JetStream
	// row, or the raw bytes per key); Limit is the bound on Ratio.
	Ratio, Limit float64
	// AtLeast is true for a lower bound (throughput), false for an upper
	// bound (latency, memory).
	AtLeast bool
	// Known is false when the run lacks a figure the goal needs.
	Known bool
	// Note qualifies the verdict (e.g. fewer keys than the goal names).
	Note string
}

// Met reports whether the goal was met.
func (g KVGoal) Met() bool {
	if !g.Known {
		return false
	}
	if g.AtLeast {
		return g.Ratio >= g.Limit
	}
	return g.Ratio <= g.Limit
}

// Factor is how far the measured ratio is from the limit, as a factor of
// at least 1 in the goal's direction: by how much it was missed, or the
// margin by which it was met. 0 when not known.
func (g KVGoal) Factor() float64 {
	if !g.Known || g.Ratio <= 0 || g.Limit <= 0 {
		return 0
	}
	f := g.Ratio / g.Limit
	if g.AtLeast {
		f = g.Limit / g.Ratio
	}
	if f < 1 {
		f = 1 / f
	}
	return f
}

// Verdict is "met (1.30× margin)", "missed by 2.20×", or "not measured".
func (g KVGoal) Verdict() string {
	if !g.Known {
		return "not measured"
	}
	v := fmt.Sprintf("missed by %.2f×", g.Factor())
	if g.Met() {
		v = fmt.Sprintf("met (%.2f× margin)", g.Factor())
	}
	if g.Note != "" {
		v += ", " + g.Note
	}
	return v
}

// KVGoals judges the goals of the kv benchmark on a run: in embedded
// mode at 16 clients, write (acks=leader), read and acks=all write
// throughput at least those of JetStream KV R1 put, R1 get and R3 put
// (file storage); in embedded mode at one client, read p50 ≤ 0.60 R and
// write p50 ≤ 0.80 R; in external mode at one client, read p50 ≤ 1.10 R
// and write p50 ≤ 1.25 R (R: the echo process's p50 at one client);
// resident memory ≤ 2 × the raw bytes per key at 1M keys.
func KVGoals(rs []KVResult) []KVGoal {
	ix := IndexKV(rs)
	return []KVGoal{
		throughputGoal(ix, "embedded, 16 clients: write throughput (acks=leader) ≥ 1.0 × JetStream KV R1 put (file)", OpEmbWriteLeader, OpJSR1Put, 16),
		throughputGoal(ix, "embedded, 16 clients: read throughput ≥ 1.0 × JetStream KV R1 get (file)", OpEmbRead, OpJSR1Get, 16),
		throughputGoal(ix, "embedded, 16 clients: acks=all write throughput ≥ 1.0 × JetStream KV R3 put (file)", OpEmbWriteAll, OpJSR3Put, 16),
		latencyGoal(ix, "embedded, 1 client: read p50 ≤ 0.60 × R", OpEmbRead, 0.60),
		latencyGoal(ix, "embedded, 1 client: write p50 (acks=leader) ≤ 0.80 × R", OpEmbWriteLeader, 0.80),
		latencyGoal(ix, "external NATS, 1 client: read p50 ≤ 1.10 × R", OpRead, 1.10),
		latencyGoal(ix, "external NATS, 1 client: write p50 (acks=leader) ≤ 1.25 × R", OpWriteLeader, 1.25),
		memoryGoal(MemRows(rs), 2.0),
	}
}

// throughputGoal: op's throughput at clients ≥ 1.0 × peer's.
func throughputGoal(ix KVIndex, name, op, peer string, clients int) KVGoal {
	g := KVGoal{Name: name, Limit: 1.0, AtLeast: true}
	z, ok1 := ix.Get(op, clients)
	js, ok2 := ix.Get(peer, clients)
	if !ok1 || !ok2 || js.Throughput <= 0 {
		return g
	}
	g.Known = true
	g.Ratio = z.Throughput / js.Throughput
	g.Measured = fmt.Sprintf("%.0f/s vs %s %.0f/s", z.Throughput, peer, js.Throughput)
	return g
}

// latencyGoal: op's p50 at one client ≤ limit × R.
func latencyGoal(ix KVIndex, name, op string, limit float64) KVGoal {
	g := KVGoal{Name: name, Limit: limit}
	r, ok1 := ix.Get(op, 1)
	echo, ok2 := ix.Get(OpEcho, 1)
	if !ok1 || !ok2 || echo.Latency.P50 <= 0 {
		return g
	}
	g.Known = true
	g.Ratio = float64(r.Latency.P50) / float64(echo.Latency.P50)
	g.Measured = fmt.Sprintf("%s µs (R = %s µs)", Us(r.Latency.P50), Us(echo.Latency.P50))
	return g
}

// memoryGoal: the largest resident bytes per key of any server ≤ limit ×
// the raw bytes of a key.
func memoryGoal(mem []KVResult, limit float64) KVGoal {
	g := KVGoal{Name: fmt.Sprintf("memory ≤ %.0f × raw bytes per key at 1M keys", limit), Limit: limit}
	var worst KVResult
	for _, r := range mem {
		if r.RawPerKey > 0 && r.Latency.N > 0 && (worst.Op == "" || BytesPerKey(r) > BytesPerKey(worst)) {
			worst = r
		}
	}
	if worst.Op == "" {
		return g
	}
	g.Known = true
	g.Ratio = BytesPerKey(worst) / float64(worst.RawPerKey)
	g.Measured = fmt.Sprintf("%.0f B/key on %s vs %d raw B/key, %d keys", BytesPerKey(worst), worst.Replica, worst.RawPerKey, worst.Latency.N)
	if worst.Latency.N < GoalMemKeys {
		g.Note = fmt.Sprintf("at %d keys, not 1M", worst.Latency.N)
	}
	return g
}

// MemRows are the memory rows of a run.
func MemRows(rs []KVResult) []KVResult {
	var out []KVResult
	for _, r := range rs {
		if r.Op == OpMemPerKey {
			out = append(out, r)
		}
	}
	return out
}

// BytesPerKey is a memory row's resident-set growth per loaded key.
func BytesPerKey(r KVResult) float64 {
	if r.Latency.N <= 0 {
		return math.NaN()
	}
	return float64(r.RSSAfter-r.RSSBefore) / float64(r.Latency.N)
}

// KVComparison is one zkv operation beside its references: R (the echo
// process at the same concurrency) and the JetStream KV operation it
// competes with (file storage).
type KVComparison struct {
	Op, Peer        string
	Clients         int
	P50OverR        float64 // 0 when unknown
	P50OverPeer     float64
	ThroughputRatio float64 // op's throughput over peer's
}

// jsPeer is the JetStream KV operation (file storage) a zkv operation
// competes with: reads with R1 get, acks=leader writes with R1 put,
// acks=all writes with R3 put; "" for the others.
func jsPeer(op string) string {
	switch op {
	case OpRead, OpEmbRead:
		return OpJSR1Get
	case OpWriteLeader, OpWriteFollower, OpEmbWriteLeader, OpEmbWriteFollower:
		return OpJSR1Put
	case OpWriteAll, OpEmbWriteAll:
		return OpJSR3Put
	}
	return ""
}

// Compare computes the ratios of every zkv operation measured at
// clients against R and against its JetStream peer.
func Compare(ix KVIndex, clients int) []KVComparison {
	var out []KVComparison
	echo, echoOK := ix.Get(OpEcho, clients)
	for _, op := range KVOps {
		peer := jsPeer(op)
		r, ok := ix.Get(op, clients)
		if peer == "" || !ok {
			continue
		}
		c := KVComparison{Op: op, Peer: peer, Clients: clients}
		if echoOK && echo.Latency.P50 > 0 {
			c.P50OverR = float64(r.Latency.P50) / float64(echo.Latency.P50)
		}
		if p, ok := ix.Get(peer, clients); ok {
			if p.Latency.P50 > 0 {
				c.P50OverPeer = float64(r.Latency.P50) / float64(p.Latency.P50)
			}
			if p.Throughput > 0 {
				c.ThroughputRatio = r.Throughput / p.Throughput
			}
		}
		out = append(out, c)
	}
	return out
}

// ratioText formats a ratio, or "–" for 0 (unknown).
func ratioText(f float64) string {
	if f == 0 || math.IsNaN(f) || math.IsInf(f, 0) {
		return "–"
	}
	return fmt.Sprintf("%.2f×", f)
}

// WriteKVSummary prints who wins: the goals with their verdicts and, per
// concurrency, every zkv operation's ratios to R and to JetStream.
func WriteKVSummary(w io.Writer, rs []KVResult) {
	var b strings.Builder
	b.WriteString("goals:\n")
	for _, g := range KVGoals(rs) {
		fmt.Fprintf(&b, "  %-86s %-6s %s\n", g.Name, ratioText(g.Ratio), g.Verdict())
	}
	ix := IndexKV(rs)
	for _, c := range concurrencies(rs) {
		fmt.Fprintf(&b, "%d client%s: p50 / R, p50 / JetStream, ops/s / JetStream\n", c, plural(c))
		for _, cmp := range Compare(ix, c) {
			fmt.Fprintf(&b, "  %-30s %7s %7s %7s  (vs %s)\n", cmp.Op, ratioText(cmp.P50OverR), ratioText(cmp.P50OverPeer), ratioText(cmp.ThroughputRatio), cmp.Peer)
		}
	}
	_, _ = io.WriteString(w, b.String())
}
