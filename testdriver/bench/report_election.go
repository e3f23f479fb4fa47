package bench

import (
	"cmp"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/zkvstore/zkv/internal/failover"
)

// Setting identifies one combination of an election sweep.
type Setting struct {
	ZK             string
	Stop           string
	SessionTimeout time.Duration
	// Fast is the kvservers' --fast-failover: "on" or "off".
	Fast string
}

func (s Setting) String() string {
	return fmt.Sprintf("%s %s %s fast-failover %s", s.ZK, s.Stop, s.SessionTimeout, s.Fast)
}

var zkOrder = map[string]int{ZKStandalone: 0, ZKEnsemble: 1, ZKRemote: 2}
var stopOrder = map[string]int{StopTerm: 0, StopKill: 1, StopPause: 2}

func compareSettings(a, b Setting) int {
	return cmp.Or(
		cmp.Compare(zkOrder[a.ZK], zkOrder[b.ZK]), cmp.Compare(a.ZK, b.ZK),
		cmp.Compare(stopOrder[a.Stop], stopOrder[b.Stop]),
		cmp.Compare(a.SessionTimeout, b.SessionTimeout),
		cmp.Compare(b.Fast, a.Fast), // on before off
	)
}

// SettingStats summarises the runs of one setting.
type SettingStats struct {
	Setting
	Runs, Failed int
	// ZnodeGone, LeaderSeen and FirstWrite are (a), (b) and (c) over the
	// runs that saw them.
	ZnodeGone, LeaderSeen, FirstWrite Summary
	// Raw values, for charts.
	RawGone, RawSeen, RawWrite []time.Duration
	Negotiated, TickTime       time.Duration
	ZKRTT, ZKWriteRTT, NATSRTT time.Duration
	Errors                     []string
}

// GroupElection groups runs by setting, in report order.
func GroupElection(runs []ElectionRun) []SettingStats {
	idx := map[Setting]int{}
	var out []SettingStats
	var zkrtt, zkwrtt, natsrtt [][]time.Duration
	for _, r := range runs {
		s := Setting{ZK: r.ZK, Stop: r.Stop, SessionTimeout: r.SessionTimeout, Fast: r.Fast}
		i, ok := idx[s]
		if !ok {
			i = len(out)
			idx[s] = i
			out = append(out, SettingStats{Setting: s})
			zkrtt, zkwrtt, natsrtt = append(zkrtt, nil), append(zkwrtt, nil), append(natsrtt, nil)
		}
		st := &out[i]
		st.Runs++
		st.Negotiated, st.TickTime = r.Negotiated, r.TickTime
		zkrtt[i] = append(zkrtt[i], r.ZKRTT)
		zkwrtt[i] = append(zkwrtt[i], r.ZKWriteRTT)
		natsrtt[i] = append(natsrtt[i], r.NATSRTT)
		if r.Err != "" {
			st.Failed++
			if len(st.Errors) < 3 {
				st.Errors = append(st.Errors, r.Err)
			}
		}
		if r.ZnodeGone >= 0 {
			st.RawGone = append(st.RawGone, r.ZnodeGone)
		}
		if r.LeaderSeen >= 0 {
			st.RawSeen = append(st.RawSeen, r.LeaderSeen)
		}
		if r.FirstWrite >= 0 {
			st.RawWrite = append(st.RawWrite, r.FirstWrite)
		}
	}
	for i := range out {
		st := &out[i]
		st.ZnodeGone, st.LeaderSeen, st.FirstWrite = Summarize(st.RawGone), Summarize(st.RawSeen), Summarize(st.RawWrite)
		st.ZKRTT, st.ZKWriteRTT, st.NATSRTT = Median(zkrtt[i]), Median(zkwrtt[i]), Median(natsrtt[i])
	}
	slices.SortStableFunc(out, func(a, b SettingStats) int { return compareSettings(a.Setting, b.Setting) })
	return out
}

