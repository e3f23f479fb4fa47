package testdriver

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
	"github.com/zkvstore/zkv/internal/harness"
	"github.com/zkvstore/zkv/testdriver/cluster"
)

// The functions below each perform one step and return it, fully
// described, without printing it: leader-election runs two of them at
// once and records them afterwards, in order.

// leaderWant says which leader waitAgreement waits for and how the step
// is told.
type leaderWant struct {
	cluster.LeaderWant
	// since, if set, is when the step's clock started (the stop);
	// otherwise it starts with the step.
	since time.Time
	// what ends the step line, e.g. "after the stop".
	what string
}

// waitAgreement polls the status of every running node until exactly one
// reports itself leader, every other reports that leader and its epoch,
// and the leader is what want asks for; or until timeout.
func (r *runner) waitAgreement(ctx context.Context, timeout time.Duration, want leaderWant) (cluster.Agreement, Step, error) {
	begin := time.Now()
	if !want.since.IsZero() {
		begin = want.since
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	nodes := r.running()
	st := Step{Action: "STATUS", OK: true}
	want.RequestTimeout = r.cfg.RequestTimeout
	got, polls, err := cluster.WaitLeader(ctx, r.client, nodes, want.LeaderWant)
	var view string
	if nl := (*cluster.NoLeaderError)(nil); errors.As(err, &nl) {
		view = nl.View
	}
	st.Duration, st.Polls = time.Since(begin), polls
	timing := FormatDuration(st.Duration)
	if want.what != "" {
		timing += " " + want.what
	}
	if polls > 1 {
		timing += ", " + plural(polls, "poll")
	}
	asked := "STATUS of " + strings.Join(nodes, ", ")
	if err != nil {
		st.Text = fmt.Sprintf("%s -> no agreed leader (%s)", asked, timing)
		expected := "one leader reported by " + cluster.JoinIDs(nodes)
		if want.Not != "" {
			expected += ", other than " + want.Not
		}
		if want.Above > 0 {
			expected += fmt.Sprintf(", with an epoch above %d", want.Above)
		}
		if errors.Is(err, context.Canceled) {
			return got, st, failed(&st, expected, view, "interrupted while waiting for the servers to agree on a leader: %s", view)
		}
		return got, st, failed(&st, expected, view, "the servers did not agree on a leader within %s: %s", FormatDuration(timeout), view)
	}
	st.Node, st.Epoch = got.Leader, got.Epoch
	all := "both"
	if len(nodes) == 1 {
		all = "the only running server"
	} else if len(nodes) > 2 {
		all = "all " + strconv.Itoa(len(nodes))
	}
	st.Text = fmt.Sprintf("%s -> leader %s epoch %d, reported by %s (%s)", asked, got.Leader, got.Epoch, all, timing)
	return got, st, nil
}

// describeErr describes a failed request on subject in a few words; "no
// responders" is named as such. The full error goes to the debug log.
func (r *runner) describeErr(subject string, err error) string {
	r.log.Debug("request failed", "subject", subject, "err", err)
	return cluster.DescribeErr(subject, err)
}

// writeWant says which leader must acknowledge a write.
type writeWant struct {
	// leader and epoch, if set, must be the reply's.
	leader string
	epoch  uint64
	// not and above, if set, exclude a stopped leader and its epoch.
	not   string
	above uint64
	// since, if set, is when the step's clock started; what ends the line.
	since time.Time
	what  string
}

// expected describes want for a failure message.
func (w writeWant) expected(key string) string {
	var parts []string
	if w.leader != "" {
		parts = append(parts, "leader "+w.leader)
	} else if w.not != "" {
		parts = append(parts, "a new leader (not "+w.not+")")
	} else {
		parts = append(parts, "the leader")
	}
	if w.epoch > 0 {
		parts = append(parts, fmt.Sprintf("epoch %d", w.epoch))
	} else if w.above > 0 {
		parts = append(parts, fmt.Sprintf("an epoch above %d", w.above))
	}
	return fmt.Sprintf("ok:true for key %s from %s", key, strings.Join(parts, " with "))
}

// put writes key=value on the leader subject (client.Client.Put, which retries
// while no leader answers) and checks the reply against want.
func (r *runner) put(ctx context.Context, timeout time.Duration, key, value string, want writeWant) (bus.WriteReply, Step, error) {
	begin := time.Now()
	if !want.since.IsZero() {
		begin = want.since
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	subject := r.client.Subjects().Write()
	w, err := r.client.Put(ctx, key, value)
	st := Step{Action: "PUT", OK: true, Duration: time.Since(begin), Node: w.Leader, Epoch: w.Epoch}
	timing := FormatDuration(st.Duration)
	if want.what != "" {
		timing += " " + want.what
	}
	sent := fmt.Sprintf("PUT %s=%s via %s", key, value, subject)
	if err != nil {
		why := r.describeErr(subject, err)
		st.Text = fmt.Sprintf("%s -> %s (%s)", sent, why, timing)
		return w, st, failed(&st, want.expected(key), why, "PUT %s=%s was not acknowledged: %s", key, value, why)
	}
	st.Text = fmt.Sprintf("%s -> leader %s epoch %d revision %d (%s)", sent, w.Leader, w.Epoch, w.Revision, timing)
	got := fmt.Sprintf("ok:%v key %s from %s epoch %d revision %d", w.OK, w.Key, w.Leader, w.Epoch, w.Revision)
	switch {
	case !w.OK || w.Key != key || w.Revision == 0 || w.Epoch == 0 || w.Leader == "":
		return w, st, failed(&st, want.expected(key), got, "PUT %s=%s got an incomplete reply: %s", key, value, got)
	case want.leader != "" && w.Leader != want.leader, want.epoch > 0 && w.Epoch != want.epoch:
		return w, st, failed(&st, want.expected(key), got, "PUT %s=%s was acknowledged by %s epoch %d, expected %s epoch %d", key, value, w.Leader, w.Epoch, want.leader, want.epoch)
	case want.not != "" && w.Leader == want.not:
		return w, st, failed(&st, want.expected(key), got, "PUT %s=%s was acknowledged by the stopped leader %s", key, value, w.Leader)
	case w.Epoch <= want.above:
		return w, st, failed(&st, want.expected(key), got, "PUT %s=%s was acknowledged with epoch %d, expected an epoch above %d", key, value, w.Epoch, want.above)
	}
	return w, st, nil
}

// readWant is what a read must return.
type readWant struct {
	found bool
	value string
	// poll repeats the read until it matches (a replica may lag); without
	// it, the first answer counts.
	poll bool
}

func (w readWant) String() string { return formatValue(w.found, w.value) }

// read asks node for key on its own read subject (client.Client.Get) and
// checks the answer against want, polling until it matches or
// ReadTimeout ends when want.poll is set.
func (r *runner) read(ctx context.Context, node, key string, want readWant) (bus.ReadReply, Step, error) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.ReadTimeout)
	defer cancel()
	var (
		reply     bus.ReadReply
		haveReply bool
		lastErr   error
		polls     int
		match     bool
	)
	for {
		polls++
		got, err := r.client.Read(ctx, key, client.FromNode(node))
		switch {
		case err == nil:
			reply, haveReply, lastErr = got, true, nil
			match = got.Found == want.found && (!want.found || got.Value == want.value) && got.Node == node && got.Key == key
		case haveReply && ctx.Err() != nil:
			// The deadline ended during a poll: the last answer stands.
		default:
			lastErr = err
		}
		if match || !want.poll || ctx.Err() != nil || (err != nil && !retryableRead(err)) {
			break
		}
		t := time.NewTimer(pollInterval)
		select {
		case <-ctx.Done():
		case <-t.C:
		}
		t.Stop()
	}
	st := Step{Action: "GET", OK: true, Duration: time.Since(begin), Polls: polls, Node: node}
	timing := FormatDuration(st.Duration)
	if polls > 1 {
		timing += ", " + plural(polls, "poll")
	}
	sent := fmt.Sprintf("GET %s from %s", key, node)
	expected := want.String() + " from " + node
	if lastErr != nil {
		why := r.describeErr(r.client.Subjects().NodeRead(node), lastErr)
		st.Text = fmt.Sprintf("%s -> %s (%s)", sent, why, timing)
		return reply, st, failed(&st, expected, why, "%s did not answer the read of %s (expected %s): %s", node, key, want, why)
	}
	st.Epoch = reply.Epoch
	gotValue := formatValue(reply.Found, reply.Value)
	st.Text = fmt.Sprintf("%s -> %s (%s, epoch %d, %s)", sent, gotValue, reply.Role, reply.Epoch, timing)
	if match {
		return reply, st, nil
	}
	got := fmt.Sprintf("%s from %s (key %q, role %s, epoch %d)", gotValue, reply.Node, reply.Key, reply.Role, reply.Epoch)
	if reply.Node != node {
		return reply, st, failed(&st, expected, got, "a read sent to %s was answered by %q", node, reply.Node)
	}
	return reply, st, failed(&st, expected, got, "%s returned %s for %s, expected %s", node, gotValue, key, want)
}

