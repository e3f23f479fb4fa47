package testdriver

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime"
	"runtime/debug"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/micro"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// Retry pauses of the driver's client.Client: short, so that the first write
// after a failover is measured close to when the new leader takes it.
const (
	retryInitial = 10 * time.Millisecond
	retryMax     = 100 * time.Millisecond
)

// versionsQuiet is how long serviceVersions waits for one more answer.
const versionsQuiet = 200 * time.Millisecond

// ErrInterrupted is returned (wrapped) by Run when ctx ended before every
// scenario ran.
var ErrInterrupted = errors.New("interrupted")

// intro tells a newcomer what the scenarios exercise.
const intro = `zkv keeps a copy of every key in the memory of every server. ZooKeeper
elects one leader; a write sent to kv.write reaches only the leader, which
replicates it to the other servers over NATS. A read sent to
kv.node.<id>.read is answered by that one server from its own copy, which
may be stale.`

// Run runs the scenarios cfg selects against cluster, in the order of
// Scenarios(), printing every step, a verdict per scenario and a summary
// table to out. A scenario whose check fails is reported as FAIL and the
// run goes on; a scenario that needs an earlier one that did not pass is
// SKIPPED. Every stop and start of a node goes through cluster; Run never
// closes it.
//
// The error is non-nil only when the run could not happen or complete: cfg
// is unusable, NATS cannot be reached, or ctx ended (the error then wraps
// ErrInterrupted and ctx's error). Failed scenarios are reported in the
// Summary; see Summary.Passed.
func Run(ctx context.Context, cfg Config, cl cluster.Cluster, out io.Writer) (Summary, error) {
	cfg = cfg.withDefaults()
	start := time.Now()
	sum := Summary{
		Started:        start,
		SessionTimeout: cfg.SessionTimeout,
		Kill:           cfg.Kill,
		NATSURL:        cl.NATSURL(),
		Versions:       map[string]string{},
	}
	for _, id := range cl.Nodes() {
		sum.Nodes = append(sum.Nodes, NodeInfo{ID: id, Where: cl.Describe(id)})
	}
	fail := func(err error) (Summary, error) {
		sum.Result = Fail
		sum.Error = err.Error()
		sum.Duration = time.Since(start)
		return sum, err
	}
	if err := cfg.validate(); err != nil {
		return fail(fmt.Errorf("config: %w", err))
	}
	if len(sum.Nodes) == 0 {
		return fail(errors.New("the cluster has no nodes"))
	}

	nc, err := connectNATS(ctx, cl.NATSURL(), cfg.Timeout)
	if err != nil {
		return fail(err)
	}
	defer nc.Close()
	kv, err := client.New(nc,
		client.WithPrefix(cfg.SubjectPrefix),
		client.WithRequestTimeout(cfg.RequestTimeout),
		client.WithRetryBackoff(retryInitial, retryMax))
	if err != nil {
		return fail(fmt.Errorf("bus client: %w", err))
	}
	r := &runner{
		cfg:     cfg,
		cluster: cl,
		client:  kv,
		out:     out,
		log:     cfg.Logger,
		nodes:   cl.Nodes(),
		down:    map[string]bool{},
		values:  map[string]string{},
	}
	sum.Versions = collectVersions(ctx, nc, cl, cfg)
	r.printHeader(sum)

	for i, name := range cfg.Scenarios {
		def := scenarioByName(name)
		sc := ScenarioResult{Name: name, Shows: def.shows}
		r.sc, r.scIndex, r.stepN = &sc, i+1, 0
		fmt.Fprintf(out, "\n== %d/%d %s: %s\n", i+1, len(cfg.Scenarios), name, def.shows)
		reason := ""
		if ctx.Err() != nil {
			reason = "interrupted before it started"
		} else if def.skip != nil {
			reason = def.skip(r, sum)
		}
		if reason != "" {
			sc.Result, sc.Reason, sc.Note = Skip, reason, reason
			fmt.Fprintf(out, "SKIPPED: %s\n", reason)
			sum.Scenarios = append(sum.Scenarios, sc)
			continue
		}
		t0 := time.Now()
		res, err := def.run(ctx, r)
		sc.Duration = time.Since(t0)
		switch {
		case err == nil:
			sc.Result, sc.Reason, sc.Note = Pass, res.reason, res.note
			fmt.Fprintf(out, "PASS: %s\n", res.reason)
		case ctx.Err() != nil:
			sc.Result, sc.Reason, sc.Note = Fail, "interrupted: "+err.Error(), "interrupted"
			fmt.Fprintf(out, "FAIL: interrupted (%v)\n", err)
		default:
			reason := failureReason(sc.Steps, err)
			sc.Result, sc.Reason, sc.Note = Fail, reason, reason
			fmt.Fprintf(out, "FAIL: %s\n", reason)
		}
		r.log.Info("scenario done", "scenario", name, "result", sc.Result, "duration", sc.Duration, "reason", sc.Reason)
		sum.Scenarios = append(sum.Scenarios, sc)
	}

	sum.Duration = time.Since(start)
	sum.Result = Fail
	if sum.Passed() {
		sum.Result = Pass
	}
	var runErr error
	if err := ctx.Err(); err != nil {
		runErr = fmt.Errorf("%w: %w", ErrInterrupted, err)
		sum.Error = runErr.Error()
		sum.Result = Fail
	}
	fmt.Fprintln(out)
	if err := sum.WriteTable(out); err != nil {
		return sum, fmt.Errorf("write summary: %w", err)
	}
	return sum, runErr
}

