package bus

import (
	"errors"
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestValidateKey(t *testing.T) {
	tests := []struct {
		name string
		key  string
		ok   bool
	}{
		{"simple", "a", true},
		{"path like", "users/42/name", true},
		{"spaces and punctuation", "a b.c*>{}", true},
		{"unicode", "clé-日本語-🙂", true},
		{"256 bytes", strings.Repeat("k", MaxKeyBytes), true},
		{"256 bytes of multibyte runes", strings.Repeat("é", MaxKeyBytes/2), true},
		{"empty", "", false},
		{"257 bytes", strings.Repeat("k", MaxKeyBytes+1), false},
		{"258 bytes of multibyte runes", strings.Repeat("é", MaxKeyBytes/2+1), false},
		{"invalid utf-8", "a\xffb", false},
		{"truncated rune", "\xe6\x97", false},
		{"newline", "a\nb", false},
		{"nul", "a\x00", false},
		{"tab", "\tkey", false},
		{"del", "a\x7f", false},
		{"c1 control", "a\u0085", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidateKey(tt.key)
			if tt.ok {
				if err != nil {
					t.Errorf("ValidateKey(%q) = %v, want nil", tt.key, err)
				}
				return
			}
			if !errors.Is(err, ErrInvalidKey) {
				t.Errorf("ValidateKey(%q) = %v, want ErrInvalidKey", tt.key, err)
			}
		})
	}
}

