package bench

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func ms(v ...float64) []time.Duration {
	out := make([]time.Duration, len(v))
	for i, x := range v {
		out[i] = time.Duration(x * float64(time.Millisecond))
	}
	return out
}

// near reports whether got is within HdrHistogram's 3 significant digits
// (0.1%, plus one microsecond of bucket) of want.
func near(got, want time.Duration) bool {
	d := got - want
	if d < 0 {
		d = -d
	}
	return d <= want/1000+time.Microsecond
}

func TestSummarize(t *testing.T) {
	seq := make([]float64, 100)
	for i := range seq {
		seq[i] = float64(i + 1)
	}
	tests := []struct {
		name                     string
		in                       []time.Duration
		n                        int
		p50, p90, p99, max, mean time.Duration
		sd                       time.Duration
	}{
		{name: "empty", in: nil},
		{name: "one", in: ms(5), n: 1, p50: 5 * time.Millisecond, p90: 5 * time.Millisecond, p99: 5 * time.Millisecond, max: 5 * time.Millisecond, mean: 5 * time.Millisecond},
		{name: "two", in: ms(2, 4), n: 2, p50: 2 * time.Millisecond, p90: 4 * time.Millisecond, p99: 4 * time.Millisecond, max: 4 * time.Millisecond, mean: 3 * time.Millisecond, sd: 1414214 * time.Nanosecond},
		{name: "1..100", in: ms(seq...), n: 100, p50: 50 * time.Millisecond, p90: 90 * time.Millisecond, p99: 99 * time.Millisecond, max: 100 * time.Millisecond, mean: 50500 * time.Microsecond, sd: 29011492 * time.Nanosecond},
		{name: "unordered", in: ms(9, 1, 5, 3, 7), n: 5, p50: 5 * time.Millisecond, p90: 9 * time.Millisecond, p99: 9 * time.Millisecond, max: 9 * time.Millisecond, mean: 5 * time.Millisecond, sd: 3162278 * time.Nanosecond},
		{name: "sub-microsecond counts as one", in: []time.Duration{100, 200}, n: 2, p50: time.Microsecond, p90: time.Microsecond, p99: time.Microsecond, max: 200, mean: 150, sd: 70},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := Summarize(tt.in)
			if s.N != tt.n {
				t.Fatalf("N = %d, want %d", s.N, tt.n)
			}
			for _, c := range []struct {
				what      string
				got, want time.Duration
			}{{"p50", s.P50, tt.p50}, {"p90", s.P90, tt.p90}, {"p99", s.P99, tt.p99}, {"max", s.Max, tt.max}, {"mean", s.Mean, tt.mean}, {"sd", s.SD, tt.sd}} {
				if !near(c.got, c.want) {
					t.Errorf("%s = %v, want %v", c.what, c.got, c.want)
				}
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []time.Duration
		want time.Duration
	}{
		{nil, 0},
		{ms(3), 3 * time.Millisecond},
		{ms(3, 1), 2 * time.Millisecond},
		{ms(5, 1, 3), 3 * time.Millisecond},
		{ms(4, 1, 3, 2), 2500 * time.Microsecond},
	}
	for _, tt := range tests {
		in := append([]time.Duration(nil), tt.in...)
		if got := Median(in); got != tt.want {
			t.Errorf("Median(%v) = %v, want %v", tt.in, got, tt.want)
		}
		for i := range in {
			if in[i] != tt.in[i] {
				t.Fatalf("Median modified its input")
			}
		}
	}
}

func TestHistMerge(t *testing.T) {
	a, b := NewHist(), NewHist()
	for i := 1; i <= 50; i++ {
		a.Record(time.Duration(i) * time.Millisecond)
		b.Record(time.Duration(50+i) * time.Millisecond)
	}
	a.Merge(b)
	a.Merge(nil)
	s := a.Summary()
	if s.N != 100 || !near(s.P50, 50*time.Millisecond) || !near(s.Max, 100*time.Millisecond) {
		t.Fatalf("merged summary %+v", s)
	}
	if (NewHist().Summary() != Summary{}) {
		t.Fatal("empty histogram has a non-zero summary")
	}
	h := NewHist()
	h.Record(time.Hour) // clamped to the histogram's range
	if h.Count() != 1 || h.Quantile(100) < 9*time.Minute {
		t.Fatalf("clamped value: count %d max %v", h.Count(), h.Quantile(100))
	}
}

func TestFormatting(t *testing.T) {
	tests := []struct {
		got, want string
	}{
		{Ms(0), "0"},
		{Ms(123456 * time.Nanosecond), "0.123"},
		{Ms(12345 * time.Microsecond), "12.3"},
		{Ms(1234 * time.Millisecond), "1234"},
		{Us(87 * time.Microsecond), "87"},
		{Ratio(2, 1), "2.00×"},
		{Ratio(1, 0), "–"},
		{Verdict(true), "met"},
		{Verdict(false), "missed"},
	}
	for i, tt := range tests {
		if tt.got != tt.want {
			t.Errorf("case %d: got %q, want %q", i, tt.got, tt.want)
		}
	}
}

func TestParseFlags(t *testing.T) {
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"standalone", ZKStandalone, true}, {" Remote ", ZKRemote, true}, {"ensemble", ZKEnsemble, true}, {"cloud", "", false},
	} {
		got, err := ParseZKMode(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseZKMode(%q) = %q, %v", tt.in, got, err)
		}
	}
	for _, tt := range []struct {
		in, want string
		ok       bool
	}{
		{"sigkill", StopKill, true}, {"TERM", StopTerm, true}, {"pause", StopPause, true}, {"sigstop", "", false},
	} {
		got, err := ParseStop(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseStop(%q) = %q, %v", tt.in, got, err)
		}
	}
	if got := sanitizeArgs([]string{"zkv-bench", "bench", "kv", "--kvserver", "/x/kvserver", "--kvserver=/y", "--out", "a b"}); got != "zkv-bench bench kv --out 'a b'" {
		t.Errorf("sanitizeArgs = %q", got)
	}
	if got := splitList([]string{"a,b", " c ", ""}); strings.Join(got, "|") != "a|b|c" {
		t.Errorf("splitList = %q", got)
	}
}

