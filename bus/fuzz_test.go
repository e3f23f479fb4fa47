package bus

import (
	"encoding/json"
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
	// Strictness: exact names, no duplicates, no nulls, required fields.
	`{"key":"a","value":""}`,
	`{"key":"a","value":null}`,
	`{"KEY":"a"}`,
	`{"key":"a","Value":"x"}`,
	`{"key":"a","key":"b"}`,
	`{"key":"a","value":"1","k\u0065y":"b"}`,
	`{"\u006bey":"a","valu\u0065":"1"}`,
	"{\"\u212aey\":\"a\"}",
	`{"value":"x\\\"\\","key":"a"}`,
	`{"key":"{\"key\":null}","value":"\"value\":null"}`,
	`{ "key" : null }`,
	`{}`,
	`{"kind":"put","epoch":3,"seq":12,"key":"a","time":1}`,
	`{"kind":"put","epoch":3,"seq":12,"key":"a","leader":"n1","time":1,"ack":null}`,
	`{"node":"n2","epoch":3,"seq":12}`,
	`{"node":"n2","epoch":3}`,
	`{"after":"k","limit":10}`,
	`{"after":null}`,
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
		checkStrict(t, body, &v)
		again := Encode(v)
		var w T
		if err := Decode(again, &w); err != nil {
			t.Fatalf("decoded %+v, but its encoding %q does not decode: %v", v, Truncate(again, 200), err)
		}
		if v != w {
			t.Fatalf("round trip changed %+v into %+v", v, w)
		}
	})
}

func FuzzDecodeWriteRequest(f *testing.F) { fuzzDecode[WriteRequest](f) }

func FuzzDecodeReadRequest(f *testing.F) { fuzzDecode[ReadRequest](f) }

func FuzzDecodeUpdate(f *testing.F) { fuzzDecode[Update](f) }

func FuzzDecodeAck(f *testing.F) { fuzzDecode[Ack](f) }

func FuzzDecodeSnapshotRequest(f *testing.F) { fuzzDecode[SnapshotRequest](f) }

// checkStrict checks, independently of Decode, that an accepted body has
// no null, only exact field names and every required field, by reading it
// into a map (which cannot see duplicates; Decode's own tests cover them).
func checkStrict(t *testing.T, body []byte, v any) {
	t.Helper()
	var m map[string]json.RawMessage
	if err := json.Unmarshal(body, &m); err != nil || m == nil {
		t.Fatalf("Decode accepted %q, which is no JSON object: %v", Truncate(body, 200), err)
	}
	fs := fieldsOf(v)
	for name, raw := range m {
		n, ok := fs.index[name]
		if !ok {
			t.Fatalf("Decode accepted %q with field %q", Truncate(body, 200), name)
		}
		if string(raw) == "null" {
			t.Fatalf("Decode accepted %q with %q null", Truncate(body, 200), fs.names[n])
		}
	}
	for n, name := range fs.names {
		if _, ok := m[name]; !ok && fs.required&(1<<n) != 0 {
			t.Fatalf("Decode accepted %q without %q", Truncate(body, 200), name)
		}
	}
}
