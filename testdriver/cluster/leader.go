package cluster

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
)

// Agreement is one leader that every node asked reported.
type Agreement struct {
	// Leader is the node ID of the leader.
	Leader string
	// Epoch is the leader's epoch, which every node reported.
	Epoch uint64
}

// LeaderWant says which leader counts.
type LeaderWant struct {
	// Not, if set, is a leader that does not count (the one stopped).
	Not string
	// Above, if set, is an epoch the leader's must exceed.
	Above uint64
	// Connected also wants every node's ZooKeeper session connected.
	Connected bool
	// RequestTimeout bounds each status request; 0 means one second.
	RequestTimeout time.Duration
}

// SessionConnected is a status's ZooKeeper field when the node's session
// is established.
const SessionConnected = "connected"

// StatusClient is the part of a client.Client the leader checks use.
type StatusClient interface {
	Status(ctx context.Context, node string) (bus.Status, error)
	Subjects() bus.Subjects
}

// AgreeOnce asks each node in nodes for its status once. It returns the
// leader they agree on, or an error saying what is missing; view
// describes every answer in one line, for people.
//
// Agreement means: every node answered, as itself; exactly one reports
// itself leader; every other names that leader at its epoch; and the
// leader is what want asks for.
func AgreeOnce(ctx context.Context, c StatusClient, nodes []string, want LeaderWant) (got Agreement, view string, err error) {
	timeout := want.RequestTimeout
	if timeout <= 0 {
		timeout = time.Second
	}
	var (
		leaders []string
		parts   []string
		answers = map[string]bus.Status{}
		missing []string
	)
	for _, id := range nodes {
		sctx, cancel := context.WithTimeout(ctx, timeout)
		s, err := c.Status(sctx, id)
		cancel()
		if err != nil {
			missing = append(missing, id)
			parts = append(parts, id+": "+DescribeErr(c.Subjects().NodeStatus(id), err))
			continue
		}
		answers[id] = s
		parts = append(parts, DescribeStatus(id, s))
		if s.Role == bus.RoleLeader {
			leaders = append(leaders, id)
		}
	}
	view = strings.Join(parts, "; ")
	switch {
	case len(missing) > 0:
		return Agreement{}, view, fmt.Errorf("no status from %s", JoinIDs(missing))
	case len(leaders) == 0:
		return Agreement{}, view, errors.New("no server reports itself leader")
	case len(leaders) > 1:
		return Agreement{}, view, fmt.Errorf("%s all report themselves leader", JoinIDs(leaders))
	}
	l := answers[leaders[0]]
	got = Agreement{Leader: leaders[0], Epoch: l.Epoch}
	if got.Leader == want.Not {
		return Agreement{}, view, fmt.Errorf("%s still leads", got.Leader)
	}
	if got.Epoch <= want.Above {
		return Agreement{}, view, fmt.Errorf("leader %s has epoch %d, not above %d", got.Leader, got.Epoch, want.Above)
	}
	for id, s := range answers {
		if s.Node != id {
			return Agreement{}, view, fmt.Errorf("the status sent to %s was answered by %q", id, s.Node)
		}
		if s.Leader != got.Leader || s.Epoch != got.Epoch {
			return Agreement{}, view, fmt.Errorf("%s reports leader %q epoch %d", id, s.Leader, s.Epoch)
		}
		if want.Connected && s.ZooKeeper != SessionConnected {
			return Agreement{}, view, fmt.Errorf("%s's ZooKeeper session is %s", id, s.ZooKeeper)
		}
	}
	return got, view, nil
}

// PollInterval is the pause between two polls of a condition.
const PollInterval = 50 * time.Millisecond

// WaitLeader polls AgreeOnce every PollInterval until the nodes agree on
// a leader that want accepts, or ctx ends; the error then carries the
// last view. polls counts the rounds asked.
func WaitLeader(ctx context.Context, c StatusClient, nodes []string, want LeaderWant) (got Agreement, polls int, err error) {
	var (
		view string
		last error
	)
	t := time.NewTicker(PollInterval)
	defer t.Stop()
	for {
		polls++
		g, v, aerr := AgreeOnce(ctx, c, nodes, want)
		if aerr == nil {
			return g, polls, nil
		}
		// A poll cut short by ctx's end says only that time ran out; the
		// last one that ran whole says what was missing.
		if ctx.Err() == nil || last == nil {
			view, last = v, aerr
		}
		select {
		case <-ctx.Done():
			return Agreement{}, polls, &NoLeaderError{Err: context.Cause(ctx), Last: last, View: view}
		case <-t.C:
		}
	}
}

// NoLeaderError is WaitLeader's error when ctx ended before the nodes
// agreed.
type NoLeaderError struct {
	// Err is why the wait ended (ctx's cause).
	Err error
	// Last is what the last poll found missing.
	Last error
	// View describes the last poll's answers.
	View string
}

func (e *NoLeaderError) Error() string {
	return fmt.Sprintf("no agreed leader: %v (%v): %s", e.Last, e.Err, e.View)
}

// Unwrap returns ctx's cause, so errors.Is(err, context.Canceled) tells
// an interrupt from a deadline.
func (e *NoLeaderError) Unwrap() error { return e.Err }

// DescribeStatus describes a node's status in a few words, with its
// ZooKeeper session when that is not connected.
func DescribeStatus(id string, s bus.Status) string {
	if s.Node != "" && s.Node != id {
		id += fmt.Sprintf(" (answering as %s)", s.Node)
	}
	var d string
	switch {
	case s.Role == bus.RoleLeader:
		d = fmt.Sprintf("%s: leader, epoch %d", id, s.Epoch)
	case s.Leader != "":
		d = fmt.Sprintf("%s: %s of %s, epoch %d", id, s.Role, s.Leader, s.Epoch)
	default:
		d = fmt.Sprintf("%s: %s, no leader known", id, s.Role)
	}
	if s.ZooKeeper != "" && s.ZooKeeper != SessionConnected {
		d += ", ZooKeeper " + s.ZooKeeper
	}
	return d
}

// DescribeErr describes a failed request on subject in a few words; "no
// responders" is named as such.
func DescribeErr(subject string, err error) string {
	var e *bus.Error
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		return "no answer: no responders (nobody is subscribed to " + subject + ")"
	case errors.As(err, &e):
		return "error reply: " + e.Error()
	case errors.Is(err, bus.ErrTimeout), errors.Is(err, context.DeadlineExceeded):
		return "no answer on " + subject + " before the deadline"
	case errors.Is(err, context.Canceled):
		return "cancelled"
	}
	return "error: " + err.Error()
}

// JoinIDs joins node IDs for people: "n1", "n1 and n2", "n1, n2 and n3".
func JoinIDs(ids []string) string {
	switch len(ids) {
	case 0:
		return "none"
	case 1:
		return ids[0]
	}
	return strings.Join(ids[:len(ids)-1], ", ") + " and " + ids[len(ids)-1]
}
