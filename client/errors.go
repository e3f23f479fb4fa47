package client

import (
	"errors"

	"github.com/zkvstore/zkv/bus"
)

// Errors a call returns, matched with errors.Is. Every error a server
// answers carries a stable code (bus.Code) and matches the sentinel of its
// code; these are the same sentinels as package bus's, so either name
// matches.
var (
	// ErrNotFound: Get found no value for the key in the copy that
	// answered (which may be stale; see the package doc).
	ErrNotFound = errors.New("key not found")
	// ErrInvalidOption: New or Connect was given an unusable option or
	// connection.
	ErrInvalidOption = errors.New("invalid client option")

	ErrBadRequest    = bus.ErrBadRequest    // the request is malformed; retrying will not help
	ErrInvalidKey    = bus.ErrInvalidKey    // the key is empty, too long, or has control characters
	ErrValueTooLarge = bus.ErrValueTooLarge // the value is over bus.MaxValueBytes
	ErrNotLeader     = bus.ErrNotLeader     // the server cannot take writes now (retried)
	ErrNoLeader      = bus.ErrNoLeader      // no leader answered: an election is under way (retried)
	ErrUnavailable   = bus.ErrUnavailable   // the server is shutting down or busy, or nobody answered (retried)
	ErrTimeout       = bus.ErrTimeout       // the call's deadline passed, or replicas did not confirm in time
	ErrStale         = bus.ErrStale         // the copy had not applied the revision asked for (retried), or missed updates
	ErrInternal      = bus.ErrInternal      // a server bug
	ErrConflict      = bus.ErrConflict      // a compare-and-set lost: see CurrentRevision
	ErrExists        = bus.ErrExists        // a create found the key: see CurrentRevision
	ErrCompacted     = bus.ErrCompacted     // the revision asked for is no longer held
	ErrFuture        = bus.ErrFuture        // the revision asked for is past the server's
)

// CurrentRevision is the key's revision that a conflict or exists error
// carries (0: the key does not exist), and whether err carries one.
func CurrentRevision(err error) (uint64, bool) {
	var e *bus.Error
	if !errors.As(err, &e) {
		return 0, false
	}
	return e.CurrentRevision()
}