func sampleRuns() []ElectionRun {
	var runs []ElectionRun
	base := ElectionRun{ZK: ZKStandalone, SessionTimeout: 2 * time.Second, Negotiated: 2 * time.Second, TickTime: 200 * time.Millisecond,
		ZKRTT: time.Millisecond, ZKWriteRTT: 5 * time.Millisecond, NATSRTT: 100 * time.Microsecond, OldLeader: "n1", NewLeader: "n2", OldEpoch: 1, NewEpoch: 2, Fast: "off"}
	for i := 1; i <= 10; i++ {
		r := base
		r.Stop, r.Run = StopTerm, i
		r.ZnodeGone, r.LeaderSeen, r.FirstWrite = time.Duration(i)*time.Millisecond, time.Duration(i+2)*time.Millisecond, time.Duration(i+1)*time.Millisecond
		runs = append(runs, r)
		r.Stop = StopKill
		r.ZnodeGone, r.LeaderSeen, r.FirstWrite = 1900*time.Millisecond+time.Duration(i)*10*time.Millisecond, 1950*time.Millisecond+time.Duration(i)*10*time.Millisecond, 1940*time.Millisecond+time.Duration(i)*10*time.Millisecond
		runs = append(runs, r)
	}
	failed := base
	failed.Stop, failed.Run, failed.Err = StopKill, 11, "timed out waiting for the failover"
	failed.ZnodeGone, failed.LeaderSeen, failed.FirstWrite = -1, -1, -1
	runs = append(runs, failed)
	// Fast failover on: (c) 30..120 ms.
	for i := 1; i <= 10; i++ {
		r := base
		r.Stop, r.Run, r.Fast = StopKill, i, "on"
		r.ZnodeGone, r.LeaderSeen, r.FirstWrite = time.Duration(i)*10*time.Millisecond, time.Duration(i)*10*time.Millisecond+15*time.Millisecond, time.Duration(i)*10*time.Millisecond+20*time.Millisecond
		runs = append(runs, r)
	}
	// A second timeout for the sweep chart.
	for i := 1; i <= 3; i++ {
		r := base
		r.Stop, r.Run, r.SessionTimeout, r.Negotiated = StopKill, i, 4*time.Second, 4*time.Second
		r.ZnodeGone, r.LeaderSeen, r.FirstWrite = 3900*time.Millisecond, 3950*time.Millisecond, 3940*time.Millisecond
		runs = append(runs, r)
	}
	return runs
}

