package node_test

import (
	"testing"

	"github.com/zkvstore/zkv/node"
)

// httpDo sends one request and checks its status; it returns the body.
func httpDo(t *testing.T, method, url, body string, want int) string {
	t.Helper()
	code, b := node.HTTPCall(t, method, url, body)
	if code != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, url, code, want, b)
	}
	return b
}
