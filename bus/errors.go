package bus

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
)

// Code is a stable, machine-readable error code carried on the wire in
// {"error":{"code":"...","message":"..."}}. Codes never change meaning;
// messages are for people and may change.
type Code string

// The error codes of the wire protocol.
const (
	CodeBadRequest    Code = "bad_request"     // body is not valid JSON of the expected shape
	CodeInvalidKey    Code = "invalid_key"     // key empty, too long, not UTF-8 or has control characters
	CodeValueTooLarge Code = "value_too_large" // value longer than MaxValueBytes
	CodeNotLeader     Code = "not_leader"      // this node cannot acknowledge writes (not leader, lease lost, fenced)
	CodeNoLeader      Code = "no_leader"       // no leader answered in time (election under way)
	CodeUnavailable   Code = "unavailable"     // the node is shutting down or disconnected
	CodeTimeout       Code = "timeout"         // the operation did not finish before its deadline
	CodeStale         Code = "stale"           // a min_revision read's node had not applied the revision in time
	CodeInternal      Code = "internal"        // a bug or unexpected failure
	CodeUnauthorized  Code = "unauthorized"    // HTTP: no valid credentials (with an auth file)
	CodeForbidden     Code = "forbidden"       // HTTP: the user's role does not allow the request
	CodeConflict      Code = "conflict"        // a write's if_revision is not the key's revision (Error.Revision has it)
	CodeExists        Code = "exists"          // a create found the key (Error.Revision has its revision)
	CodeCompacted     Code = "compacted"       // the revision asked for is older than the node holds (Error.Revision: the oldest it can answer)
	CodeFuture        Code = "future_revision" // the revision asked for is past the node's revision (Error.Revision: the node's)
)

// Sentinel errors, one per code. A decoded *Error matches its sentinel with
// errors.Is, so callers branch on errors.Is(err, bus.ErrNotLeader) across
// the wire.
var (
	ErrBadRequest    = errors.New("bad request")
	ErrInvalidKey    = errors.New("invalid key")
	ErrValueTooLarge = errors.New("value too large")
	ErrNotLeader     = errors.New("not the leader")
	ErrNoLeader      = errors.New("no leader")
	ErrUnavailable   = errors.New("unavailable")
	ErrTimeout       = errors.New("timeout")
	ErrStale         = errors.New("stale copy")
	ErrInternal      = errors.New("internal error")
	ErrUnauthorized  = errors.New("unauthorized")
	ErrForbidden     = errors.New("forbidden")
	ErrConflict      = errors.New("revision conflict")
	ErrExists        = errors.New("key exists")
	ErrCompacted     = errors.New("revision compacted")
	ErrFuture        = errors.New("future revision")
)

// codes is the one table that maps wire codes to sentinels and HTTP statuses.
var codes = map[Code]struct {
	err    error
	status int
}{
	CodeBadRequest:    {ErrBadRequest, http.StatusBadRequest},
	CodeInvalidKey:    {ErrInvalidKey, http.StatusBadRequest},
	CodeValueTooLarge: {ErrValueTooLarge, http.StatusRequestEntityTooLarge},
	CodeNotLeader:     {ErrNotLeader, http.StatusConflict},
	CodeNoLeader:      {ErrNoLeader, http.StatusServiceUnavailable},
	CodeUnavailable:   {ErrUnavailable, http.StatusServiceUnavailable},
	CodeTimeout:       {ErrTimeout, http.StatusGatewayTimeout},
	CodeStale:         {ErrStale, http.StatusServiceUnavailable},
	CodeInternal:      {ErrInternal, http.StatusInternalServerError},
	CodeUnauthorized:  {ErrUnauthorized, http.StatusUnauthorized},
	CodeForbidden:     {ErrForbidden, http.StatusForbidden},
	CodeConflict:      {ErrConflict, http.StatusPreconditionFailed},
	CodeExists:        {ErrExists, http.StatusPreconditionFailed},
	CodeCompacted:     {ErrCompacted, http.StatusGone},
	CodeFuture:        {ErrFuture, http.StatusBadRequest},
}

// Codes returns every defined code, for documentation and tests.
func Codes() []Code {
	return []Code{CodeBadRequest, CodeInvalidKey, CodeValueTooLarge, CodeNotLeader,
		CodeNoLeader, CodeUnavailable, CodeTimeout, CodeStale, CodeInternal,
		CodeUnauthorized, CodeForbidden, CodeConflict, CodeExists, CodeCompacted, CodeFuture}
}

// Error is the error body of the wire protocol. It implements error, and
// errors.Is matches it against the sentinel of its Code.
type Error struct {
	Code    Code   `json:"code"`
	Message string `json:"message"`
	// Revision is the key's revision now (0: it does not exist), carried
	// by conflict and exists errors; for compacted the oldest revision
	// the node can answer for, for future_revision the node's revision.
	Revision *uint64 `json:"revision,omitempty"`
}

// ConditionFailed returns a conflict or exists error for key, carrying its
// revision now.
func ConditionFailed(code Code, key string, revision uint64, format string, args ...any) *Error {
	e := Errorf(code, format, args...)
	e.Revision = &revision
	return e
}

// RevisionError returns a compacted or future_revision error carrying
// revision.
func RevisionError(code Code, revision uint64, format string, args ...any) *Error {
	e := Errorf(code, format, args...)
	e.Revision = &revision
	return e
}

// CurrentRevision is the key's revision a conflict or exists error
// carries, and whether it carries one.
func (e *Error) CurrentRevision() (uint64, bool) {
	if e.Revision == nil {
		return 0, false
	}
	return *e.Revision, true
}

// Sentinel is the sentinel error of code (nil for an unknown code).
func (c Code) Sentinel() error { return codes[c].err }

// Errorf returns an *Error with code and a formatted message.
func Errorf(code Code, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

func (e *Error) Error() string { return string(e.Code) + ": " + e.Message }

// Is reports whether target is the sentinel of e's code.
func (e *Error) Is(target error) bool {
	c, ok := codes[e.Code]
	return ok && c.err == target
}

// HTTPStatus is the HTTP status that carries e.
func (e *Error) HTTPStatus() int {
	if c, ok := codes[e.Code]; ok {
		return c.status
	}
	return http.StatusInternalServerError
}

// ErrorBody is the JSON envelope of an error reply: {"error":{...}}.
type ErrorBody struct {
	Error *Error `json:"error"`
}

// AsError converts any error to a wire *Error: an *Error in err's chain is
// returned as is, a sentinel becomes its code (the first in Codes order),
// anything else is internal. AsError(nil) is nil.
func AsError(err error) *Error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, code := range Codes() {
		if errors.Is(err, codes[code].err) {
			return &Error{Code: code, Message: err.Error()}
		}
	}
	return &Error{Code: CodeInternal, Message: err.Error()}
}

// EncodeError returns the JSON error body for err; nil is encoded as an
// internal error, since an error body without an error is a bug.
func EncodeError(err error) []byte {
	if err == nil {
		err = Errorf(CodeInternal, "no error given")
	}
	b, _ := json.Marshal(ErrorBody{Error: AsError(err)})
	return b
}
