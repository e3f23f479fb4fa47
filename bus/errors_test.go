package bus

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"testing"
)

// sentinels is the expected code-to-sentinel table, written independently
// of the package's own table.
var sentinels = map[Code]error{
	CodeBadRequest:    ErrBadRequest,
	CodeInvalidKey:    ErrInvalidKey,
	CodeValueTooLarge: ErrValueTooLarge,
	CodeNotLeader:     ErrNotLeader,
	CodeNoLeader:      ErrNoLeader,
	CodeUnavailable:   ErrUnavailable,
	CodeTimeout:       ErrTimeout,
	CodeStale:         ErrStale,
	CodeInternal:      ErrInternal,
	CodeUnauthorized:  ErrUnauthorized,
	CodeForbidden:     ErrForbidden,
	CodeConflict:      ErrConflict,
	CodeExists:        ErrExists,
	CodeCompacted:     ErrCompacted,
	CodeFuture:        ErrFuture,
}

func TestCodesCoverSentinels(t *testing.T) {
	codes := Codes()
	if len(codes) != len(sentinels) {
		t.Fatalf("Codes() has %d codes, want %d", len(codes), len(sentinels))
	}
	for _, c := range codes {
		if _, ok := sentinels[c]; !ok {
			t.Errorf("code %q has no sentinel in the test table", c)
		}
	}
}

func TestDecodeReplyError(t *testing.T) {
	for _, code := range Codes() {
		t.Run(string(code), func(t *testing.T) {
			body := EncodeError(Errorf(code, "something about %s", "a"))
			var reply WriteReply
			err := DecodeReply(body, &reply)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeReply(%s) = %v, want an *Error", body, err)
			}
			if e.Code != code || e.Message != "something about a" {
				t.Errorf("got %+v, want code %q message %q", e, code, "something about a")
			}
			for other, sentinel := range sentinels {
				if got, want := errors.Is(err, sentinel), other == code; got != want {
					t.Errorf("errors.Is(err, sentinel of %q) = %v, want %v", other, got, want)
				}
			}
			if reply != (WriteReply{}) {
				t.Errorf("reply was filled in from an error body: %+v", reply)
			}
		})
	}
}

func TestDecodeReply(t *testing.T) {
	tests := []struct {
		name    string
		body    string
		into    func() any
		want    any
		wantErr bool
	}{
		{
			name: "write reply",
			body: `{"ok":true,"key":"a","revision":12,"epoch":3,"leader":"n1"}`,
			into: func() any { return new(WriteReply) },
			want: &WriteReply{OK: true, Key: "a", Revision: 12, Epoch: 3, Leader: "n1"},
		},
		{
			name: "read reply with unknown field",
			body: `{"found":true,"key":"a","value":"1","revision":4,"node":"n2","role":"follower","epoch":3,"new":1}`,
			into: func() any { return new(ReadReply) },
			want: &ReadReply{Found: true, Key: "a", Value: "1", Revision: 4, Node: "n2", Role: RoleFollower, Epoch: 3},
		},
		{
			name: "read reply not found",
			body: `{"found":false,"key":"a","node":"n2","role":"leader","epoch":3}`,
			into: func() any { return new(ReadReply) },
			want: &ReadReply{Key: "a", Node: "n2", Role: RoleLeader, Epoch: 3},
		},
		{
			name: "null error is success",
			body: `{"error":null,"node":"n1"}`,
			into: func() any { return new(Status) },
			want: &Status{Node: "n1"},
		},
		{name: "not json", body: `nope`, into: func() any { return new(WriteReply) }, wantErr: true},
		{name: "empty", body: ``, into: func() any { return new(WriteReply) }, wantErr: true},
		{name: "wrong type", body: `{"ok":"yes"}`, into: func() any { return new(WriteReply) }, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			err := DecodeReply([]byte(tt.body), v)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("DecodeReply(%q) = nil, want an error", tt.body)
				}
				var e *Error
				if errors.As(err, &e) {
					t.Errorf("a malformed body decoded as a wire error: %v", e)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeReply(%q) = %v", tt.body, err)
			}
			if fmt.Sprint(v) != fmt.Sprint(tt.want) {
				t.Errorf("got %+v, want %+v", v, tt.want)
			}
		})
	}
}

type asErrorCase struct {
	name     string
	err      error
	wantCode Code
	wantMsg  string
	wantSame bool // AsError returns the *Error in the chain itself
}