func TestElectionCSVRoundTrip(t *testing.T) {
	runs := sampleRuns()
	var b bytes.Buffer
	if err := WriteElectionCSV(&b, runs); err != nil {
		t.Fatal(err)
	}
	got, err := ReadElectionCSV(&b)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(runs) {
		t.Fatalf("read %d runs, wrote %d", len(got), len(runs))
	}
	for i := range runs {
		if got[i] != runs[i] {
			t.Errorf("run %d: got %+v, want %+v", i, got[i], runs[i])
		}
	}
	// A file from before the fast_failover column: its runs had it off.
	var legacy bytes.Buffer
	if err := WriteElectionCSV(&legacy, runs[:1]); err != nil {
		t.Fatal(err)
	}
	var cut []string
	for _, line := range strings.Split(strings.TrimSpace(legacy.String()), "\n") {
		cut = append(cut, line[:strings.LastIndex(line, ",")])
	}
	old, err := ReadElectionCSV(strings.NewReader(strings.Join(cut, "\n") + "\n"))
	if err != nil || len(old) != 1 || old[0].Fast != "off" || old[0].Stop != runs[0].Stop {
		t.Errorf("legacy CSV: %+v, %v", old, err)
	}
	if _, err := ReadElectionCSV(strings.NewReader("a,b\n1,2\n")); err == nil {
		t.Error("a foreign CSV was accepted")
	}
}

func TestGroupElectionAndTargets(t *testing.T) {
	sets := GroupElection(sampleRuns())
	if len(sets) != 4 {
		t.Fatalf("%d settings, want 4", len(sets))
	}
	term, fast, kill := sets[0], sets[1], sets[2]
	if term.Stop != StopTerm || fast.Fast != "on" || kill.Stop != StopKill || kill.Fast != "off" || sets[3].SessionTimeout != 4*time.Second {
		t.Fatalf("order: %v, %v, %v, %v", term.Setting, fast.Setting, kill.Setting, sets[3].Setting)
	}
	if kill.Runs != 11 || kill.Failed != 1 || kill.FirstWrite.N != 10 {
		t.Errorf("kill: runs %d failed %d n %d", kill.Runs, kill.Failed, kill.FirstWrite.N)
	}
	if got := term.Model(); got != 12*time.Millisecond {
		t.Errorf("sigterm model %v", got)
	}
	if got := kill.Model(); got != 2002*time.Millisecond {
		t.Errorf("sigkill model %v", got)
	}
	tests := []struct {
		set  SettingStats
		want []bool
	}{
		// (c) of the sigterm runs is 2..11 ms: p50 6 ms ≤ 10 ms.
		{term, []bool{true}},
		// (c) with fast failover is 30..120 ms: p50 70 ms > 50 ms, p99 ≤ 150 ms.
		{fast, []bool{false, true}},
		// (c) of the sigkill runs is 1950..2040 ms: p50 ≤ 2 s, p99 ≤ 2.2 s.
		{kill, []bool{true, true}},
	}
	for _, tt := range tests {
		ts := tt.set.Targets()
		if len(ts) != len(tt.want) {
			t.Fatalf("%v: %d targets", tt.set.Setting, len(ts))
		}
		for i, tg := range ts {
			if tg.Met != tt.want[i] {
				t.Errorf("%v: %s met=%v (value %v, limit %v)", tt.set.Setting, tg.Name, tg.Met, tg.Value, tg.Limit)
			}
		}
	}
}

func TestElectionReportAndCharts(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := writeElectionFile(filepath.Join(dir, electionCSV), sampleRuns()); err != nil {
		t.Fatal(err)
	}
	if err := writeMeta(filepath.Join(dir, electionMeta), Meta{Commands: []string{"testdriver bench election --runs 10"}, Machine: thisMachine(context.Background(), "3.8.0")}); err != nil {
		t.Fatal(err)
	}
	if err := RenderElection(dir); err != nil {
		t.Fatal(err)
	}
	md, err := os.ReadFile(filepath.Join(dir, electionMD))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"| standalone | sigkill | off | 2s → 2s |", "| standalone | sigkill | on | 2s → 2s |", "(c) first write", "testdriver bench election --runs 10", "**missed**", "**met**", electionBoxPNG, electionTimePNG, "failed run"} {
		if !strings.Contains(string(md), want) {
			t.Errorf("report lacks %q", want)
		}
	}
	for _, png := range []string{electionBoxPNG, electionTimePNG} {
		if fi, err := os.Stat(filepath.Join(dir, png)); err != nil || fi.Size() == 0 {
			t.Errorf("chart %s: %v", png, err)
		}
	}
}
