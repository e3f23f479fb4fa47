package bench

import (
	"encoding/csv"
	"fmt"
	"image/color"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"gonum.org/v1/plot"
	"gonum.org/v1/plot/plotter"
	"gonum.org/v1/plot/plotutil"
	"gonum.org/v1/plot/vg"
)

var kvHeader = []string{"op", "clients", "replica", "n", "errors", "elapsed_s", "min_us", "p50_us", "p90_us", "p99_us", "max_us", "mean_us", "sd_us", "ops_per_s"}

func usField(d time.Duration) string {
	return strconv.FormatFloat(float64(d)/float64(time.Microsecond), 'f', 1, 64)
}

func parseUs(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	return time.Duration(f * float64(time.Microsecond)), err
}

// WriteKVCSV writes a header and the results.
func WriteKVCSV(w io.Writer, rs []KVResult) error {
	cw := csv.NewWriter(w)
	_ = cw.Write(kvHeader)
	for _, r := range rs {
		l := r.Latency
		_ = cw.Write([]string{r.Op, strconv.Itoa(r.Clients), r.Replica, strconv.Itoa(l.N), strconv.FormatInt(r.Errors, 10),
			strconv.FormatFloat(r.Elapsed.Seconds(), 'f', 3, 64),
			usField(l.Min), usField(l.P50), usField(l.P90), usField(l.P99), usField(l.Max), usField(l.Mean), usField(l.SD),
			strconv.FormatFloat(r.Throughput, 'f', 1, 64)})
	}
	cw.Flush()
	return cw.Error()
}