func TestAsError(t *testing.T) {
	wire := Errorf(CodeNotLeader, "n2 is a follower")
	tests := []asErrorCase{
		{name: "wire error", err: wire, wantCode: CodeNotLeader, wantMsg: "n2 is a follower", wantSame: true},
		{name: "wrapped wire error", err: fmt.Errorf("put a: %w", wire), wantCode: CodeNotLeader, wantMsg: "n2 is a follower", wantSame: true},
		{name: "plain error", err: io.ErrUnexpectedEOF, wantCode: CodeInternal, wantMsg: io.ErrUnexpectedEOF.Error()},
		{name: "wrapped plain error", err: fmt.Errorf("read: %w", io.EOF), wantCode: CodeInternal, wantMsg: "read: EOF"},
		{name: "joined sentinel", err: errors.Join(io.EOF, ErrTimeout), wantCode: CodeTimeout, wantMsg: "EOF\ntimeout"},
	}
	for code, sentinel := range sentinels {
		tests = append(tests,
			asErrorCase{name: "sentinel " + string(code), err: sentinel, wantCode: code, wantMsg: sentinel.Error()},
			asErrorCase{name: "wrapped sentinel " + string(code), err: fmt.Errorf("op x: %w", sentinel), wantCode: code, wantMsg: "op x: " + sentinel.Error()},
		)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := AsError(tt.err)
			if got.Code != tt.wantCode || got.Message != tt.wantMsg {
				t.Errorf("AsError(%v) = %q/%q, want %q/%q", tt.err, got.Code, got.Message, tt.wantCode, tt.wantMsg)
			}
			if tt.wantSame && got != wire {
				t.Errorf("AsError did not return the *Error in the chain")
			}
			if !slices.Contains(Codes(), got.Code) {
				t.Errorf("code %q is not in Codes()", got.Code)
			}
			// EncodeError and DecodeReply carry the code across the wire.
			err := DecodeReply(EncodeError(tt.err), new(WriteReply))
			if s := sentinels[tt.wantCode]; !errors.Is(err, s) {
				t.Errorf("across the wire: %v does not match %v", err, s)
			}
		})
	}
}

func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		code Code
		want int
	}{
		{CodeBadRequest, http.StatusBadRequest},
		{CodeInvalidKey, http.StatusBadRequest},
		{CodeValueTooLarge, http.StatusRequestEntityTooLarge},
		{CodeNotLeader, http.StatusConflict},
		{CodeNoLeader, http.StatusServiceUnavailable},
		{CodeUnavailable, http.StatusServiceUnavailable},
		{CodeTimeout, http.StatusGatewayTimeout},
		{CodeStale, http.StatusServiceUnavailable},
		{CodeInternal, http.StatusInternalServerError},
		{CodeUnauthorized, http.StatusUnauthorized},
		{CodeForbidden, http.StatusForbidden},
		{CodeConflict, http.StatusPreconditionFailed},
		{CodeExists, http.StatusPreconditionFailed},
		{CodeCompacted, http.StatusGone},
		{CodeFuture, http.StatusBadRequest},
		{Code("no_such_code"), http.StatusInternalServerError},
		{Code(""), http.StatusInternalServerError},
	}
	if got, want := len(tests)-2, len(Codes()); got != want {
		t.Fatalf("table covers %d codes, Codes() has %d", got, want)
	}
	for _, tt := range tests {
		t.Run(string(tt.code), func(t *testing.T) {
			if got := (&Error{Code: tt.code}).HTTPStatus(); got != tt.want {
				t.Errorf("HTTPStatus() = %d, want %d", got, tt.want)
			}
		})
	}
}

func TestUnknownCodeMatchesNoSentinel(t *testing.T) {
	err := DecodeReply([]byte(`{"error":{"code":"future_code","message":"m"}}`), new(WriteReply))
	var e *Error
	if !errors.As(err, &e) || e.Code != "future_code" {
		t.Fatalf("got %v, want an *Error with code future_code", err)
	}
	for code, s := range sentinels {
		if errors.Is(err, s) {
			t.Errorf("unknown code matches the sentinel of %q", code)
		}
	}
	if got := AsError(err); got != e {
		t.Errorf("AsError replaced an *Error of an unknown code: %v", got)
	}
}
