package bench

import (
	"bytes"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/urfave/cli/v2"
)

func kvRow(op string, c int, p50 time.Duration, tput float64) KVResult {
	return KVResult{Op: op, Clients: c, Elapsed: time.Second, Throughput: tput,
		Latency: Summary{N: 100, Min: p50 / 2, P50: p50, P90: p50 * 2, P99: p50 * 3, Max: p50 * 4, Mean: p50, SD: p50 / 4}}
}

func memRow(replica string, keys int, before, after int64) KVResult {
	return KVResult{Op: OpMemPerKey, Clients: 64, Replica: replica, Elapsed: 10 * time.Second, Throughput: float64(keys) / 10,
		Latency: Summary{N: keys, P50: time.Millisecond}, RSSBefore: before, RSSAfter: after, RawPerKey: 112}
}

// sampleKV is a run in which R is 100 µs at one client. Goal by goal:
// embedded write 9000/s vs R1 put 10000/s (missed by 1.11×), embedded
// read 22000/s vs R1 get 20000/s (met, 1.10×), embedded acks=all 4000/s
// vs R3 put 8000/s (missed by 2×), embedded read p50 50 µs ≤ 0.6 R (met,
// 1.2×), embedded write p50 120 µs vs 0.8 R (missed by 1.5×), external
// read 105 µs ≤ 1.1 R (met), external write 150 µs vs 1.25 R (missed by
// 1.2×), memory 336 B/key on the worst server = 3× raw (missed by 1.5×).
func sampleKV() []KVResult {
	us := time.Microsecond
	return []KVResult{
		kvRow(OpEcho, 1, 100*us, 9000), kvRow(OpEcho, 16, 1000*us, 15000),
		kvRow(OpRead, 1, 105*us, 8500), kvRow(OpRead, 16, 1100*us, 14000),
		kvRow(OpWriteLeader, 1, 150*us, 6000), kvRow(OpWriteLeader, 16, 1500*us, 9000),
		kvRow(OpWriteAll, 1, 300*us, 3000), kvRow(OpWriteAll, 16, 3000*us, 5000),
		kvRow(OpWriteFollower, 1, 250*us, 4000), kvRow(OpWriteFollower, 16, 2500*us, 6000),
		kvRow(OpEmbRead, 1, 50*us, 12000), kvRow(OpEmbRead, 16, 700*us, 22000),
		kvRow(OpEmbWriteLeader, 1, 120*us, 7000), kvRow(OpEmbWriteLeader, 16, 1600*us, 9000),
		kvRow(OpEmbWriteAll, 1, 280*us, 3200), kvRow(OpEmbWriteAll, 16, 3500*us, 4000),
		kvRow(OpEmbWriteFollower, 1, 240*us, 4100), kvRow(OpEmbWriteFollower, 16, 2400*us, 6100),
		kvRow(OpJSR1Put, 1, 50*us, 15000), kvRow(OpJSR1Put, 16, 900*us, 10000),
		kvRow(OpJSR1Get, 1, 45*us, 16000), kvRow(OpJSR1Get, 16, 700*us, 20000),
		kvRow(OpJSR3Put, 1, 150*us, 6000), kvRow(OpJSR3Put, 16, 1900*us, 8000),
		kvRow(OpJSR1MemPut, 1, 40*us, 17000), kvRow(OpJSR1MemPut, 16, 800*us, 12000),
		{Op: OpLagDelivery, Clients: 1, Replica: "driver", Latency: Summary{N: 10, P50: 30 * us}},
		{Op: OpLagUpper, Clients: 1, Replica: "n2", Latency: Summary{N: 10, P50: 200 * us}},
		{Op: OpLagLower, Clients: 1, Replica: "n2", Latency: Summary{N: 10, P50: 10 * us}},
		memRow("n1 leader (embedded)", 1_000_000, 20<<20, 20<<20+336_000_000),
		memRow("n2 follower (embedded)", 1_000_000, 18<<20, 18<<20+224_000_000),
	}
}

