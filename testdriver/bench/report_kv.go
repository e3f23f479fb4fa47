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

// kvHeader is the header of the kv CSV. The last three columns are
// filled on the memory rows only (op zkv-mem-per-key, n = keys loaded);
// a CSV without them (written before they existed) still reads.
var kvHeader = []string{"op", "clients", "replica", "n", "errors", "elapsed_s", "min_us", "p50_us", "p90_us", "p99_us", "max_us", "mean_us", "sd_us", "ops_per_s",
	"rss_before_bytes", "rss_after_bytes", "raw_bytes_per_key"}

// kvOldColumns is the column count of a CSV from before the memory rows.
const kvOldColumns = 14

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
			strconv.FormatFloat(r.Throughput, 'f', 1, 64),
			strconv.FormatInt(r.RSSBefore, 10), strconv.FormatInt(r.RSSAfter, 10), strconv.Itoa(r.RawPerKey)})
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
	if len(rows) == 0 || len(rows[0]) != len(kvHeader) && len(rows[0]) != kvOldColumns {
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
		if len(row) > kvOldColumns {
			r.RSSBefore, err = strconv.ParseInt(row[14], 10, 64)
			es = append(es, err)
			r.RSSAfter, err = strconv.ParseInt(row[15], 10, 64)
			es = append(es, err)
			r.RawPerKey, err = strconv.Atoi(row[16])
			es = append(es, err)
		}
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
	var b strings.Builder
	writeKVMethod(&b, rep.Config)
	writeKVGoals(&b, KVGoals(rs))
	for _, c := range rep.Charts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(c, ".png"), c)
	}
	for _, c := range concurrencies(rs) {
		writeKVClients(&b, ix, c)
	}
	writeKVModes(&b, ix, concurrencies(rs))
	writeKVMemory(&b, MemRows(rs))
	writeKVLag(&b, ix, rs)
	writeMetaSection(&b, rep.Meta, rep.CSVPath)
	_, err := io.WriteString(w, b.String())
	return err
}

// writeKVMethod writes the title and how the run measures.
func writeKVMethod(b *strings.Builder, config string) {
	b.WriteString("# Key-value performance: zkv against bare NATS and JetStream KV\n\n")
	b.WriteString("Generated by `testdriver bench kv` (do not edit by hand: `make bench` rewrites it).\n\n")
	b.WriteString("One run, one machine. zkv runs in both of its modes, side by side, on one ZooKeeper:\n\n")
	b.WriteString("- **external NATS**: three kvservers and the driver connect to NATS server s1; the echo responder (R, the\n")
	b.WriteString("  floor: one request/reply through NATS) runs on s1 too, and the JetStream KV R1 buckets are placed on s1.\n")
	b.WriteString("  The R3 buckets live on the three-server NATS cluster (s1–s3, clustered on loopback in-process);\n")
	b.WriteString("- **embedded mode**: three more kvservers, each a NATS node, clustered with routes, with no NATS server of\n")
	b.WriteString("  their own; each client connects to the listener of the node it addresses (the follower for reads and\n")
	b.WriteString("  forwarded writes, the leader for `kv.write`), so a request is one hop into the process that holds the\n")
	b.WriteString("  data, as a JetStream R1 request is. Both clusters run for the whole run; only one is loaded at a time.\n\n")
	if config != "" {
		b.WriteString(config + "\n\n")
	}
	b.WriteString("Operations:\n\n")
	b.WriteString("- `nats-echo`: `nc.Request` to a subscriber that answers with the request body, running in its own process\n")
	b.WriteString("  like a kvserver (R, the floor);\n")
	b.WriteString("- `nats-echo-inproc`: the same responder inside the driver process: cheaper, because waking a goroutine\n")
	b.WriteString("  of a process that is already running costs less than waking an idle process (shown for reference);\n")
	b.WriteString("- `zkv-read`: `client.Client.Read` on `kv.node.<follower>.read` (the follower's own copy);\n")
	b.WriteString("- `zkv-write`: `client.Client.Put` on `kv.write` with acks=leader, answered by the leader once it applied\n")
	b.WriteString("  and published the write;\n")
	b.WriteString("- `zkv-write-acks-all`: the same with acks=all: the leader answers once every server confirmed it;\n")
	b.WriteString("- `zkv-write-follower`: `Put` with `client.Via(<follower>)` on `kv.node.<follower>.write` (acks=leader),\n")
	b.WriteString("  which forwards to `kv.write`;\n")
	b.WriteString("- `zkv-embedded-*`: the same four on the embedded-mode cluster;\n")
	b.WriteString("- `js-kv-r1-put/get`, `js-kv-r3-put/get`: `jetstream.KeyValue.Put` / `Get` (nats.go `jetstream`) on\n")
	b.WriteString("  buckets with file storage; `js-kv-r1-mem-*`, `js-kv-r3-mem-*`: the same with memory storage.\n\n")
	b.WriteString("Latencies in microseconds (HdrHistogram, 3 significant digits); throughput in operations per second\n")
	b.WriteString("over all clients. Each client has its own NATS connection and issues one request at a time.\n")
	b.WriteString("Each zkv operation is compared with R (the echo process's p50 at the same concurrency) and with the\n")
	b.WriteString("JetStream KV operation it competes with, file storage: reads with R1 get, acks=leader writes (also through\n")
	b.WriteString("a follower) with R1 put, acks=all writes with R3 put.\n\n")
}