// Model is the expected failover of a setting, from the round trips
// measured in it.
//
//   - SIGTERM: the leader resigns with a read and two writes (get and
//     delete /leader, delete its election znode), the successor's watch
//     fires and it lists the children (one read): 2 reads + 2 writes.
//   - SIGKILL with fast failover on: the successor sees "no responders"
//     for a window (failover.DefaultConfig: window + one probe interval
//   - one probe timeout, for the probe in flight at the kill),
//     deletes the leader's znodes in one multi (a write), its watch fires
//     and it lists the children and reads /leader first: window +
//     interval + 2 reads + 1 write.
//   - SIGKILL with it off, pause: ZooKeeper expires the session one timeout after it
//     last heard from the leader, then the watch fires and the successor
//     lists the children: timeout + 2 reads. (Expiry is checked once a
//     tick, so up to a tick later; kvserver talks to ZooKeeper every
//     timeout/10, so the last contact is up to that much before the stop.)
func (s SettingStats) Model() time.Duration {
	if s.Stop == StopTerm {
		return 2*s.ZKRTT + 2*s.ZKWriteRTT
	}
	if s.Stop == StopKill && s.Fast == "on" {
		d := failover.DefaultConfig()
		return d.Window + d.Interval + d.Timeout + 2*s.ZKRTT + s.ZKWriteRTT
	}
	t := s.Negotiated
	if t == 0 {
		t = s.SessionTimeout
	}
	return t + 2*s.ZKRTT
}

// Target is one target of the issue, judged on one setting.
type Target struct {
	Name   string
	Limit  time.Duration
	Value  time.Duration
	Met    bool
	Reason string
}

// Targets judges the failover targets on (c), the first write a client
// sees acknowledged: SIGTERM p50 ≤ 10 ms on a standalone ZooKeeper;
// SIGKILL with fast failover p50 ≤ 50 ms and p99 ≤ 150 ms at any session
// timeout; SIGKILL without it p50 ≤ the session timeout and p99 ≤
// session timeout + tickTime.
func (s SettingStats) Targets() []Target {
	c := s.FirstWrite
	if c.N == 0 {
		return nil
	}
	switch {
	case s.Stop == StopTerm && s.ZK == ZKStandalone:
		return []Target{
			{Name: "SIGTERM failover p50 ≤ 10 ms (standalone)", Limit: 10 * time.Millisecond, Value: c.P50, Met: c.P50 <= 10*time.Millisecond},
		}
	case s.Stop == StopKill && s.Fast == "on":
		return []Target{
			{Name: "SIGKILL, fast failover: p50 ≤ 50 ms", Limit: 50 * time.Millisecond, Value: c.P50, Met: c.P50 <= 50*time.Millisecond},
			{Name: "SIGKILL, fast failover: p99 ≤ 150 ms", Limit: 150 * time.Millisecond, Value: c.P99, Met: c.P99 <= 150*time.Millisecond},
		}
	case s.Stop == StopKill:
		// The timeout configured (kvserver --session-timeout), not the
		// one granted: kvserver asks for less to meet it.
		t := s.SessionTimeout
		return []Target{
			{Name: "SIGKILL failover p50 ≤ session timeout", Limit: t, Value: c.P50, Met: c.P50 <= t},
			{Name: "SIGKILL failover p99 ≤ session timeout + tickTime", Limit: t + s.TickTime, Value: c.P99, Met: c.P99 <= t+s.TickTime},
		}
	}
	return nil
}

func summaryRow(w io.Writer, what string, s Summary) {
	if s.N == 0 {
		fmt.Fprintf(w, "| %s | 0 | – | – | – | – | – |\n", what)
		return
	}
	fmt.Fprintf(w, "| %s | %d | %s | %s | %s | %s | %s ± %s |\n", what, s.N, Ms(s.P50), Ms(s.P90), Ms(s.P99), Ms(s.Max), Ms(s.Mean), Ms(s.SD))
}

// ElectionReport is what WriteElectionReport renders.
type ElectionReport struct {
	Runs     []ElectionRun
	Meta     Meta
	CSVPath  string   // relative to the report
	Charts   []string // relative to the report
	Settings []SettingStats
}