// retryableRead reports whether polling a read again may help.
func retryableRead(err error) bool {
	return errors.Is(err, bus.ErrUnavailable) || errors.Is(err, bus.ErrTimeout) || errors.Is(err, nats.ErrNoResponders)
}

// readAll reads key from each node until it returns value, recording a
// step per node. It checks every node even after one failed and returns
// the joined errors and the slowest read.
func (r *runner) readAll(ctx context.Context, nodes []string, key, value string) (time.Duration, error) {
	var (
		errs    []error
		slowest time.Duration
	)
	for _, id := range nodes {
		_, st, err := r.read(ctx, id, key, readWant{found: true, value: value, poll: true})
		r.record(st)
		errs = append(errs, err)
		slowest = max(slowest, st.Duration)
		if ctx.Err() != nil {
			break
		}
	}
	return slowest, errors.Join(errs...)
}

// waitFollower polls node's status until it reports itself a follower of
// leader.
func (r *runner) waitFollower(ctx context.Context, node, leader string) (bus.Status, Step, error) {
	begin := time.Now()
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	var (
		s     bus.Status
		view  string
		polls int
	)
	err := harness.WaitFor(ctx, pollInterval, func() error {
		polls++
		sctx, cancel := context.WithTimeout(ctx, r.cfg.RequestTimeout)
		defer cancel()
		var err error
		s, err = r.client.Status(sctx, node)
		if err != nil {
			view = r.describeErr(r.client.Subjects().NodeStatus(node), err)
			return err
		}
		view = cluster.DescribeStatus(node, s)
		if s.Node != node || s.Role != bus.RoleFollower || s.Leader != leader {
			return errors.New(view)
		}
		return nil
	})
	st := Step{Action: "STATUS", OK: true, Duration: time.Since(begin), Polls: polls, Node: node, Epoch: s.Epoch}
	timing := FormatDuration(st.Duration)
	if polls > 1 {
		timing += ", " + plural(polls, "poll")
	}
	if err != nil {
		st.Text = fmt.Sprintf("STATUS of %s -> %s (%s)", node, view, timing)
		return s, st, failed(&st, "follower of "+leader, view, "%s did not report itself a follower of %s within %s: %s", node, leader, FormatDuration(r.cfg.Timeout), view)
	}
	stale := "not stale"
	if s.Stale {
		stale = "stale: missed " + plural(int(s.Gaps), "update")
	}
	st.Text = fmt.Sprintf("STATUS of %s -> follower of %s, epoch %d, %s, %s (%s)", node, s.Leader, s.Epoch, plural(s.Keys, "key"), stale, timing)
	return s, st, nil
}

