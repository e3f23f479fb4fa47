package testdriver

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zkvstore/zkv/testdriver/cluster"
)

// stubCluster is a cluster.Cluster with nodes and nothing behind them.
type stubCluster struct{ nodes []string }

func (s stubCluster) NATSURL() string                                  { return "nats://127.0.0.1:1" }
func (s stubCluster) Nodes() []string                                  { return s.nodes }
func (s stubCluster) Stop(context.Context, string, cluster.Stop) error { return nil }
func (s stubCluster) Start(context.Context, string) error              { return nil }
func (s stubCluster) Describe(id string) string                        { return "stub " + id }
func (s stubCluster) Close(context.Context) error                      { return nil }

// stubEnsemble adds cluster.ZooKeeperFaults to a stubCluster: each member reports
// the mode in modes, or the error in errs; Kill and Start are recorded.
type stubEnsemble struct {
	stubCluster
	members []string

	mu    sync.Mutex
	modes map[string]string
	errs  map[string]error
	calls []string
}

func (s *stubEnsemble) ZooKeeperMembers() []string { return s.members }

func (s *stubEnsemble) ZooKeeperMode(_ context.Context, m string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.errs[m]; err != nil {
		return "", err
	}
	return s.modes[m], nil
}

func (s *stubEnsemble) KillZooKeeper(_ context.Context, m string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "kill "+m)
	return nil
}

func (s *stubEnsemble) StartZooKeeper(_ context.Context, m string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.calls = append(s.calls, "start "+m)
	return nil
}

func TestZooKeeperLossSkip(t *testing.T) {
	three := []string{"n1", "n2", "n3"}
	zoo := []string{"zoo1", "zoo2", "zoo3"}
	tests := []struct {
		name    string
		cluster cluster.Cluster
		down    []string
		want    string // "" for none
	}{
		{"no cluster.ZooKeeperFaults", stubCluster{three}, nil, "cannot"},
		{"no members", &stubEnsemble{stubCluster: stubCluster{three}}, nil, "it has none (local: --zookeeper-ensemble)"},
		{"two members", &stubEnsemble{stubCluster: stubCluster{three}, members: zoo[:2]}, nil, "at least 3 members, and the cluster has 2"},
		{"one running server", &stubEnsemble{stubCluster: stubCluster{three}, members: zoo}, []string{"n1", "n2"}, "at least 2 running servers"},
		{"runs", &stubEnsemble{stubCluster: stubCluster{three}, members: zoo}, []string{"n3"}, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := &runner{cluster: tt.cluster, nodes: tt.cluster.Nodes(), down: map[string]bool{}}
			for _, id := range tt.down {
				r.down[id] = true
			}
			got := zooKeeperLossSkip(r, Summary{})
			if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
				t.Errorf("skip reason %q, want %q", got, tt.want)
			}
		})
	}
}

func TestZooKeeperModesOnce(t *testing.T) {
	members := []string{"zoo1", "zoo2", "zoo3"}
	down := errors.New("connection refused")
	tests := []struct {
		name    string
		modes   map[string]string
		errs    map[string]error
		wantErr string
	}{
		{"serving", map[string]string{"zoo1": "follower", "zoo2": "leader", "zoo3": "follower"}, nil, ""},
		{"one down", map[string]string{"zoo1": "follower", "zoo2": "leader"}, map[string]error{"zoo3": down}, "zoo3: connection refused"},
		{"no leader yet", map[string]string{"zoo1": "follower", "zoo2": "follower", "zoo3": "follower"}, nil, "0 members report Mode: leader"},
		{"two leaders", map[string]string{"zoo1": "leader", "zoo2": "leader", "zoo3": "follower"}, nil, "2 members report Mode: leader"},
		{"standalone", map[string]string{"zoo1": "standalone", "zoo2": "leader", "zoo3": "follower"}, nil, "zoo1 serves as standalone"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			zf := &stubEnsemble{members: members, modes: tt.modes, errs: tt.errs}
			modes, view, err := zkModesOnce(context.Background(), zf, members, time.Second)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("zkModesOnce: %v", err)
				}
				if got := describeModes(members, modes); got != "zoo1 follower, zoo2 leader, zoo3 follower" {
					t.Errorf("describeModes = %q", got)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("zkModesOnce error = %v, want %q", err, tt.wantErr)
			}
			for _, m := range members {
				if !strings.Contains(view, m+": ") {
					t.Errorf("view %q does not describe %s", view, m)
				}
			}
		})
	}
}

// TestZooKeeperSteps runs the ZooKeeper steps of zookeeper-loss on a stub
// ensemble: the printed lines, the steps' fields, and a failure that names
// what was expected.
func TestZooKeeperSteps(t *testing.T) {
	members := []string{"zoo1", "zoo2", "zoo3"}
	zf := &stubEnsemble{
		stubCluster: stubCluster{[]string{"n1"}},
		members:     members,
		modes:       map[string]string{"zoo1": "follower", "zoo2": "follower", "zoo3": "leader"},
	}
	var out strings.Builder
	r := &runner{
		cfg:     Config{Timeout: 300 * time.Millisecond}.withDefaults(),
		cluster: zf,
		out:     &out,
		log:     slog.New(slog.DiscardHandler),
		sc:      &ScenarioResult{},
		scIndex: 4,
	}
	ctx := context.Background()

	modes, st, err := r.zkServing(ctx, zf, members, time.Time{}, "")
	r.record(st)
	if err != nil || modes["zoo3"] != "leader" || st.Action != "SRVR" || st.Node != "zoo3" {
		t.Fatalf("zkServing = %v, %+v, %v", modes, st, err)
	}
	st, err = r.zkKill(ctx, zf, "zoo3", "leader", members[:2])
	r.record(st)
	if err != nil || st.Node != "zoo3" {
		t.Fatalf("zkKill = %+v, %v", st, err)
	}
	// The killed leader's peers have not elected a new one: the step
	// polls until its deadline and fails.
	zf.mu.Lock()
	zf.errs = map[string]error{"zoo3": errors.New("connection refused")}
	zf.mu.Unlock()
	_, st, err = r.zkServing(ctx, zf, members[:2], time.Now(), "after the kill of zoo3")
	r.record(st)
	if err == nil || st.OK || st.Polls < 2 {
		t.Fatalf("zkServing without a leader = %+v, %v; want a failed, polled step", st, err)
	}
	mode, st, err := r.zkStart(ctx, zf, "zoo3")
	if err == nil {
		t.Errorf("zkStart of a member that does not answer = %q, %+v; want an error", mode, st)
	}

	text := out.String()
	for _, want := range []string{
		"[4.1] SRVR to ZooKeeper zoo1, zoo2, zoo3 -> zoo1 follower, zoo2 follower, zoo3 leader (",
		"[4.2] STOP ZooKeeper zoo3 (the ensemble's leader) with SIGKILL -> stopped; 2 of 3 members remain, still a quorum (",
		"[4.3] SRVR to ZooKeeper zoo1, zoo2 -> not serving (",
		"after the kill of zoo3, ",
		"expected: every member serving as leader or follower, one of them leader",
		"got:      zoo1: follower; zoo2: follower",
	} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	if !strings.Contains(err.Error(), "starting ZooKeeper zoo3 again failed") {
		t.Errorf("zkStart error %q", err)
	}
	if got := strings.Join(zf.calls, ", "); got != "kill zoo3, start zoo3" {
		t.Errorf("calls %q", got)
	}
}
