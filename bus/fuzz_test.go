package bus

import (
	"slices"
	"strings"
	"testing"
)

// seedBodies are good and bad bodies for every fuzz target.
var seedBodies = []string{
	`{"key":"a","value":"1"}`,
	`{"key":"a"}`,
	`{"key":"clé 🙂","value":"line\nbreak \u0001 <&>"}`,
	`{"kind":"put","epoch":3,"seq":12,"key":"a","value":"1","leader":"n1","time":1700000000000000000}`,
	`{"kind":"epoch","epoch":4,"seq":12,"leader":"n2","time":1}`,
	`{"kind":"put","epoch":1,"seq":0,"key":"a"}`,
	`{"key":"a","value":"1","extra":true}`,
	`{"key":"a"} {"key":"b"}`,
	`{"KEY":"a","Value":"dup","value":"last"}`,
	`{"key":"\ud800"}`,
	`{"key":""}`,
	`{"key":1}`,
	`[]`,
	`null`,
	``,
	"{\"key\":\"\xff\"}",
	`{"epoch":1e3}`,
	`{"key":"` + strings.Repeat("k", MaxKeyBytes+1) + `"}`,
}

// fuzzDecode checks the properties of Decode for one message type T:
// it never panics; an error is an *Error with a defined code; a success
// re-encodes to a body that decodes to the same value.
func fuzzDecode[T comparable](f *testing.F) {
	for _, s := range seedBodies {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		var v T
		if err := Decode(body, &v); err != nil {
			if code := AsError(err).Code; !slices.Contains(Codes(), code) {
				t.Fatalf("Decode error %v has undefined code %q", err, code)
			}
			return
		}
		again := Encode(v)
		var w T
		if err := Decode(again, &w); err != nil {
			t.Fatalf("decoded %+v, but its encoding %q does not decode: %v", v, truncate(again, 200), err)
		}
		if v != w {
			t.Fatalf("round trip changed %+v into %+v", v, w)
		}
	})
}

func FuzzDecodeWriteRequest(f *testing.F) { fuzzDecode[WriteRequest](f) }

func FuzzDecodeReadRequest(f *testing.F) { fuzzDecode[ReadRequest](f) }

func FuzzDecodeUpdate(f *testing.F) { fuzzDecode[Update](f) }
