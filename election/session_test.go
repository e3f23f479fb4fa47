package election

import (
	"bytes"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/zkvstore/zkv/internal/testenv"
)

// ZooKeeper clamps a session timeout to [minSessionTimeout,
// maxSessionTimeout]: 2 ticks (testenv.TickTime) and, in the test harness,
// 60s. The lease must follow the timeout it granted.
func TestLeaseUsesNegotiatedSessionTimeout(t *testing.T) {
	z := testenv.StartZooKeeper(t)
	tests := []struct {
		name      string
		requested time.Duration
		want      time.Duration
	}{
		{"below 2 ticks", 150 * time.Millisecond, 2 * testenv.TickTime},
		// Asked less one tick, so expiry rounded up to a tick comes
		// within the 2s.
		{"within the bounds", 2 * time.Second, 2*time.Second - testenv.TickTime},
		{"above the maximum", 100 * time.Second, 60 * time.Second},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := startElector(t, z.Addr(), string(rune('a'+i)), tt.requested)
			if got := r.SessionTimeout(); got != tt.requested {
				t.Logf("before connecting: %s", got)
			}
			testenv.WaitFor(t, 15*time.Second, "a session", func() error {
				if !r.Connected() {
					return errors.New("not connected")
				}
				return nil
			})
			if got := r.SessionTimeout(); got != tt.want {
				t.Fatalf("SessionTimeout() = %s, want %s (asked for %s)", got, tt.want, tt.requested)
			}
			if got, want := r.leaseInterval(), tt.want/10; got != want {
				t.Errorf("lease interval %s, want %s", got, want)
			}
			waitTerm(t, r, "to hold a valid lease", func(Term) bool { return r.LeaseValid() })
		})
	}
}

// trickle is a net.Conn that returns its data a few bytes per Read.
type trickle struct {
	net.Conn
	data []byte
	step int
}

func (c *trickle) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	n := copy(p[:min(len(p), c.step)], c.data)
	c.data = c.data[n:]
	return n, nil
}

func TestTimeoutConnReadsConnectReply(t *testing.T) {
	// length, protocolVersion 0, timeOut 4000 ms, session ID, password...
	reply := []byte{0, 0, 0, 36, 0, 0, 0, 0, 0, 0, 0x0f, 0xa0, 1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 16}
	reply = append(reply, make([]byte, 16)...)
	for _, step := range []int{1, 5, 12, 100} {
		var got []time.Duration
		c := &timeoutConn{Conn: &trickle{data: append([]byte(nil), reply...), step: step}, report: func(d time.Duration) { got = append(got, d) }}
		read, err := io.ReadAll(c)
		if err != nil || !bytes.Equal(read, reply) {
			t.Fatalf("step %d: read %v, %v; want the bytes passed through", step, read, err)
		}
		if len(got) != 1 || got[0] != 4*time.Second {
			t.Errorf("step %d: reported %v, want [4s]", step, got)
		}
	}
}
