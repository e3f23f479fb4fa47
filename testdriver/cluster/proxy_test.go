package cluster

import (
	"bufio"
	"io"
	"net"
	"testing"
	"time"
)

// echoServer answers every line with the same line.
func echoServer(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				_, _ = io.Copy(c, c)
			}()
		}
	}()
	return ln.Addr().String()
}

// echoThrough opens a connection to addr and checks that msg comes back.
func echoThrough(t *testing.T, addr, msg string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if got, err := roundTrip(c, msg); err != nil || got != msg+"\n" {
		t.Fatalf("%s through the proxy: %q, %v", msg, got, err)
	}
	return c
}

func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	return bufio.NewReader(c).ReadString('\n')
}

// TestProxyCutAndHeal: Cut closes the connections through the proxy and
// refuses new ones; Heal lets connections through again on the same
// address.
func TestProxyCutAndHeal(t *testing.T) {
	p, err := NewProxy("echo", echoServer(t), 0, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	addr := p.Addr()

	c := echoThrough(t, addr, "hello")

	if err := p.Cut(); err != nil {
		t.Fatal(err)
	}
	// The open connection is closed...
	if got, err := roundTrip(c, "again"); err == nil {
		t.Fatalf("a connection survived the cut: %q", got)
	}
	// ...and a new one is not let through.
	if c2, err := net.Dial("tcp", addr); err == nil {
		got, err := roundTrip(c2, "x")
		c2.Close()
		if err == nil {
			t.Fatalf("a new connection was forwarded while cut: %q", got)
		}
	}

	if err := p.Heal(); err != nil {
		t.Fatal(err)
	}
	if p.Addr() != addr {
		t.Fatalf("healed on %s, want the same address %s", p.Addr(), addr)
	}
	echoThrough(t, addr, "back")
}
