package testdriver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Result is the outcome of a scenario.
type Result string

// The outcomes of a scenario.
const (
	Pass Result = "PASS"
	Fail Result = "FAIL"
	Skip Result = "SKIP"
)

// Step is one numbered action or check of a scenario, as printed.
type Step struct {
	// ID is "<scenario>.<step>", both counted from 1: "2.3".
	ID string `json:"id"`
	// Action is PUT, GET, STATUS, STOP or START (of a kvserver, or of a
	// ZooKeeper member), or SRVR (the ZooKeeper members' modes).
	Action string `json:"action"`
	// Text is the printed line without the ID.
	Text string `json:"text"`
	// Node is the node (or ZooKeeper member) that answered or was acted
	// on, if one.
	Node string `json:"node,omitempty"`
	// Epoch is the epoch the answer carried, if any.
	Epoch uint64 `json:"epoch,omitempty"`
	// OK is false for the check that failed.
	OK bool `json:"ok"`
	// Expected and Got describe a failed check.
	Expected string `json:"expected,omitempty"`
	Got      string `json:"got,omitempty"`
	// Duration is how long the step took (for a step timed from an
	// earlier event, such as a stop, the time since that event).
	Duration time.Duration `json:"-"`
	// Millis is Duration in milliseconds.
	Millis float64 `json:"duration_ms"`
	// Polls is how many times the condition was checked, for polled steps.
	Polls int `json:"polls,omitempty"`
}

// Failover is what leader-election (and zookeeper-loss, with one
// ZooKeeper member down) measured.
type Failover struct {
	// Stop is how the old leader was stopped.
	Stop cluster.Stop `json:"stop"`
	// OldLeader and OldEpoch are the leader before the stop.
	OldLeader string `json:"old_leader"`
	OldEpoch  uint64 `json:"old_epoch"`
	// NewLeader and NewEpoch are the leader the running nodes agreed on.
	NewLeader string `json:"new_leader"`
	NewEpoch  uint64 `json:"new_epoch"`
	// Leader is the time from the stop until every running node's status
	// reported the new leader.
	Leader time.Duration `json:"-"`
	// Write is the time from the stop until the new leader acknowledged
	// the first write.
	Write time.Duration `json:"-"`
	// LeaderMillis and WriteMillis are Leader and Write in milliseconds.
	LeaderMillis float64 `json:"leader_ms"`
	WriteMillis  float64 `json:"write_ms"`
}

// ScenarioResult is the outcome of one scenario.
type ScenarioResult struct {
	// Name is the scenario's name, such as "add-read".
	Name string `json:"name"`
	// Shows says in one sentence what the scenario shows.
	Shows string `json:"shows"`
	// Result is PASS, FAIL or SKIP.
	Result Result `json:"result"`
	// Reason says why it passed, failed or was skipped, for people.
	Reason string `json:"reason"`
	// Note is a short form of Reason for the summary table.
	Note string `json:"note"`
	// Failover is set by leader-election and zookeeper-loss once they
	// stopped the leader.
	Failover *Failover `json:"failover,omitempty"`
	// Steps are the steps in the order they were printed.
	Steps []Step `json:"steps"`
	// Duration is how long the scenario ran.
	Duration time.Duration `json:"-"`
	// Millis is Duration in milliseconds.
	Millis float64 `json:"duration_ms"`
}

// NodeInfo names a node of the cluster and where it runs.
type NodeInfo struct {
	ID    string `json:"id"`
	Where string `json:"where"`
}

// Summary is the outcome of a Run.
type Summary struct {
	// Result is PASS when Passed, else FAIL.
	Result Result `json:"result"`
	// Error is set when the run could not complete (interrupted, or the
	// cluster could not be reached).
	Error string `json:"error,omitempty"`
	// Started is when the run started.
	Started time.Time `json:"started"`
	// Duration is how long the run took.
	Duration time.Duration `json:"-"`
	// Millis is Duration in milliseconds.
	Millis float64 `json:"duration_ms"`
	// SessionTimeout is the cluster's ZooKeeper session timeout (0 if
	// unknown).
	SessionTimeout time.Duration `json:"-"`
	// SessionTimeoutMillis is SessionTimeout in milliseconds.
	SessionTimeoutMillis float64 `json:"session_timeout_ms"`
	// Kill is how leader-election stopped the leader.
	Kill cluster.Stop `json:"kill"`
	// NATSURL is the URL the driver connected to.
	NATSURL string `json:"nats_url"`
	// Nodes are the cluster's nodes.
	Nodes []NodeInfo `json:"nodes"`
	// Versions maps a part's name ("go", "testdriver", "kvserver",
	// "nats-server", "zookeeper") to its version.
	Versions map[string]string `json:"versions"`
	// Scenarios are the selected scenarios, in the order they ran.
	Scenarios []ScenarioResult `json:"scenarios"`
	// LogDir is the directory of the run's logs, if any.
	LogDir string `json:"log_dir,omitempty"`
}

