package chaos

import (
	"testing"
	"time"
)

func TestParseFuzz(t *testing.T) {
	out := []byte(`fuzz: elapsed: 0s, gathering baseline coverage: 0/100 completed
fuzz: elapsed: 1s, gathering baseline coverage: 100/100 completed, now fuzzing with 2 workers
fuzz: elapsed: 3s, execs: 10708 (3569/sec), new interesting: 4 (total: 104)
fuzz: elapsed: 1m0s, execs: 2212189 (36870/sec), new interesting: 6 (total: 106)
PASS
ok  	zkv/bus	60.084s
`)
	execs, interesting := parseFuzz(out)
	if execs != 2212189 || interesting != "6 (total: 106)" {
		t.Fatalf("parseFuzz: %d, %q", execs, interesting)
	}
	if n, s := parseFuzz([]byte("FAIL\n")); n != 0 || s != "" {
		t.Fatalf("no figures: %d, %q", n, s)
	}
	if got := FuzzCommand("FuzzX", time.Minute); got != "go test -run '^$' -fuzz '^FuzzX$' -fuzztime 1m0s ./bus" {
		t.Fatalf("FuzzCommand: %s", got)
	}
	if got := thousands(1234567); got != "1,234,567" {
		t.Fatalf("thousands: %s", got)
	}
}
