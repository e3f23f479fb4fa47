package cluster

import (
	"testing"

	"github.com/zkvstore/zkv/node"
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

func TestKVServerSessionTimeout(t *testing.T) {
	if got, want := KVServerSessionTimeout, node.DefaultConfig().SessionTimeout; got != want {
		t.Errorf("KVServerSessionTimeout = %v, kvserver's default is %v", got, want)
	}
}