func TestKVGoals(t *testing.T) {
	gs := KVGoals(sampleKV())
	want := []struct {
		name   string
		ratio  float64
		met    bool
		factor float64
	}{
		{"embedded, 16 clients: write throughput", 0.9, false, 1.0 / 0.9},
		{"embedded, 16 clients: read throughput", 1.1, true, 1.1},
		{"embedded, 16 clients: acks=all write", 0.5, false, 2},
		{"embedded, 1 client: read p50", 0.5, true, 1.2},
		{"embedded, 1 client: write p50", 1.2, false, 1.5},
		{"external NATS, 1 client: read p50", 1.05, true, 1.10 / 1.05},
		{"external NATS, 1 client: write p50", 1.5, false, 1.2},
		{"memory", 3, false, 1.5},
	}
	if len(gs) != len(want) {
		t.Fatalf("%d goals, want %d", len(gs), len(want))
	}
	for i, w := range want {
		g := gs[i]
		if !strings.HasPrefix(g.Name, w.name) || !g.Known || g.Met() != w.met ||
			math.Abs(g.Ratio-w.ratio) > 1e-9 || math.Abs(g.Factor()-w.factor) > 1e-9 {
			t.Errorf("goal %d: %+v (met %v, factor %v), want %+v", i, g, g.Met(), g.Factor(), w)
		}
	}
	if v := gs[4].Verdict(); v != "missed by 1.50×" {
		t.Errorf("verdict %q", v)
	}
	if v := gs[3].Verdict(); v != "met (1.20× margin)" {
		t.Errorf("verdict %q", v)
	}
}

func TestKVGoalsUnknown(t *testing.T) {
	// Without the echo row nothing can be judged against R; without
	// memory rows or the embedded cluster those goals are not measured.
	var rs []KVResult
	for _, r := range sampleKV() {
		if r.Op != OpEcho && r.Op != OpMemPerKey && !isEmbedded(r.Op) {
			rs = append(rs, r)
		}
	}
	for _, g := range KVGoals(rs) {
		if g.Known || g.Met() || g.Verdict() != "not measured" {
			t.Errorf("judged without its figures: %+v", g)
		}
	}
}

func TestKVGoalBoundaries(t *testing.T) {
	for _, tc := range []struct {
		g   KVGoal
		met bool
	}{
		{KVGoal{Known: true, Ratio: 1.25, Limit: 1.25}, true},
		{KVGoal{Known: true, Ratio: 1.2501, Limit: 1.25}, false},
		{KVGoal{Known: true, Ratio: 1.0, Limit: 1.0, AtLeast: true}, true},
		{KVGoal{Known: true, Ratio: 0.999, Limit: 1.0, AtLeast: true}, false},
		{KVGoal{Ratio: 0.1, Limit: 1.0}, false},
	} {
		if tc.g.Met() != tc.met {
			t.Errorf("%+v: met %v, want %v", tc.g, tc.g.Met(), tc.met)
		}
	}
}

func TestMemoryGoalFewerKeys(t *testing.T) {
	g := memoryGoal([]KVResult{memRow("n1 leader (embedded)", 20_000, 0, 20_000*200)}, 2)
	if !g.Known || !g.Met() || !strings.Contains(g.Verdict(), "at 20000 keys, not 1M") {
		t.Errorf("memory goal at 20000 keys: %+v, %q", g, g.Verdict())
	}
	if bpk := BytesPerKey(memRow("x", 1000, 100, 100+150_000)); bpk != 150 {
		t.Errorf("bytes per key %v", bpk)
	}
}

