package harness

import "testing"

func TestZooKeeperVersion(t *testing.T) {
	tests := []struct{ srvr, want string }{
		{"Zookeeper version: 3.8.0-${mvngit.commit.id}, built on 2024-12-29 17:54 UTC\nLatency min/avg/max: 0/0.0/0\nMode: standalone\n", "3.8.0"},
		{"Zookeeper version: 3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023, built on 2024-02-12\n", "3.9.2-e454e8c7283100c7caec6dcae2bc82aaecb63023"},
		{"Mode: standalone\n", ""},
	}
	for _, tt := range tests {
		if _, got, _ := parseSrvr(tt.srvr); got != tt.want {
			t.Errorf("parseSrvr(%q) version = %q, want %q", tt.srvr, got, tt.want)
		}
	}
}

func TestParseSrvrMode(t *testing.T) {
	if mode, _, err := parseSrvr("Zookeeper version: 3.8.4-x, built on 2024-02-12 22:16 UTC\nMode: follower\nNode count: 5\n"); mode != "follower" || err != nil {
		t.Errorf("parseSrvr mode = %q, %v; want follower", mode, err)
	}
	if _, _, err := parseSrvr("This ZooKeeper instance is not currently serving requests\n"); err == nil {
		t.Error("parseSrvr of an answer without Mode succeeded")
	}
}