func TestWriteRequestValidate(t *testing.T) {
	tests := []struct {
		name string
		req  WriteRequest
		want error
	}{
		{"ok", WriteRequest{Key: "a", Value: "1"}, nil},
		{"empty value", WriteRequest{Key: "a"}, nil},
		{"largest value", WriteRequest{Key: "a", Value: strings.Repeat("v", MaxValueBytes)}, nil},
		{"control characters in value", WriteRequest{Key: "a", Value: "line1\nline2\x00"}, nil},
		{"value too large", WriteRequest{Key: "a", Value: strings.Repeat("v", MaxValueBytes+1)}, ErrValueTooLarge},
		{"value not utf-8", WriteRequest{Key: "a", Value: "\xff"}, ErrBadRequest},
		{"bad key", WriteRequest{Key: "", Value: "1"}, ErrInvalidKey},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.req.Validate(); !matches(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestUpdateValidate(t *testing.T) {
	tests := []struct {
		name string
		u    Update
		want error
	}{
		{"put", Update{Kind: KindPut, Epoch: 3, Seq: 12, Key: "a", Value: "1", Leader: "n1"}, nil},
		{"put of empty value", Update{Kind: KindPut, Epoch: 3, Seq: 12, Key: "a", Leader: "n1"}, nil},
		{"put without leader", Update{Kind: KindPut, Epoch: 3, Seq: 12, Key: "a"}, nil},
		{"epoch marker", Update{Kind: KindEpoch, Epoch: 3, Seq: 11, Leader: "n1"}, nil},
		{"epoch marker at seq 0", Update{Kind: KindEpoch, Epoch: 1, Leader: "n1"}, nil},
		{"put without seq", Update{Kind: KindPut, Epoch: 3, Key: "a"}, ErrBadRequest},
		{"put without epoch", Update{Kind: KindPut, Seq: 1, Key: "a"}, ErrBadRequest},
		{"marker without epoch", Update{Kind: KindEpoch, Seq: 1}, ErrBadRequest},
		{"put with bad key", Update{Kind: KindPut, Epoch: 1, Seq: 1, Key: "a\nb"}, ErrInvalidKey},
		{"put without key", Update{Kind: KindPut, Epoch: 1, Seq: 1}, ErrInvalidKey},
		{"put of too large value", Update{Kind: KindPut, Epoch: 1, Seq: 1, Key: "a", Value: strings.Repeat("v", MaxValueBytes+1)}, ErrValueTooLarge},
		{"marker with too long key", Update{Kind: KindEpoch, Epoch: 1, Key: strings.Repeat("k", MaxKeyBytes+1)}, ErrInvalidKey},
		{"marker with too large value", Update{Kind: KindEpoch, Epoch: 1, Value: strings.Repeat("v", MaxValueBytes+1)}, ErrValueTooLarge},
		{"bad leader id", Update{Kind: KindEpoch, Epoch: 1, Leader: "n.1"}, ErrBadRequest},
		{"unknown kind", Update{Kind: "remove", Epoch: 1, Seq: 1, Key: "a"}, ErrBadRequest},
		{"delete", Update{Kind: KindDelete, Epoch: 1, Seq: 1, Key: "a"}, nil},
		{"delete without key", Update{Kind: KindDelete, Epoch: 1, Seq: 1}, ErrInvalidKey},
		{"delete without seq", Update{Kind: KindDelete, Epoch: 1, Key: "a"}, ErrBadRequest},
		{"delete with a value", Update{Kind: KindDelete, Epoch: 1, Seq: 1, Key: "a", Value: "x"}, ErrBadRequest},
		{"no kind", Update{Epoch: 1, Seq: 1, Key: "a"}, ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.u.Validate(); !matches(err, tt.want) {
				t.Errorf("Validate() = %v, want %v", err, tt.want)
			}
		})
	}
}

// matches reports whether err is nil when want is, or matches want.
func matches(err, want error) bool {
	if want == nil {
		return err == nil
	}
	return errors.Is(err, want)
}

func TestDecode(t *testing.T) {
	big := `{"key":"a","value":"` + strings.Repeat("v", MaxRequestBytes) + `"}`
	tests := []struct {
		name string
		body string
		into func() any
		want any   // the decoded value, when wantErr is nil
		err  error // the sentinel the error matches
	}{
		{
			name: "write request",
			body: `{"key":"a","value":"1"}`,
			into: func() any { return new(WriteRequest) },
			want: &WriteRequest{Key: "a", Value: "1"},
		},
		{
			name: "write request with whitespace and escapes",
			body: " \n{ \"value\" : \"\\u00e9\\n\" , \"key\":\"k\\/1\"}\n\t",
			into: func() any { return new(WriteRequest) },
			want: &WriteRequest{Key: "k/1", Value: "é\n"},
		},
		{
			name: "read request",
			body: `{"key":"clé"}`,
			into: func() any { return new(ReadRequest) },
			want: &ReadRequest{Key: "clé"},
		},
		{
			name: "update",
			body: `{"kind":"put","epoch":3,"seq":12,"key":"a","value":"1","leader":"n1","time":1700000000000000000}`,
			into: func() any { return new(Update) },
			want: &Update{Kind: KindPut, Epoch: 3, Seq: 12, Key: "a", Value: "1", Leader: "n1", Time: 1700000000000000000},
		},
		{
			name: "epoch marker",
			body: `{"kind":"epoch","epoch":4,"seq":12,"leader":"n2","time":1}`,
			into: func() any { return new(Update) },
			want: &Update{Kind: KindEpoch, Epoch: 4, Seq: 12, Leader: "n2", Time: 1},
		},
		{name: "not json", body: `key=a`, into: func() any { return new(WriteRequest) }, err: ErrBadRequest},
		{name: "empty body", body: ``, into: func() any { return new(WriteRequest) }, err: ErrBadRequest},
		{name: "array", body: `[{"key":"a"}]`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "truncated", body: `{"key":"a"`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "unknown field", body: `{"key":"a","value":"1","ttl":5}`, into: func() any { return new(WriteRequest) }, err: ErrBadRequest},
		{name: "wrong type", body: `{"key":1}`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "negative seq", body: `{"kind":"put","epoch":1,"seq":-1,"key":"a"}`, into: func() any { return new(Update) }, err: ErrBadRequest},
		{name: "trailing object", body: `{"key":"a"}{"key":"b"}`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "trailing garbage", body: `{"key":"a"} x`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "trailing bracket", body: `{"key":"a"}]`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "invalid utf-8 body", body: "{\"key\":\"a\xff\"}", into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "oversized body", body: big, into: func() any { return new(WriteRequest) }, err: ErrBadRequest},
		{
			name: "value too large",
			body: `{"key":"a","value":"` + strings.Repeat("v", MaxValueBytes+1) + `"}`,
			into: func() any { return new(WriteRequest) },
			err:  ErrValueTooLarge,
		},
		{name: "invalid key", body: `{"key":"","value":"1"}`, into: func() any { return new(WriteRequest) }, err: ErrInvalidKey},
		{name: "escaped control char in key", body: `{"key":"a\u0000"}`, into: func() any { return new(ReadRequest) }, err: ErrInvalidKey},
		{name: "null", body: `null`, into: func() any { return new(ReadRequest) }, err: ErrBadRequest},
		{name: "invalid update", body: `{"kind":"put","epoch":1,"seq":0,"key":"a"}`, into: func() any { return new(Update) }, err: ErrBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			err := Decode([]byte(tt.body), v)
			if tt.err != nil {
				if !errors.Is(err, tt.err) {
					t.Fatalf("Decode = %v, want %v", err, tt.err)
				}
				var e *Error
				if !errors.As(err, &e) {
					t.Errorf("Decode error %v is not an *Error", err)
				}
				return
			}
			if err != nil {
				t.Fatalf("Decode = %v", err)
			}
			if !reflect.DeepEqual(v, tt.want) {
				t.Errorf("got %+v, want %+v", v, tt.want)
			}
		})
	}
}

// TestEncodeWorstCaseFitsLimit checks that the largest valid messages, made
// of the characters whose JSON encoding is longest, still decode: a replica
// must accept every update the leader can publish.
func TestEncodeWorstCaseFitsLimit(t *testing.T) {
	key := strings.Repeat("<", MaxKeyBytes)        // "\u003c" in Encode's output
	value := strings.Repeat("\x01", MaxValueBytes) // "\u0001"
	tests := []struct {
		name string
		v    any
		into func() any
	}{
		{"write request", WriteRequest{Key: key, Value: value}, func() any { return new(WriteRequest) }},
		{"read request", ReadRequest{Key: key}, func() any { return new(ReadRequest) }},
		{"update", Update{
			Kind: KindPut, Epoch: MaxSeq, Seq: MaxSeq, Key: key, Value: value,
			Leader: strings.Repeat("n", 64), Time: math.MinInt64,
		}, func() any { return new(Update) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			body := Encode(tt.v)
			got := tt.into()
			if err := Decode(body, got); err != nil {
				t.Fatalf("Decode of a %d-byte body: %v", len(body), err)
			}
			if v := reflect.ValueOf(got).Elem().Interface(); !reflect.DeepEqual(v, tt.v) {
				t.Errorf("round trip changed the value")
			}
		})
	}
}

func TestSequenceNumbersPastMaxSeqAreRefused(t *testing.T) {
	for _, v := range []any{
		Update{Kind: KindPut, Epoch: MaxSeq + 1, Seq: 1, Key: "a"},
		Update{Kind: KindPut, Epoch: 1, Seq: math.MaxUint64, Key: "a"},
		Update{Kind: KindEpoch, Epoch: 1, Seq: math.MaxUint64},
		Update{Kind: KindHeartbeat, Epoch: math.MaxUint64, Seq: 1},
		Ack{Node: "n1", Epoch: 1, Seq: MaxSeq + 1},
	} {
		into := reflect.New(reflect.TypeOf(v)).Interface()
		if err := Decode(Encode(v), into); !errors.Is(err, ErrBadRequest) {
			t.Errorf("Decode(%+v) = %v, want bad_request", v, err)
		}
	}
}

func BenchmarkDecodeWriteRequest(b *testing.B) {
	body := Encode(WriteRequest{Key: "users/42/name", Value: strings.Repeat("v", 100)})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var r WriteRequest
		if err := Decode(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeWriteRequest(b *testing.B) {
	r := WriteRequest{Key: "users/42/name", Value: strings.Repeat("v", 100)}
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(r)
	}
}

func BenchmarkDecodeUpdate(b *testing.B) {
	body := Encode(Update{Kind: KindPut, Epoch: 3, Seq: 12345, Key: "users/42/name", Value: strings.Repeat("v", 100), Leader: "n1", Time: 1700000000000000000})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var u Update
		if err := Decode(body, &u); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeUpdate(b *testing.B) {
	u := Update{Kind: KindPut, Epoch: 3, Seq: 12345, Key: "users/42/name", Value: strings.Repeat("v", 100), Leader: "n1", Time: 1700000000000000000}
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(u)
	}
}