// WriteElectionReport renders the Markdown report.
func WriteElectionReport(w io.Writer, rep ElectionReport) error {
	sets := rep.Settings
	if sets == nil {
		sets = GroupElection(rep.Runs)
	}
	var b strings.Builder
	b.WriteString("# Leader election latency\n\n")
	b.WriteString("Generated by `testdriver bench election` (do not edit by hand: `make bench` rewrites it).\n\n")
	b.WriteString("Each run starts from a healthy 3-server cluster under a light write load (one write every 20 ms\n")
	b.WriteString("through `kv.write` with `client.Client`: 100 ms per attempt, retries 1–5 ms apart), stops the leader and\n")
	b.WriteString("times three events on the driver's monotonic clock, from the moment the signal was sent:\n\n")
	b.WriteString("- **(a) znode gone** — the old leader's `/election/server_…` znode deleted (a ZooKeeper watch held by the driver);\n")
	b.WriteString("- **(b) /leader seen** — the new leader's `/leader` znode created (a watch on `/leader`);\n")
	b.WriteString("- **(c) first write** — the first write acknowledged by the new leader: what a client feels.\n\n")
	b.WriteString("The stopped server is then restarted (SIGKILL, SIGTERM) or resumed (pause: SIGSTOP, then SIGCONT\n")
	b.WriteString("1.5 session timeouts later) and the next run waits until every server follows one leader again.\n")
	b.WriteString("The driver's own ZooKeeper session and the kvservers' sessions go through the same path (the proxy, for remote).\n\n")
	b.WriteString("All times in milliseconds.\n\n")

	b.WriteString("## Settings at a glance\n\n")
	b.WriteString("| ZooKeeper | stop | fast failover | session timeout (asked → granted) | ZK read RTT | ZK write RTT | NATS RTT | runs (failed) | (a) p50 | (b) p50 | (c) p50 | (c) p99 | model |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for _, s := range sets {
		fmt.Fprintf(&b, "| %s | %s | %s | %v → %v | %s | %s | %s | %d (%d) | %s | %s | %s | %s | %s |\n",
			s.ZK, s.Stop, s.Fast, s.SessionTimeout, s.Negotiated, Ms(s.ZKRTT), Ms(s.ZKWriteRTT), Ms(s.NATSRTT), s.Runs, s.Failed,
			Ms(s.ZnodeGone.P50), Ms(s.LeaderSeen.P50), Ms(s.FirstWrite.P50), Ms(s.FirstWrite.P99), Ms(s.Model()))
	}
	b.WriteString("\n")
	b.WriteString("**Fast failover** (kvserver `--fast-failover`, on by default): the server next in line probes the leader's\n")
	b.WriteString("`kv.node.<id>.ping` every 3 ms; after 12 ms of nothing but NATS \"no responders\" (the process is gone, its\n")
	b.WriteString("connection closed by its kernel) it deletes the leader's znodes and takes over ([election](../election.md#fast-failover)).\n")
	b.WriteString("Model with it on, SIGKILL: window + probe interval + probe timeout (a probe in flight at the kill gets no answer)\n")
	b.WriteString("+ 2 read RTTs + 1 write RTT. A pause is never\n")
	b.WriteString("detected this way (the paused process keeps its subscriptions), so pause runs measure the session timeout either way.\n\n")
	b.WriteString("**Model.** SIGKILL without fast failover (and a pause past the timeout) ≈ session timeout + a few ZooKeeper round trips:\n")
	b.WriteString("ZooKeeper expires the session one timeout after it last heard from the leader (kvserver talks to it\n")
	b.WriteString("every timeout/10, so up to a tenth earlier; expiry is checked once a tick, so up to a tick later), then\n")
	b.WriteString("the successor's watch fires and it lists the children: model = timeout + 2 read RTTs. SIGTERM ≈ a few\n")
	b.WriteString("round trips without the timeout: the leader gets and deletes `/leader` and deletes its election znode\n")
	b.WriteString("(a read and two writes; ZooKeeper fsyncs its log before it answers a write), then the successor lists the\n")
	b.WriteString("children: model = 2 read RTTs + 2 write RTTs. Read RTT = median of 20 `Exists`, write RTT = median of 20\n")
	b.WriteString("`SetData`, NATS RTT = median of 20 requests to an echo responder, all measured by the driver before the\n")
	b.WriteString("setting's first run, through the same path the kvservers use.\n\n")

	for _, c := range rep.Charts {
		fmt.Fprintf(&b, "![%s](%s)\n\n", strings.TrimSuffix(c[strings.LastIndex(c, "/")+1:], ".png"), c)
	}

	b.WriteString("## Targets\n\n")
	b.WriteString("Judged on (c), the first acknowledged write.\n\n")
	b.WriteString("| setting | target | limit | measured | verdict |\n|---|---|---|---|---|\n")
	for _, s := range sets {
		for _, t := range s.Targets() {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | **%s** |\n", s.Setting, t.Name, Ms(t.Limit), Ms(t.Value), Verdict(t.Met))
		}
	}
	b.WriteString("\n")

	b.WriteString("## Per setting\n\n")
	for _, s := range sets {
		fmt.Fprintf(&b, "### %s, %s, session timeout %v, fast failover %s\n\n", s.ZK, s.Stop, s.SessionTimeout, s.Fast)
		fmt.Fprintf(&b, "Granted session timeout %v, tickTime %v, ZooKeeper read RTT %s ms, write RTT %s ms, NATS RTT %s ms; model %s ms; %d runs, %d failed.\n\n",
			s.Negotiated, s.TickTime, Ms(s.ZKRTT), Ms(s.ZKWriteRTT), Ms(s.NATSRTT), Ms(s.Model()), s.Runs, s.Failed)
		b.WriteString("| event | n | p50 | p90 | p99 | max | mean ± sd |\n|---|---|---|---|---|---|---|\n")
		summaryRow(&b, "(a) znode gone", s.ZnodeGone)
		summaryRow(&b, "(b) /leader seen", s.LeaderSeen)
		summaryRow(&b, "(c) first write", s.FirstWrite)
		for _, e := range s.Errors {
			fmt.Fprintf(&b, "\nfailed run: `%s`\n", strings.ReplaceAll(e, "`", "'"))
		}
		b.WriteString("\n")
	}
	writeMetaSection(&b, rep.Meta, rep.CSVPath)
	_, err := io.WriteString(w, b.String())
	return err
}