// Passed reports whether the run completed, no scenario failed and at
// least one passed. A scenario skipped because an earlier one failed
// comes with that failure; one skipped because the cluster is too small
// for it is not a failure.
func (s Summary) Passed() bool {
	if s.Error != "" {
		return false
	}
	passed, failed, _ := s.Counts()
	return failed == 0 && passed > 0
}

// Scenario returns the result of the named scenario, or nil.
func (s *Summary) Scenario(name string) *ScenarioResult {
	for i := range s.Scenarios {
		if s.Scenarios[i].Name == name {
			return &s.Scenarios[i]
		}
	}
	return nil
}

// Counts returns how many scenarios passed, failed and were skipped.
func (s Summary) Counts() (passed, failed, skipped int) {
	for _, sc := range s.Scenarios {
		switch sc.Result {
		case Pass:
			passed++
		case Fail:
			failed++
		default:
			skipped++
		}
	}
	return passed, failed, skipped
}

// WriteTable writes the summary table: one row per scenario with its
// result, the failover time (leader-election, zookeeper-loss) and a note,
// then a line of totals.
func (s Summary) WriteTable(w io.Writer) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "SCENARIO\tRESULT\tFAILOVER\tNOTES")
	for _, sc := range s.Scenarios {
		failover := "-"
		if sc.Failover != nil && sc.Failover.Write > 0 {
			failover = fmt.Sprintf("%d ms", sc.Failover.Write.Milliseconds())
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", sc.Name, sc.Result, failover, oneLine(sc.Note))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	passed, failed, skipped := s.Counts()
	verdict := "PASS"
	if !s.Passed() {
		verdict = "FAIL"
	}
	_, err := fmt.Fprintf(w, "%s: %d passed, %d failed, %d skipped in %s\n", verdict, passed, failed, skipped, FormatDuration(s.Duration))
	if err != nil {
		return err
	}
	if s.Error != "" {
		_, err = fmt.Fprintf(w, "the run did not complete: %s\n", s.Error)
	}
	return err
}

// WriteJSON writes the summary as indented JSON to path.
func (s Summary) WriteJSON(path string) error {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(s.withMillis()); err != nil {
		return fmt.Errorf("encode summary: %w", err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write summary: %w", err)
	}
	return nil
}

// withMillis fills the *Millis fields from the durations.
func (s Summary) withMillis() Summary {
	s.Millis = millis(s.Duration)
	s.SessionTimeoutMillis = millis(s.SessionTimeout)
	scs := make([]ScenarioResult, len(s.Scenarios))
	for i, sc := range s.Scenarios {
		sc.Millis = millis(sc.Duration)
		if sc.Failover != nil {
			f := *sc.Failover
			f.LeaderMillis, f.WriteMillis = millis(f.Leader), millis(f.Write)
			sc.Failover = &f
		}
		steps := make([]Step, len(sc.Steps))
		for j, st := range sc.Steps {
			st.Millis = millis(st.Duration)
			steps[j] = st
		}
		sc.Steps = steps
		scs[i] = sc
	}
	s.Scenarios = scs
	return s
}

// millis is d in milliseconds, rounded to microseconds.
func millis(d time.Duration) float64 {
	return float64(d.Round(time.Microsecond).Microseconds()) / 1000
}

// FormatDuration formats d for people: "0.8 ms" and "2.1 ms" below ten
// milliseconds, "2113 ms" below ten seconds, "12.3 s" above.
func FormatDuration(d time.Duration) string {
	switch {
	case d < 0:
		return "-" + FormatDuration(-d)
	case d < 10*time.Millisecond:
		return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 1, 64) + " ms"
	case d < 10*time.Second:
		return strconv.FormatInt(d.Milliseconds(), 10) + " ms"
	default:
		return strconv.FormatFloat(d.Seconds(), 'f', 1, 64) + " s"
	}
}

// formatValue formats a read reply's value: the quoted value, or
// `empty (found:false)` for a missing key.
func formatValue(found bool, value string) string {
	if !found {
		return "empty (found:false)"
	}
	return strconv.Quote(value)
}

// plural returns "1 server" or "3 servers".
func plural(n int, word string) string {
	if n == 1 {
		return "1 " + word
	}
	return strconv.Itoa(n) + " " + word + "s"
}

// oneLine collapses s to one line for a table cell.
func oneLine(s string) string {
	return strings.Join(strings.Fields(s), " ")
}