// failureReason is the one-line reason of a failed scenario: the IDs of
// its failed steps, then err's message (joined errors on one line).
func failureReason(steps []Step, err error) string {
	var ids []string
	for _, st := range steps {
		if !st.OK {
			ids = append(ids, st.ID)
		}
	}
	msg := strings.Join(strings.Split(err.Error(), "\n"), "; ")
	if len(ids) == 0 {
		return msg
	}
	return "[" + strings.Join(ids, ", ") + "] " + msg
}

// connectNATS connects the driver's kv, retrying until timeout: the
// NATS server of a deployment may still be starting.
func connectNATS(ctx context.Context, url string, timeout time.Duration) (*nats.Conn, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var nc *nats.Conn
	err := harness.WaitFor(ctx, pollInterval, func() error {
		var err error
		nc, err = nats.Connect(url, nats.Name("zkv testdriver"), nats.Timeout(time.Second), nats.MaxReconnects(-1))
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connect to NATS %s: %w", url, err)
	}
	return nc, nil
}

// printHeader prints what zkv is and what the run is about to exercise.
func (r *runner) printHeader(sum Summary) {
	fmt.Fprintln(r.out, intro)
	fmt.Fprintln(r.out)
	var nodes []string
	for _, n := range sum.Nodes {
		nodes = append(nodes, fmt.Sprintf("%s (%s)", n.ID, n.Where))
	}
	session := "unknown"
	if r.cfg.SessionTimeout > 0 {
		session = r.cfg.SessionTimeout.String()
	}
	fmt.Fprintf(r.out, "servers:   %s\n", strings.Join(nodes, ", "))
	fmt.Fprintf(r.out, "NATS:      %s; ZooKeeper session timeout: %s\n", sum.NATSURL, session)
	fmt.Fprintf(r.out, "scenarios: %s\n", strings.Join(r.cfg.Scenarios, ", "))
}

// collectVersions names the versions of the driver, the NATS server, the
// kvservers (from their NATS micro service) and whatever the cluster
// reports.
func collectVersions(ctx context.Context, nc *nats.Conn, cl cluster.Cluster, cfg Config) map[string]string {
	v := map[string]string{"go": runtime.Version(), "testdriver": driverVersion()}
	if s := nc.ConnectedServerVersion(); s != "" {
		v["nats-server"] = s
	}
	if s := serviceVersions(ctx, nc, cfg.SubjectPrefix, cfg.RequestTimeout); s != "" {
		v["kvserver"] = s
	}
	if vc, ok := cl.(cluster.Versioned); ok {
		vctx, cancel := context.WithTimeout(ctx, cfg.RequestTimeout)
		defer cancel()
		for k, s := range vc.Versions(vctx) {
			v[k] = s
		}
	}
	return v
}

// driverVersion is the module version and VCS revision of this binary.
func driverVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	v := bi.Main.Version
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			v += " " + s.Value
		}
	}
	return v
}

