package cluster

import (
	"testing"
	"zkv/node"
)

func TestParseStop(t *testing.T) {
	tests := []struct {
		in   string
		want Stop
		ok   bool
	}{
		{"sigkill", StopKill, true},
		{"SIGKILL", StopKill, true},
		{"kill", StopKill, true},
		{"sigterm", StopTerm, true},
		{"term", StopTerm, true},
		{"sigstop", "", false},
		{"", "", false},
	}
	for _, tt := range tests {
		got, err := ParseStop(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseStop(%q) = %q, %v; want %q ok=%v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func TestZooKeeperVersion(t *testing.T) {
	tests := []struct{ srvr, want string }{
		{"Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\nMode: standalone\n", "3.8.0"},
		{"Zookeeper version: 3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12\n", "3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023"},
		{"Mode: standalone\n", ""},
	}
	for _, tt := range tests {
		if got := zooKeeperVersion(tt.srvr); got != tt.want {
			t.Errorf("zooKeeperVersion(%q) = %q, want %q", tt.srvr, got, tt.want)
		}
	}
}

func TestKVServerSessionTimeout(t *testing.T) {
	if got, want := KVServerSessionTimeout, node.DefaultConfig().SessionTimeout; got != want {
		t.Errorf("KVServerSessionTimeout = %v, kvserver's default is %v", got, want)
	}
}