// writeKVGoals writes the goals with their verdicts.
func writeKVGoals(b *strings.Builder, goals []KVGoal) {
	b.WriteString("## Goals\n\n")
	b.WriteString("R is the echo process's p50 at one client. A ratio is the measured value over its reference; the\n")
	b.WriteString("verdict says by what factor a goal was missed, or the margin by which it was met.\n\n")
	b.WriteString("| goal | measured | ratio | limit | verdict |\n|---|---|---|---|---|\n")
	for _, g := range goals {
		if !g.Known {
			fmt.Fprintf(b, "| %s | not measured | – | %.2f× | – |\n", g.Name, g.Limit)
			continue
		}
		fmt.Fprintf(b, "| %s | %s | %s | %.2f× | **%s** |\n", g.Name, g.Measured, ratioText(g.Ratio), g.Limit, g.Verdict())
	}
	b.WriteString("\n")
}

// writeKVClients writes the table of every operation at c clients.
func writeKVClients(b *strings.Builder, ix KVIndex, c int) {
	echo, _ := ix.Get(OpEcho, c)
	fmt.Fprintf(b, "## %d client%s\n\n", c, plural(c))
	b.WriteString("| operation | n | errors | p50 | p90 | p99 | max | mean ± sd | ops/s | p50 / R | JetStream peer | p50 / peer | ops/s / peer |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, op := range KVOps {
		r, ok := ix.Get(op, c)
		if !ok {
			continue
		}
		l := r.Latency
		fmt.Fprintf(b, "| %s | %d | %d | %s | %s | %s | %s | %s ± %s | %.0f | %s |", op, l.N, r.Errors, Us(l.P50), Us(l.P90), Us(l.P99), Us(l.Max), Us(l.Mean), Us(l.SD), r.Throughput,
			Ratio(float64(l.P50), float64(echo.Latency.P50)))
		peer := jsPeer(op)
		p, ok := ix.Get(peer, c)
		if !ok {
			b.WriteString(" – | – | – |\n")
			continue
		}
		fmt.Fprintf(b, " %s | %s | %s |\n", peer, Ratio(float64(l.P50), float64(p.Latency.P50)), Ratio(r.Throughput, p.Throughput))
	}
	b.WriteString("\n")
}

// kvModePairs pairs each zkv operation in external mode with the same
// operation in embedded mode.
var kvModePairs = []struct{ what, external, embedded string }{
	{"read from a follower", OpRead, OpEmbRead},
	{"write, acks=leader", OpWriteLeader, OpEmbWriteLeader},
	{"write, acks=all", OpWriteAll, OpEmbWriteAll},
	{"write through a follower", OpWriteFollower, OpEmbWriteFollower},
}

// writeKVModes writes external NATS and embedded mode side by side.
func writeKVModes(b *strings.Builder, ix KVIndex, clients []int) {
	if len(clients) == 0 {
		return
	}
	if _, ok := ix.Get(OpEmbRead, clients[0]); !ok {
		return
	}
	b.WriteString("## External NATS and embedded mode side by side\n\n")
	b.WriteString("The same operation on both clusters; *embedded / external* below 1 for p50 (above 1 for ops/s) means\n")
	b.WriteString("embedded mode is faster.\n\n")
	b.WriteString("| clients | operation | external p50 | embedded p50 | embedded / external p50 | external ops/s | embedded ops/s | embedded / external ops/s |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|\n")
	for _, c := range clients {
		for _, p := range kvModePairs {
			x, ok1 := ix.Get(p.external, c)
			e, ok2 := ix.Get(p.embedded, c)
			if !ok1 || !ok2 {
				continue
			}
			fmt.Fprintf(b, "| %d | %s | %s | %s | %s | %.0f | %.0f | %s |\n", c, p.what, Us(x.Latency.P50), Us(e.Latency.P50),
				Ratio(float64(e.Latency.P50), float64(x.Latency.P50)), x.Throughput, e.Throughput, Ratio(e.Throughput, x.Throughput))
		}
	}
	b.WriteString("\n")
}