func writeMetaSection(b *strings.Builder, m Meta, csvPath string) {
	b.WriteString("## How this was made\n\n")
	if len(m.Commands) > 0 {
		b.WriteString("```sh\n")
		for _, c := range m.Commands {
			b.WriteString(c + "\n")
		}
		b.WriteString("```\n\n")
	}
	if csvPath != "" {
		fmt.Fprintf(b, "Raw data: [%s](%s).\n\n", csvPath, csvPath)
	}
	mc := m.Machine
	fmt.Fprintf(b, "Machine: %d cores (%s), %s, kernel %s; %s; nats-server %s (embedded); ZooKeeper %s",
		mc.Cores, orUnknown(mc.CPU), mc.OS, orUnknown(mc.Kernel), mc.Go, mc.NATS, orUnknown(mc.ZooKeeper))
	if mc.Java != "" {
		fmt.Fprintf(b, " on %s", mc.Java)
	}
	b.WriteString(".")
	if m.Commit != "" {
		fmt.Fprintf(b, " kvserver built from commit %s.", m.Commit)
	}
	if m.Started != "" {
		fmt.Fprintf(b, " Run from %s to %s.", m.Started, m.Finished)
	}
	b.WriteString("\n")
	for _, n := range m.Notes {
		fmt.Fprintf(b, "\n%s\n", n)
	}
}

func orUnknown(s string) string {
	if s == "" {
		return "unknown"
	}
	return s
}
