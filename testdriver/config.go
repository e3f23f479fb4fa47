package testdriver

import (
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The scenarios, in the order Run runs them.
const (
	// ScenarioAddRead: the servers elect a leader; a write on kv.write is
	// answered by the leader; every server then returns the value from
	// its own copy.
	ScenarioAddRead = "add-read"
	// ScenarioLeaderElection: the leader is stopped; the others agree on
	// a new leader with a higher epoch, and writes go to it.
	ScenarioLeaderElection = "leader-election"
	// ScenarioStaleRead: the stopped server is started again with an
	// empty store; it answers found:false for a key the others hold until
	// the key is written again.
	ScenarioStaleRead = "stale-read"
	// ScenarioZooKeeperLoss: one ZooKeeper member (the ensemble's leader)
	// is killed, then the kvserver leader; the remaining servers elect a
	// new leader through the remaining quorum and take writes. It needs a
	// cluster.Cluster that implements cluster.ZooKeeperFaults with at least three
	// members, and is skipped on any other.
	ScenarioZooKeeperLoss = "zookeeper-loss"
)

// Scenarios returns the names of every scenario, in the order Run runs
// them.
func Scenarios() []string {
	return []string{ScenarioAddRead, ScenarioLeaderElection, ScenarioStaleRead, ScenarioZooKeeperLoss}
}

// DefaultScenarios are the scenarios run when none are named: the
// specification's three, and zookeeper-loss too where the cluster can kill
// ZooKeeper members (an ensemble).
func DefaultScenarios(zooKeeperFaults bool) []string {
	if zooKeeperFaults {
		return Scenarios()
	}
	return []string{ScenarioAddRead, ScenarioLeaderElection, ScenarioStaleRead}
}

// ParseScenarios parses a comma-separated list of scenario names. Empty
// entries and duplicates are ignored; the result is in the order Run runs
// them. An empty list or "all" means every scenario.
func ParseScenarios(list string) ([]string, error) {
	picked := map[string]bool{}
	for _, name := range strings.Split(list, ",") {
		name = strings.ToLower(strings.TrimSpace(name))
		switch {
		case name == "":
		case name == "all":
			for _, s := range Scenarios() {
				picked[s] = true
			}
		case slices.Contains(Scenarios(), name):
			picked[name] = true
		default:
			return nil, fmt.Errorf("unknown scenario %q: want one or more of %s", name, strings.Join(Scenarios(), ", "))
		}
	}
	if len(picked) == 0 {
		return Scenarios(), nil
	}
	var out []string
	for _, s := range Scenarios() {
		if picked[s] {
			out = append(out, s)
		}
	}
	return out, nil
}

// Defaults of a Config.
const (
	// DefaultTimeout bounds one step: waiting for a leader, a write, a
	// stop, a restart.
	DefaultTimeout = 20 * time.Second
	// DefaultReadTimeout is how long a server is polled for the value it
	// should return.
	DefaultReadTimeout = 10 * time.Second
	// DefaultRequestTimeout bounds one NATS request.
	DefaultRequestTimeout = time.Second
	// DefaultSessionTimeout is the ZooKeeper session timeout the driver
	// gives the servers it starts.
	DefaultSessionTimeout = cluster.DefaultSessionTimeout
	// pollInterval is the pause between two polls of a condition.
	pollInterval = 50 * time.Millisecond
)

// Config configures Run. The zero value runs every scenario with the
// defaults.
type Config struct {
	// Scenarios are the scenarios to run; nil means all. Run runs them in
	// the order of Scenarios(), whatever the order here.
	Scenarios []string
	// Kill is how leader-election (and stale-read, when it stops the
	// leader itself) stops the leader; "" means cluster.StopKill. zookeeper-loss
	// always kills it with SIGKILL.
	Kill cluster.Stop
	// SessionTimeout is the cluster's ZooKeeper session timeout. It is
	// reported, and added to the deadline of the election after a stop; 0
	// means unknown (DefaultSessionTimeout is assumed for the deadline).
	SessionTimeout time.Duration
	// Timeout bounds each step; 0 means DefaultTimeout.
	Timeout time.Duration
	// ReadTimeout is how long a server is polled for an expected value; 0
	// means DefaultReadTimeout.
	ReadTimeout time.Duration
	// FailoverTimeout bounds the wait for a new leader after the stop; 0
	// means SessionTimeout + Timeout.
	FailoverTimeout time.Duration
	// RequestTimeout bounds one NATS request; 0 means
	// DefaultRequestTimeout.
	RequestTimeout time.Duration
	// SubjectPrefix is the cluster's subject prefix; "" means
	// bus.DefaultPrefix.
	SubjectPrefix string
	// Logger receives debug logs of every step; nil discards them.
	Logger *slog.Logger
}

// withDefaults returns c with every zero field set to its default.
func (c Config) withDefaults() Config {
	if c.Scenarios == nil {
		c.Scenarios = Scenarios()
	} else {
		// The canonical order, without duplicates; unknown names stay
		// for validate to report.
		var ordered []string
		for _, s := range Scenarios() {
			if slices.Contains(c.Scenarios, s) {
				ordered = append(ordered, s)
			}
		}
		for _, s := range c.Scenarios {
			if !slices.Contains(Scenarios(), s) && !slices.Contains(ordered, s) {
				ordered = append(ordered, s)
			}
		}
		c.Scenarios = ordered
	}
	if c.Kill == "" {
		c.Kill = cluster.StopKill
	}
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.ReadTimeout <= 0 {
		c.ReadTimeout = DefaultReadTimeout
	}
	if c.FailoverTimeout <= 0 {
		session := c.SessionTimeout
		if session <= 0 {
			session = DefaultSessionTimeout
		}
		c.FailoverTimeout = session + c.Timeout
	}
	if c.RequestTimeout <= 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.SubjectPrefix == "" {
		c.SubjectPrefix = bus.DefaultPrefix
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// validate reports a Config Run cannot use.
func (c Config) validate() error {
	for _, s := range c.Scenarios {
		if !slices.Contains(Scenarios(), s) {
			return fmt.Errorf("unknown scenario %q: want one or more of %s", s, strings.Join(Scenarios(), ", "))
		}
	}
	if c.Kill != cluster.StopKill && c.Kill != cluster.StopTerm {
		return fmt.Errorf("kill %q: want %s or %s", c.Kill, cluster.StopKill, cluster.StopTerm)
	}
	if err := bus.ValidPrefix(c.SubjectPrefix); err != nil {
		return err
	}
	return nil
}