// serviceVersions pings the nodes' NATS micro service and returns the
// versions they report: "0.1.0", or "n1=0.1.0, n2=0.2.0" if they differ.
// It waits up to timeout for the first answer and then until no answer
// came for a short while; it returns "" if nobody answered.
func serviceVersions(ctx context.Context, nc *nats.Conn, prefix string, timeout time.Duration) string {
	subject, err := micro.ControlSubject(micro.PingVerb, bus.NodeServiceName, "")
	if err != nil {
		return ""
	}
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return ""
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := nc.PublishRequest(subject, inbox, nil); err != nil {
		return ""
	}
	byNode := map[string]string{}
	wait := timeout
	for {
		wctx, cancel := context.WithTimeout(ctx, wait)
		msg, err := sub.NextMsgWithContext(wctx)
		cancel()
		if err != nil {
			break
		}
		wait = versionsQuiet
		var p micro.Ping
		if json.Unmarshal(msg.Data, &p) != nil || p.Name != bus.NodeServiceName {
			continue
		}
		if pp := p.Metadata[bus.MetadataPrefix]; pp != "" && pp != prefix {
			continue
		}
		if id := p.Metadata[bus.MetadataNode]; id != "" {
			byNode[id] = p.Version
		}
	}
	var ids, versions []string
	for id, v := range byNode {
		ids = append(ids, id)
		if !slices.Contains(versions, v) {
			versions = append(versions, v)
		}
	}
	switch len(versions) {
	case 0:
		return ""
	case 1:
		return versions[0]
	}
	slices.Sort(ids)
	var parts []string
	for _, id := range ids {
		parts = append(parts, id+"="+byNode[id])
	}
	return strings.Join(parts, ", ")
}

// runner is the state of one Run, shared by the scenarios in order.
type runner struct {
	cfg     Config
	cluster cluster.Cluster
	client  *client.Client
	out     io.Writer
	log     *slog.Logger
	nodes   []string

	// down holds the nodes the driver stopped and has not started again.
	down map[string]bool
	// values holds what every running node should return for each key
	// written so far.
	values map[string]string
	// leader and epoch are the leader the nodes last agreed on.
	leader string
	epoch  uint64
	// stopped is the node leader-election stopped, until stale-read
	// starts it again.
	stopped string

	sc      *ScenarioResult
	scIndex int
	stepN   int
}

// running returns the nodes the driver has not stopped, in ID order.
func (r *runner) running() []string {
	var ids []string
	for _, id := range r.nodes {
		if !r.down[id] {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// others returns the running nodes other than id.
func (r *runner) others(id string) []string {
	return slices.DeleteFunc(r.running(), func(n string) bool { return n == id })
}

// record numbers st, prints it (with expected and got when it failed) and
// appends it to the current scenario.
func (r *runner) record(st Step) {
	r.stepN++
	st.ID = fmt.Sprintf("%d.%d", r.scIndex, r.stepN)
	if st.OK {
		fmt.Fprintf(r.out, "[%s] %s\n", st.ID, st.Text)
	} else {
		fmt.Fprintf(r.out, "[%s] %s  <- FAILED\n", st.ID, st.Text)
		fmt.Fprintf(r.out, "      expected: %s\n", st.Expected)
		fmt.Fprintf(r.out, "      got:      %s\n", st.Got)
	}
	r.log.Debug("step", "id", st.ID, "action", st.Action, "ok", st.OK, "node", st.Node,
		"epoch", st.Epoch, "duration", st.Duration, "polls", st.Polls, "text", st.Text,
		"expected", st.Expected, "got", st.Got)
	r.sc.Steps = append(r.sc.Steps, st)
}

// checkError is the error of a failed step; its message names the step.
type checkError struct {
	step Step
	msg  string
}

func (e *checkError) Error() string { return e.msg }

// failed marks st as failed and returns the error the scenario returns.
func failed(st *Step, expected, got, format string, args ...any) error {
	st.OK, st.Expected, st.Got = false, expected, got
	return &checkError{step: *st, msg: fmt.Sprintf(format, args...)}
}