func TestCompare(t *testing.T) {
	cs := Compare(IndexKV(sampleKV()), 16)
	got := map[string]KVComparison{}
	for _, c := range cs {
		got[c.Op] = c
	}
	for op, w := range map[string]struct {
		peer        string
		overR, tput float64
	}{
		OpEmbWriteLeader: {OpJSR1Put, 1.6, 0.9},
		OpEmbRead:        {OpJSR1Get, 0.7, 1.1},
		OpWriteAll:       {OpJSR3Put, 3, 5000.0 / 8000},
		OpWriteFollower:  {OpJSR1Put, 2.5, 0.6},
	} {
		c, ok := got[op]
		if !ok || c.Peer != w.peer || math.Abs(c.P50OverR-w.overR) > 1e-9 || math.Abs(c.ThroughputRatio-w.tput) > 1e-9 {
			t.Errorf("%s: %+v, want %+v", op, c, w)
		}
	}
	if _, ok := got[OpJSR1Put]; ok {
		t.Error("JetStream compared with itself")
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tkvserver\nVmPeak:\t  999 kB\nVmRSS:\t   12345 kB\nThreads:\t9\n"
	got, err := parseVmRSS(strings.NewReader(status))
	if err != nil || got != 12345*1024 {
		t.Errorf("got %d, %v", got, err)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tx\n")); err == nil {
		t.Error("no VmRSS line accepted")
	}
	if rss, err := ProcessRSS(os.Getpid()); err != nil || rss <= 0 {
		t.Errorf("own RSS %d, %v", rss, err)
	}
}

func TestKVCSVRoundTripAndOldFormat(t *testing.T) {
	var b bytes.Buffer
	if err := WriteKVCSV(&b, sampleKV()); err != nil {
		t.Fatal(err)
	}
	got, err := ReadKVCSV(bytes.NewReader(b.Bytes()))
	if err != nil {
		t.Fatal(err)
	}
	want := sampleKV()
	if len(got) != len(want) || got[2].Latency.P50 != 105*time.Microsecond || got[2].Throughput != 8500 {
		t.Fatalf("round trip: %+v", got[2])
	}
	last := got[len(got)-1]
	if last.RSSBefore != want[len(want)-1].RSSBefore || last.RSSAfter != want[len(want)-1].RSSAfter || last.RawPerKey != 112 || last.Latency.N != 1_000_000 {
		t.Errorf("memory row: %+v", last)
	}
	old := strings.Join(kvHeader[:kvOldColumns], ",") + "\nnats-echo,1,,10,0,1.000,1.0,2.0,3.0,4.0,5.0,2.0,1.0,1000.0\n"
	rs, err := ReadKVCSV(strings.NewReader(old))
	if err != nil || len(rs) != 1 || rs[0].Latency.P50 != 2*time.Microsecond {
		t.Errorf("old CSV: %+v, %v", rs, err)
	}
}

func TestKVReportAndCharts(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := WriteKVCSV(&b, sampleKV()); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, kvCSV), b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := writeMeta(filepath.Join(dir, kvMeta), Meta{Commands: []string{"testdriver bench kv"}, Notes: []string{"Setup: test."}}); err != nil {
		t.Fatal(err)
	}
	if err := RenderKV(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, kvMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"| zkv-read | 100 | 0 | 105 |", "1.05×", "Setup: test.", "delivery only",
		"## Goals", "external NATS, 1 client: read p50 ≤ 1.10 × R", "**missed by 1.50×**", "**met (1.10× margin)**",
		"## External NATS and embedded mode side by side", "| 16 | read from a follower | 1100 | 700 | 0.64× | 14000 | 22000 | 1.57× |",
		"## Memory per key", "| n1 leader (embedded) | 1000000 |", "| 336 | 112 | 3.00× |",
		"| zkv-write-acks-all | 100 | 0 | 3000 |", "js-kv-r3-put | 1.58× | 0.62× |",
		kvLatencyPNG, kvClientsPNG, "## Replication lag", "## How this was made",
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, png := range []string{kvLatencyPNG, kvTputPNG, kvClientsPNG} {
		if fi, err := os.Stat(filepath.Join(dir, png)); err != nil || fi.Size() == 0 {
			t.Errorf("chart %s: %v", png, err)
		}
	}
	var sum bytes.Buffer
	WriteKVSummary(&sum, sampleKV())
	for _, want := range []string{"goals:", "missed by 2.00×", "zkv-embedded-read", "(vs js-kv-r1-get)"} {
		if !strings.Contains(sum.String(), want) {
			t.Errorf("summary lacks %q:\n%s", want, sum.String())
		}
	}
}

func TestKVConfigFlags(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		clients []int
		memKeys int
		storage []string
		ok      bool
	}{
		{nil, []int{1, 16, 64}, GoalMemKeys, []string{StorageFile, StorageMemory}, true},
		{[]string{"--quick"}, []int{1, 16}, 20_000, []string{StorageFile, StorageMemory}, true},
		{[]string{"--quick", "--clients", "1,64", "--mem-keys", "5"}, []int{1, 64}, 5, []string{StorageFile, StorageMemory}, true},
		{[]string{"--js-storage", "memory"}, []int{1, 16, 64}, GoalMemKeys, []string{StorageMemory}, true},
		{[]string{"--js-storage", "disk"}, nil, 0, nil, false},
		{[]string{"--mem-keys", "-1"}, nil, 0, nil, false},
	} {
		cmd := kvCommand()
		var got KVConfig
		var err error
		cmd.Action = func(c *cli.Context) error {
			got, err = kvConfig(c)
			return nil
		}
		app := &cli.App{Commands: []*cli.Command{cmd}}
		if runErr := app.Run(append([]string{"x", "kv"}, tc.args...)); runErr != nil {
			t.Fatal(runErr)
		}
		if (err == nil) != tc.ok {
			t.Errorf("%v: error %v", tc.args, err)
			continue
		}
		if tc.ok && (!slices.Equal(got.Clients, tc.clients) || got.MemKeys != tc.memKeys || !slices.Equal(got.JSStorages, tc.storage)) {
			t.Errorf("%v: %+v", tc.args, got)
		}
	}
}