// ReadKVCSV parses what WriteKVCSV wrote.
func ReadKVCSV(rd io.Reader) ([]KVResult, error) {
	rows, err := csv.NewReader(rd).ReadAll()
	if err != nil {
		return nil, fmt.Errorf("kv csv: %w", err)
	}
	if len(rows) == 0 || len(rows[0]) != len(kvHeader) {
		return nil, fmt.Errorf("kv csv: unexpected header")
	}
	var out []KVResult
	for i, row := range rows[1:] {
		var r KVResult
		var es []error
		var err error
		r.Op, r.Replica = row[0], row[2]
		r.Clients, err = strconv.Atoi(row[1])
		es = append(es, err)
		r.Latency.N, err = strconv.Atoi(row[3])
		es = append(es, err)
		r.Errors, err = strconv.ParseInt(row[4], 10, 64)
		es = append(es, err)
		el, err := strconv.ParseFloat(row[5], 64)
		es = append(es, err)
		r.Elapsed = time.Duration(el * float64(time.Second))
		for j, dst := range []*time.Duration{&r.Latency.Min, &r.Latency.P50, &r.Latency.P90, &r.Latency.P99, &r.Latency.Max, &r.Latency.Mean, &r.Latency.SD} {
			*dst, err = parseUs(row[6+j])
			es = append(es, err)
		}
		r.Throughput, err = strconv.ParseFloat(row[13], 64)
		es = append(es, err)
		for _, e := range es {
			if e != nil {
				return nil, fmt.Errorf("kv csv line %d: %w", i+2, e)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// KVIndex finds results by operation and concurrency.
type KVIndex map[string]KVResult

func kvKey(op string, clients int, replica string) string {
	return op + "/" + strconv.Itoa(clients) + "/" + replica
}

// IndexKV indexes results.
func IndexKV(rs []KVResult) KVIndex {
	ix := KVIndex{}
	for _, r := range rs {
		ix[kvKey(r.Op, r.Clients, r.Replica)] = r
	}
	return ix
}

// Get returns the result of op at clients (replica "" for non-lag rows).
func (ix KVIndex) Get(op string, clients int) (KVResult, bool) {
	r, ok := ix[kvKey(op, clients, "")]
	return r, ok && r.Latency.N > 0
}

// jsPeer is the JetStream operation a zkv operation is compared with.
func jsPeer(op string, replicas int) string {
	get, put := OpJSR1Get, OpJSR1Put
	if replicas == 3 {
		get, put = OpJSR3Get, OpJSR3Put
	}
	switch op {
	case OpRead, OpEmbRead:
		return get
	case OpWriteLeader, OpWriteFollower, OpEmbWriteLeader, OpEmbWriteFollower:
		return put
	}
	return ""
}

// KVTarget is one target of the issue.
type KVTarget struct {
	Name     string
	Measured string
	Limit    string
	Met      bool
	Known    bool
}

// KVTargets judges the targets on the results: read p50 ≤ 1.10 R,
// write p50 (leader subject) ≤ 1.25 R, replication lag p50 ≤ 0.75 R (on
// the upper bound of every replica), write throughput at 16 clients ≥
// JetStream KV R1's; R is the echo p50 at one client.
func KVTargets(rs []KVResult) []KVTarget {
	ix := IndexKV(rs)
	echo, ok := ix.Get(OpEcho, 1)
	var out []KVTarget
	ratioTarget := func(name, op string, limit float64) {
		r, ok2 := ix.Get(op, 1)
		t := KVTarget{Name: name, Limit: fmt.Sprintf("%.2f × R", limit), Known: ok && ok2}
		if t.Known {
			ratio := float64(r.Latency.P50) / float64(echo.Latency.P50)
			t.Measured = fmt.Sprintf("%s µs = %.2f × R (R = %s µs)", Us(r.Latency.P50), ratio, Us(echo.Latency.P50))
			t.Met = ratio <= limit
		}
		out = append(out, t)
	}
	ratioTarget("read p50 ≤ 1.10 × R", OpRead, 1.10)
	ratioTarget("write p50 via kv.write ≤ 1.25 × R", OpWriteLeader, 1.25)
	// Lag: the worst replica, from its own clock when it reports one,
	// else the upper bound of the bracket.
	var worstApplied time.Duration
	appliedKnown := false
	for _, r := range rs {
		if r.Op == OpLagApplied && r.Latency.N > 0 {
			appliedKnown = true
			worstApplied = max(worstApplied, r.Latency.P50)
		}
	}
	var worst time.Duration
	var worstLower time.Duration
	lagKnown := false
	for _, r := range rs {
		if r.Op == OpLagUpper && r.Latency.N > 0 {
			lagKnown = true
			worst = max(worst, r.Latency.P50)
		}
		if r.Op == OpLagLower && r.Latency.N > 0 {
			worstLower = max(worstLower, r.Latency.P50)
		}
	}
	lt := KVTarget{Name: "replication lag p50 ≤ 0.75 × R", Limit: "0.75 × R", Known: ok && (lagKnown || appliedKnown)}
	if lt.Known && appliedKnown {
		ratio := float64(worstApplied) / float64(echo.Latency.P50)
		lt.Measured = fmt.Sprintf("%s µs = %.2f × R, slowest replica, from its own last_applied", Us(worstApplied), ratio)
		lt.Met = ratio <= 0.75
	} else if lt.Known {
		ratio := float64(worst) / float64(echo.Latency.P50)
		lt.Measured = fmt.Sprintf("upper bound %s µs = %.2f × R (lower bound %s µs = %.2f × R)", Us(worst), ratio, Us(worstLower), float64(worstLower)/float64(echo.Latency.P50))
		lt.Met = ratio <= 0.75
	}
	out = append(out, lt)
	maxC := 0
	for _, r := range rs {
		if r.Op == OpWriteLeader {
			maxC = max(maxC, r.Clients)
		}
	}
	w, ok1 := ix.Get(OpWriteLeader, maxC)
	js, ok2 := ix.Get(OpJSR1Put, maxC)
	tt := KVTarget{Name: fmt.Sprintf("write throughput at %d clients ≥ JetStream KV R1's", maxC), Limit: "1.00 × JS R1", Known: ok1 && ok2}
	if tt.Known {
		tt.Measured = fmt.Sprintf("%.0f/s vs %.0f/s = %.2f×", w.Throughput, js.Throughput, w.Throughput/js.Throughput)
		tt.Met = w.Throughput >= js.Throughput
	}
	out = append(out, tt)
	// Embedded mode (only when measured).
	if _, ok := ix.Get(OpEmbRead, 1); ok {
		ratioTarget("embedded: read p50 ≤ 0.60 × R", OpEmbRead, 0.60)
		ratioTarget("embedded: write p50 via kv.write ≤ 0.80 × R", OpEmbWriteLeader, 0.80)
		for _, p := range []struct{ op, peer, what string }{{OpEmbWriteLeader, OpJSR1Put, "write"}, {OpEmbRead, OpJSR1Get, "read"}} {
			z, ok1 := ix.Get(p.op, maxC)
			js, ok2 := ix.Get(p.peer, maxC)
			t := KVTarget{Name: fmt.Sprintf("embedded: %s throughput at %d clients ≥ JetStream KV R1's", p.what, maxC), Limit: "1.00 × JS R1", Known: ok1 && ok2}
			if t.Known {
				t.Measured = fmt.Sprintf("%.0f/s vs %.0f/s = %.2f×", z.Throughput, js.Throughput, z.Throughput/js.Throughput)
				t.Met = z.Throughput >= js.Throughput
			}
			out = append(out, t)
		}
	}
	return out
}

// KVReport is what WriteKVReport renders.
type KVReport struct {
	Results []KVResult
	Meta    Meta
	CSVPath string
	Charts  []string
	Config  string // how the measurement was set up, for people
	Leader  string
}

// concurrencies are the client counts measured, in the order first
// measured (every round measures the echo baseline at each).
func concurrencies(rs []KVResult) []int {
	var clients []int
	seen := map[int]bool{}
	for _, r := range rs {
		if r.Op == OpEcho && !seen[r.Clients] {
			seen[r.Clients] = true
			clients = append(clients, r.Clients)
		}
	}
	return clients
}

// WriteKVReport renders kv.md.
func WriteKVReport(w io.Writer, rep KVReport) error {
	rs := rep.Results
	ix := IndexKV(rs)
	clients := concurrencies(rs)
	var b strings.Builder
	b.WriteString("# Key-value performance: zkv against bare NATS and JetStream KV\n\n")
	b.WriteString("Generated by `testdriver bench kv` (do not edit by hand: `make bench` rewrites it).\n\n")
	b.WriteString("One run, one machine, one NATS server for everything: three kvservers (standalone ZooKeeper) and the\n")
	b.WriteString("driver connect to NATS server s1; the echo responder (R, the floor: one request/reply through NATS)\n")
	b.WriteString("runs on s1 too, and the JetStream KV R1 bucket is placed on s1. The R3 bucket lives on the\n")
	b.WriteString("three-server NATS cluster (s1–s3, clustered on loopback in-process).\n\n")
	if rep.Config != "" {
		b.WriteString(rep.Config + "\n\n")
	}
	b.WriteString("Operations:\n\n")
	b.WriteString("- `nats-echo`: `nc.Request` to a subscriber that answers with the request body, running in its own process\n")
	b.WriteString("  like a kvserver (R, the floor);\n")
	b.WriteString("- `nats-echo-inproc`: the same responder inside the driver process: cheaper, because waking a goroutine\n")
	b.WriteString("  of a process that is already running costs less than waking an idle process (shown for reference);\n")
	b.WriteString("- `zkv-read`: `client.Client.Get` on `kv.node.<follower>.read` (the follower's own copy);\n")
	b.WriteString("- `zkv-write`: `client.Client.Put` on `kv.write`, answered by the leader;\n")
	b.WriteString("- `zkv-write-follower`: `client.Client.PutVia` on `kv.node.<follower>.write`, which forwards to `kv.write`;\n")
	b.WriteString("- `zkv-embedded-read`, `zkv-embedded-write`, `zkv-embedded-write-follower`: the same three on a second\n")
	b.WriteString("  cluster in embedded mode (each kvserver a NATS node, clustered with routes), each client connected to\n")
	b.WriteString("  the listener of the node it addresses (the follower, or the leader for `kv.write`);\n")
	b.WriteString("- `js-kv-r1-put/get`, `js-kv-r3-put/get`: `jetstream.KeyValue.Put` / `Get` (nats.go `jetstream`).\n\n")
	b.WriteString("Latencies in microseconds (HdrHistogram, 3 significant digits); throughput in operations per second\n")
	b.WriteString("over all clients. Each client has its own NATS connection and issues one request at a time.\n\n")

	b.WriteString("## Targets\n\n| target | measured | verdict |\n|---|---|---|\n")
	for _, t := range KVTargets(rs) {
		if !t.Known {
			fmt.Fprintf(&b, "| %s | not measured | – |\n", t.Name)
			continue
		}
		fmt.Fprintf(&b, "| %s | %s | **%s** |\n", t.Name, t.Measured, Verdict(t.Met))
	}
	b.WriteString("\n")
	for _, c := range rep.Charts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
	}

	for _, c := range clients {
		echo, _ := ix.Get(OpEcho, c)
		fmt.Fprintf(&b, "## %d client%s\n\n", c, plural(c))
		b.WriteString("| operation | n | errors | p50 | p90 | p99 | max | mean ± sd | ops/s | p50 / R | p50 / JS R1 | p50 / JS R3 | ops/s / JS R1 | ops/s / JS R3 |\n")
		b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
		for _, op := range KVOps {
			r, ok := ix.Get(op, c)
			if !ok {
				continue
			}
			l := r.Latency
			fmt.Fprintf(&b, "| %s | %d | %d | %s | %s | %s | %s | %s ± %s | %.0f | %s |", op, l.N, r.Errors, Us(l.P50), Us(l.P90), Us(l.P99), Us(l.Max), Us(l.Mean), Us(l.SD), r.Throughput,
				Ratio(float64(l.P50), float64(echo.Latency.P50)))
			for _, reps := range []int{1, 3} {
				if peer, ok := ix.Get(jsPeer(op, reps), c); ok {
					fmt.Fprintf(&b, " %s |", Ratio(float64(l.P50), float64(peer.Latency.P50)))
				} else {
					b.WriteString(" – |")
				}
			}
			for _, reps := range []int{1, 3} {
				if peer, ok := ix.Get(jsPeer(op, reps), c); ok {
					fmt.Fprintf(&b, " %s |", Ratio(r.Throughput, peer.Throughput))
				} else {
					b.WriteString(" – |")
				}
			}
			b.WriteString("\n")
		}
		b.WriteString("\n")
	}
	b.WriteString("JetStream columns compare like with like: reads with `Get`, writes with `Put`.\n\n")

	b.WriteString("## Replication lag\n\n")
	b.WriteString("**Own clock** (the figure the target is judged on, when the kvservers report it): the driver writes one\n")
	b.WriteString("key through the leader, takes the leader's publish time from the update on the replication subject\n")
	b.WriteString("(`Update.Time`, the leader's wall clock) and then asks every replica for its status, whose `last_applied`\n")
	b.WriteString("is the replica's wall clock when it applied that update (nothing else is written meanwhile); lag =\n")
	b.WriteString("last_applied − publish. All processes share one machine, so one clock.\n\n")
	b.WriteString("The lag is also bracketed from outside, as it was before the status reported `last_applied`:\n")
	b.WriteString("for each sample the driver writes one key through the leader and reads it from every replica in a tight\n")
	b.WriteString("loop (one read in flight per replica). The leader's publish time is `Update.Time` (its wall clock, on the\n")
	b.WriteString("same machine as the driver). The apply happened after the replica answered the last read that did\n")
	b.WriteString("not see the value and before it answered the first that did, so **upper** = first seen − publish and\n")
	b.WriteString("**lower** = send time of the last unseen read − publish (at least 0). The target is judged on the upper bound.\n")
	b.WriteString("The bracket is about one read round trip wide, so it cannot resolve a lag below R, and the pollers load\n")
	b.WriteString("the machine. The row *delivery only* comes from a quiet phase before (writes, no pollers): publish → the\n")
	b.WriteString("driver's own subscriber on the same NATS server receiving the update, i.e. the network part of the lag\n")
	b.WriteString("without the replica's decode and apply: a floor, not the lag.\n\n")
	echo1, _ := ix.Get(OpEcho, 1)
	b.WriteString("| replica | bound | n | p50 | p90 | p99 | max | mean ± sd | p50 / R |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		if r.Op != OpLagUpper && r.Op != OpLagLower && r.Op != OpLagDelivery && r.Op != OpLagApplied {
			continue
		}
		l := r.Latency
		bound := "upper"
		switch r.Op {
		case OpLagLower:
			bound = "lower"
		case OpLagDelivery:
			bound = "delivery only (floor)"
		case OpLagApplied:
			bound = "**own clock**"
		}
		fmt.Fprintf(&b, "| %s | %s | %d | %s | %s | %s | %s | %s ± %s | %s |\n", r.Replica, bound, l.N, Us(l.P50), Us(l.P90), Us(l.P99), Us(l.Max), Us(l.Mean), Us(l.SD),
			Ratio(float64(l.P50), float64(echo1.Latency.P50)))
	}
	b.WriteString("\n")
	writeMetaSection(&b, rep.Meta, rep.CSVPath)
	_, err := io.WriteString(w, b.String())
	return err
}

func plural(n int) string {
	if n == 1 {
		return ""
	}
	return "s"
}

// KVChart draws p50 latency (left) per operation as grouped bars, one
// group per concurrency, and saves it as PNG.
func KVChart(rs []KVResult, file string) error {
	p, ops, clients, ix, err := kvBars(rs, "p50 latency per operation (µs)", "µs", func(r KVResult) float64 {
		return float64(r.Latency.P50) / float64(time.Microsecond)
	})
	if err != nil {
		return err
	}
	if echo, ok := ix.Get(OpEcho, clients[0]); ok {
		line, err := plotter.NewLine(plotter.XYs{{X: -0.5, Y: echo.Latency.P50.Seconds() * 1e6}, {X: float64(len(ops)) - 0.5, Y: echo.Latency.P50.Seconds() * 1e6}})
		if err == nil {
			line.Color = color.Gray{Y: 80}
			line.Dashes = []vg.Length{vg.Points(4), vg.Points(3)}
			p.Add(line)
			p.Legend.Add(fmt.Sprintf("R at %d client%s", clients[0], plural(clients[0])), line)
		}
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, file)
}

// KVThroughputChart draws throughput per operation, grouped by
// concurrency.
func KVThroughputChart(rs []KVResult, file string) error {
	p, _, _, _, err := kvBars(rs, "throughput per operation (ops/s, all clients)", "ops/s", func(r KVResult) float64 { return r.Throughput })
	if err != nil {
		return err
	}
	return p.Save(8*vg.Inch, 5*vg.Inch, file)
}

// kvBars plots value of every operation as grouped bars, one group per
// concurrency measured, and returns the plot with the operations and
// concurrencies it shows.
func kvBars(rs []KVResult, title, unit string, value func(KVResult) float64) (*plot.Plot, []string, []int, KVIndex, error) {
	ix := IndexKV(rs)
	clients := concurrencies(rs)
	if len(clients) == 0 {
		return nil, nil, nil, ix, fmt.Errorf("chart %q: no %s rows", title, OpEcho)
	}
	var ops []string
	for _, op := range KVOps {
		if _, ok := ix.Get(op, clients[0]); ok {
			ops = append(ops, op)
		}
	}
	p := plot.New()
	p.Title.Text = title
	p.Y.Label.Text = unit
	p.Legend.Top = true
	w := vg.Points(14)
	for ci, c := range clients {
		vals := make(plotter.Values, len(ops))
		for i, op := range ops {
			r, _ := ix.Get(op, c)
			vals[i] = value(r)
		}
		bars, err := plotter.NewBarChart(vals, w)
		if err != nil {
			return nil, nil, nil, ix, err
		}
		bars.LineStyle.Width = vg.Length(0)
		bars.Color = plotutil.Color(ci)
		bars.Offset = w * vg.Length(float64(ci)-float64(len(clients)-1)/2)
		p.Add(bars)
		p.Legend.Add(fmt.Sprintf("%d client%s", c, plural(c)), bars)
	}
	p.NominalX(ops...)
	p.X.Tick.Label.Rotation = 0.5
	p.X.Tick.Label.XAlign = -0.9
	p.Add(plotter.NewGrid())
	return p, ops, clients, ix, nil
}

func readKVFile(path string) ([]KVResult, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadKVCSV(f)
}