// writeKVMemory writes the memory per key of every server.
func writeKVMemory(b *strings.Builder, mem []KVResult) {
	if len(mem) == 0 {
		return
	}
	m := mem[0]
	b.WriteString("## Memory per key\n\n")
	fmt.Fprintf(b, "After the rounds above, the driver wrote %d distinct keys of %d raw bytes each (key and value) through\n", m.Latency.N, m.RawPerKey)
	fmt.Fprintf(b, "`kv.write` (acks=leader) to the cluster of the servers below (its mode in brackets), %d writes in flight, in %.1f s (%.0f writes/s,\n", m.Clients, m.Elapsed.Seconds(), m.Throughput)
	fmt.Fprintf(b, "%d failed), waited until every server's status reported the last revision applied, and read each\n", m.Errors)
	b.WriteString("kvserver process's resident set (VmRSS) before and after. Bytes per key = (after − before) / keys: it\n")
	b.WriteString("includes everything the process grew by (store, indexes, history kept, allocator and garbage not yet\n")
	b.WriteString("returned), and in embedded mode the NATS node inside the process.\n\n")
	b.WriteString("| server | keys | RSS before | RSS after | bytes per key | raw bytes per key | ratio |\n|---|---|---|---|---|---|---|\n")
	for _, r := range mem {
		fmt.Fprintf(b, "| %s | %d | %s | %s | %.0f | %d | %s |\n", r.Replica, r.Latency.N, mib(r.RSSBefore), mib(r.RSSAfter), BytesPerKey(r), r.RawPerKey,
			Ratio(BytesPerKey(r), float64(r.RawPerKey)))
	}
	b.WriteString("\n")
}

// mib formats a byte count in MiB.
func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// writeKVLag writes the replication-lag section.
func writeKVLag(b *strings.Builder, ix KVIndex, rs []KVResult) {
	b.WriteString("## Replication lag\n\n")
	b.WriteString("Measured on the external-NATS cluster. **Own clock** (when the kvservers report it): the driver writes one\n")
	b.WriteString("key through the leader, takes the leader's publish time from the update on the replication subject\n")
	b.WriteString("(`Update.Time`, the leader's wall clock) and then asks every replica for its status, whose `last_applied`\n")
	b.WriteString("is the replica's wall clock when it applied that update (nothing else is written meanwhile); lag =\n")
	b.WriteString("last_applied − publish. All processes share one machine, so one clock.\n\n")
	b.WriteString("The lag is also bracketed from outside, as it was before the status reported `last_applied`:\n")
	b.WriteString("for each sample the driver writes one key through the leader and reads it from every replica in a tight\n")
	b.WriteString("loop (one read in flight per replica). The leader's publish time is `Update.Time` (its wall clock, on the\n")
	b.WriteString("same machine as the driver). The apply happened after the replica answered the last read that did\n")
	b.WriteString("not see the value and before it answered the first that did, so **upper** = first seen − publish and\n")
	b.WriteString("**lower** = send time of the last unseen read − publish (at least 0).\n")
	b.WriteString("The bracket is about one read round trip wide, so it cannot resolve a lag below R, and the pollers load\n")
	b.WriteString("the machine. The row *delivery only* comes from a quiet phase before (writes, no pollers): publish → the\n")
	b.WriteString("driver's own subscriber on the same NATS server receiving the update, i.e. the network part of the lag\n")
	b.WriteString("without the replica's decode and apply: a floor, not the lag.\n\n")
	echo1, _ := ix.Get(OpEcho, 1)
	b.WriteString("| replica | bound | n | p50 | p90 | p99 | max | mean ± sd | p50 / R |\n|---|---|---|---|---|---|---|---|---|\n")
	for _, r := range rs {
		bound, ok := lagBound(r.Op)
		if !ok {
			continue
		}
		l := r.Latency
		fmt.Fprintf(b, "| %s | %s | %d | %s | %s | %s | %s | %s ± %s | %s |\n", r.Replica, bound, l.N, Us(l.P50), Us(l.P90), Us(l.P99), Us(l.Max), Us(l.Mean), Us(l.SD),
			Ratio(float64(l.P50), float64(echo1.Latency.P50)))
	}
	b.WriteString("\n")
}

// lagBound names the bound of a lag row; ok is false for other rows.
func lagBound(op string) (string, bool) {
	switch op {
	case OpLagUpper:
		return "upper", true
	case OpLagLower:
		return "lower", true
	case OpLagDelivery:
		return "delivery only (floor)", true
	case OpLagApplied:
		return "**own clock**", true
	}
	return "", false
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
	return p.Save(barChartWidth(ops), 5*vg.Inch, file)
}

// KVThroughputChart draws throughput per operation, grouped by
// concurrency.
func KVThroughputChart(rs []KVResult, file string) error {
	p, ops, _, _, err := kvBars(rs, "throughput per operation (ops/s, all clients)", "ops/s", func(r KVResult) float64 { return r.Throughput })
	if err != nil {
		return err
	}
	return p.Save(barChartWidth(ops), 5*vg.Inch, file)
}

// barSlot is the width per operation of the bar charts.
const barSlot = 0.6 * vg.Inch

// barChartWidth is the width of a bar chart of ops.
func barChartWidth(ops []string) vg.Length {
	return max(8*vg.Inch, vg.Length(len(ops))*barSlot+vg.Inch)
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
	// Each group of bars takes 80% of its operation's slot.
	w := min(vg.Points(14), barSlot*0.8/vg.Length(len(clients)))
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
