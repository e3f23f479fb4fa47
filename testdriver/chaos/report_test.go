package chaos

import (
	"strings"
	"testing"
	"time"
)

func TestReport(t *testing.T) {
	ok := &RunResult{Case: CaseKillLeader, Variant: "acks-all", Run: 1, Counts: OpCounts{Total: 10, PutsOK: 5}, Lin: LinResult{Verdict: VerdictOK, Ops: 8},
		Times: map[string]time.Duration{TimeNewLeader: 2 * time.Second}}
	bad := &RunResult{Case: CaseNATSRestart, Variant: "no-catch-up", Run: 1, Lin: LinResult{Verdict: VerdictOK},
		Violations: []Violation{{Check: CheckOwnWrite, Key: "k", Node: "n2", Detail: "op 7: n2 answered a read at min_revision 9 with found=false revision 0"}}}
	lim := &RunResult{Case: CaseEmptySurvivor, Variant: "catch-up-first-epoch", Run: 1, Lin: LinResult{Verdict: VerdictIllegal, BadKeys: []string{"a00"}}, LinExpected: true,
		ExpectedLost: 10, Notes: []string{"LIMITATION: with --catch-up, something: 10 keys"}}
	res := &Results{Config: DefaultConfig(), Started: time.Now(), Command: "zkv-chaos chaos --runs 1", Runs: []*RunResult{ok, bad, lim},
		Fuzz: []FuzzResult{{Target: "FuzzDecodeUpdate", Execs: 1234567, Command: FuzzCommand("FuzzDecodeUpdate", time.Minute)}}, FuzzTime: time.Minute}
	md := string(Report(res))
	for _, want := range []string{
		"# Reliability", "zkv-chaos chaos --runs 1", "## Summary", "| kill-leader / acks-all | 1 | 10 | 5 | 0 | ok | 0 | 0 |",
		"## Violations", "**read-your-writes** ×1", "0 (+10 by design)", "illegal (expected)", "2.00 s",
		"`FuzzDecodeUpdate` | 1,234,567", "**Observed:** with --catch-up, something: 10 keys (empty-survivor catch-up-first-epoch #1)",
		"## What zkv guarantees", "**1 wrong**",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("report lacks %q", want)
		}
	}
	if !res.Failed() {
		t.Error("results with a violation do not count as failed")
	}
	if t.Failed() {
		t.Log(md)
	}
}
