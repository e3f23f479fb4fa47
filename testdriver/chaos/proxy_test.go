package chaos

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

func roundTrip(c net.Conn, msg string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := io.WriteString(c, msg+"\n"); err != nil {
		return "", err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return line, err
}

func TestForwarderCutAndRestore(t *testing.T) {
	f, err := NewForwarder(echoServer(t))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	c, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, err := roundTrip(c, "hello"); err != nil || got != "hello\n" {
		t.Fatalf("through the forwarder: %q, %v", got, err)
	}

	f.Cut()
	// The open connection is closed...
	if _, err := roundTrip(c, "again"); err == nil {
		t.Fatal("a connection survived the cut")
	}
	// ...and a new one is refused: accepted, then closed at once.
	c2, err := net.Dial("tcp", f.Addr())
	if err == nil {
		if got, err := roundTrip(c2, "x"); err == nil {
			t.Fatalf("a new connection was forwarded while cut: %q", got)
		}
		c2.Close()
	}
	if _, refused := f.Counts(); refused == 0 {
		t.Fatal("no connection counted as refused")
	}

	f.Restore()
	c3, err := net.Dial("tcp", f.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c3.Close()
	if got, err := roundTrip(c3, "back"); err != nil || got != "back\n" {
		t.Fatalf("after restore: %q, %v", got, err)
	}
}
