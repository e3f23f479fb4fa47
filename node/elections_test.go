package node

import (
	"fmt"
	"testing"
	"time"

	"github.com/zkvstore/zkv/bus"
)

func TestElectionLog(t *testing.T) {
	t0 := time.Unix(1000, 0)
	at := func(ms int) time.Time { return t0.Add(time.Duration(ms) * time.Millisecond) }
	type obs struct {
		leader string
		epoch  uint64
		ms     int
	}
	tests := []struct {
		name string
		obs  []obs
		want []bus.ElectionEvent
	}{
		{"no leader yet", []obs{{"", 0, 0}, {"", 0, 5}}, nil},
		{"first leader seen", []obs{{"", 0, 0}, {"n1", 1, 10}}, []bus.ElectionEvent{
			{Leader: "n1", Epoch: 1, At: at(10).UnixMilli()}}},
		{"same term again", []obs{{"n1", 1, 0}, {"n1", 1, 10}}, []bus.ElectionEvent{
			{Leader: "n1", Epoch: 1, At: at(0).UnixMilli()}}},
		{"crash: a gap without a leader", []obs{{"n1", 1, 0}, {"", 0, 100}, {"", 0, 200}, {"n2", 3, 350}}, []bus.ElectionEvent{
			{Leader: "n1", Epoch: 1, At: at(0).UnixMilli()},
			{Leader: "n2", Epoch: 3, Previous: "n1", At: at(350).UnixMilli(), LeaderlessMS: 250}}},
		{"a direct change", []obs{{"n1", 1, 0}, {"n2", 3, 40}}, []bus.ElectionEvent{
			{Leader: "n1", Epoch: 1, At: at(0).UnixMilli()},
			{Leader: "n2", Epoch: 3, Previous: "n1", At: at(40).UnixMilli()}}},
		{"the same leader in a new epoch", []obs{{"n1", 1, 0}, {"", 0, 10}, {"n1", 2, 30}}, []bus.ElectionEvent{
			{Leader: "n1", Epoch: 1, At: at(0).UnixMilli()},
			{Leader: "n1", Epoch: 2, Previous: "n1", At: at(30).UnixMilli(), LeaderlessMS: 20}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var l electionLog
			for _, o := range tt.obs {
				l.observe(o.leader, o.epoch, at(o.ms))
			}
			if got := l.list(); fmt.Sprint(got) != fmt.Sprint(tt.want) {
				t.Fatalf("events = %+v\nwant %+v", got, tt.want)
			}
		})
	}
}

// TestElectionLogKeepsTheNewest: the ring holds the last maxElections
// changes, oldest first.
func TestElectionLogKeepsTheNewest(t *testing.T) {
	var l electionLog
	t0 := time.Unix(1000, 0)
	for i := range maxElections + 5 {
		l.observe(fmt.Sprintf("n%d", i%3), uint64(i+1), t0.Add(time.Duration(i)*time.Second))
	}
	got := l.list()
	if len(got) != maxElections {
		t.Fatalf("%d events kept, want %d", len(got), maxElections)
	}
	if first, last := got[0].Epoch, got[len(got)-1].Epoch; first != 6 || last != maxElections+5 {
		t.Fatalf("epochs kept %d..%d, want 6..%d", first, last, maxElections+5)
	}
}