// stop stops node as how says and marks it down; role names the node's
// part ("the leader"), why, if set, the reason for the stop.
func (r *runner) stop(ctx context.Context, node string, how cluster.Stop, role, why string) (Step, error) {
	where := r.cluster.Describe(node)
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	begin := time.Now()
	err := r.cluster.Stop(ctx, node, how)
	st := Step{Action: "STOP", OK: true, Duration: time.Since(begin), Node: node}
	sent := fmt.Sprintf("STOP %s (%s, %s) with %s", node, role, where, how.Signal())
	if why != "" {
		sent += ", " + why
	}
	if err != nil {
		st.Text = fmt.Sprintf("%s -> error (%s)", sent, FormatDuration(st.Duration))
		return st, failed(&st, node+" stopped", err.Error(), "stopping %s failed: %v", node, err)
	}
	r.down[node] = true
	st.Text = fmt.Sprintf("%s -> stopped (%s)", sent, FormatDuration(st.Duration))
	return st, nil
}

// start starts node again and marks it running.
func (r *runner) start(ctx context.Context, node string) (Step, error) {
	ctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	defer cancel()
	begin := time.Now()
	err := r.cluster.Start(ctx, node)
	st := Step{Action: "START", OK: true, Duration: time.Since(begin), Node: node}
	if err != nil {
		st.Text = fmt.Sprintf("START %s again -> error (%s)", node, FormatDuration(st.Duration))
		return st, failed(&st, node+" running", err.Error(), "starting %s again failed: %v", node, err)
	}
	delete(r.down, node)
	st.Text = fmt.Sprintf("START %s again (%s), with an empty store -> answering its health check (%s)", node, r.cluster.Describe(node), FormatDuration(st.Duration))
	return st, nil
}
