package bus

import (
	"strings"
	"testing"
)

func TestSubjects(t *testing.T) {
	tests := []struct {
		name string
		s    Subjects
		got  func(Subjects) string
		want string
	}{
		{"write default", Subjects{}, Subjects.Write, "kv.write"},
		{"read default", Subjects{}, Subjects.Read, "kv.read"},
		{"node read default", Subjects{}, func(s Subjects) string { return s.NodeRead("n1") }, "kv.node.n1.read"},
		{"node write default", Subjects{}, func(s Subjects) string { return s.NodeWrite("n1") }, "kv.node.n1.write"},
		{"node status default", Subjects{}, func(s Subjects) string { return s.NodeStatus("n1") }, "kv.node.n1.status"},
		{"all status default", Subjects{}, Subjects.AllStatus, "kv.node.*.status"},
		{"replication default", Subjects{}, Subjects.Replication, "kv.replication"},
		{"explicit default prefix", Subjects{Prefix: DefaultPrefix}, Subjects.Write, "kv.write"},
		{"write custom", Subjects{Prefix: "prod.zkv"}, Subjects.Write, "prod.zkv.write"},
		{"read custom", Subjects{Prefix: "prod.zkv"}, Subjects.Read, "prod.zkv.read"},
		{"node read custom", Subjects{Prefix: "prod.zkv"}, func(s Subjects) string { return s.NodeRead("node-2") }, "prod.zkv.node.node-2.read"},
		{"node write custom", Subjects{Prefix: "prod.zkv"}, func(s Subjects) string { return s.NodeWrite("node_2") }, "prod.zkv.node.node_2.write"},
		{"node status custom", Subjects{Prefix: "x"}, func(s Subjects) string { return s.NodeStatus("n3") }, "x.node.n3.status"},
		{"all status custom", Subjects{Prefix: "prod.zkv"}, Subjects.AllStatus, "prod.zkv.node.*.status"},
		{"replication custom", Subjects{Prefix: "prod.zkv"}, Subjects.Replication, "prod.zkv.replication"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.got(tt.s); got != tt.want {
				t.Errorf("got %q, want %q", got, tt.want)
			}
		})
	}
}

func TestValidNodeID(t *testing.T) {
	tests := []struct {
		id string
		ok bool
	}{
		{"n1", true},
		{"node-1_a", true},
		{"N", true},
		{strings.Repeat("a", 64), true},
		{"", false},
		{strings.Repeat("a", 65), false},
		{"n.1", false},
		{"n*", false},
		{">", false},
		{"n 1", false},
		{"nœud", false},
		{"n1\n", false},
	}
	for _, tt := range tests {
		t.Run(tt.id, func(t *testing.T) {
			err := ValidNodeID(tt.id)
			if (err == nil) != tt.ok {
				t.Errorf("ValidNodeID(%q) = %v, want ok %v", tt.id, err, tt.ok)
			}
		})
	}
}

func TestValidPrefix(t *testing.T) {
	tests := []struct {
		prefix string
		ok     bool
	}{
		{"kv", true},
		{"prod.zkv", true},
		{"a.b-c.d_e.1", true},
		{"", false},
		{".kv", false},
		{"kv.", false},
		{"kv..x", false},
		{"kv.*", false},
		{"kv.>", false},
		{"k v", false},
		{"kv\t", false},
	}
	for _, tt := range tests {
		t.Run(tt.prefix, func(t *testing.T) {
			err := ValidPrefix(tt.prefix)
			if (err == nil) != tt.ok {
				t.Errorf("ValidPrefix(%q) = %v, want ok %v", tt.prefix, err, tt.ok)
			}
		})
	}
}
