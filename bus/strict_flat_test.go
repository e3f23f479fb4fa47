package bus

import (
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"unicode/utf8"
)

// flatBodies are bodies decodeFlat takes or leaves to encoding/json, with
// the edges of its grammar.
var flatBodies = []string{
	`{"key":"a","value":"1","if_revision":7,"prefix":true,"ttl_ms":-3}`,
	` { "key" : "a" , "value" : "" } `,
	`{"key":"a","value":"1","if_revision":0}`,
	`{"key":"a","ttl_ms":-0}`,
	`{"key":"a","revision":-0}`,
	`{"key":"a","ttl_ms":01}`,
	`{"key":"a","ttl_ms":1.0}`,
	`{"key":"a","ttl_ms":1e3}`,
	`{"key":"a","ttl_ms":9223372036854775808}`,
	`{"key":"a","wait_ms":9223372036854775807}`,
	`{"key":"a","revision":18446744073709551616}`,
	`{"key":"a","prefix":truex}`,
	`{"key":"a","prefix":false}`,
	`{"key":"a","prefix":"true"}`,
	`{"key":"a\u0062"}`,
	"{\"key\":\"a\tb\"}",
	`{"key":"a" "value":"1"}`,
	`{"key":"a",}`,
	`{,"key":"a"}`,
	`{"key":"a"}x`,
	`{"key":"a"`,
	`{}`,
	`{"key":12}`,
	`{"seq":"12"}`,
	`{"epoch":3,"seq":12,"kind":"put","leader":"n1","time":-1}`,
}

// TestDecodeFlatMatchesEncodingJSON checks that whenever decodeFlat takes
// a body, it decodes what encoding/json decodes from it.
func TestDecodeFlatMatchesEncodingJSON(t *testing.T) {
	for _, body := range append(append([]string(nil), flatBodies...), seedBodies...) {
		for _, newV := range flatTypes {
			checkFlat(t, []byte(body), newV)
		}
	}
}

// FuzzDecodeFlat is TestDecodeFlatMatchesEncodingJSON on any body.
func FuzzDecodeFlat(f *testing.F) {
	for _, s := range append(append([]string(nil), flatBodies...), seedBodies...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newV := range flatTypes {
			checkFlat(t, body, newV)
		}
	})
}

// flatTypes make the message types Decode reads with decodeFlat.
var flatTypes = []func() any{
	func() any { return new(WriteRequest) },
	func() any { return new(ReadRequest) },
	func() any { return new(Update) },
	func() any { return new(Ack) },
	func() any { return new(SnapshotRequest) },
	func() any { return new(ListRequest) },
	func() any { return new(HistoryRequest) },
	func() any { return new(ChangesRequest) },
}

func checkFlat(t *testing.T, body []byte, newV func() any) {
	t.Helper()
	got, want := newV(), newV()
	fs := fieldsOf(got)
	if !fs.flat {
		t.Fatalf("%s is not flat", fs.typeName)
	}
	if !utf8.Valid(body) {
		return // Decode refuses it before
	}
	if !decodeFlat(body, got, fs) {
		return
	}
	if err := json.Unmarshal(body, want); err != nil {
		t.Fatalf("decodeFlat took %q into %s, encoding/json refuses it: %v", body, fs.typeName, err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decodeFlat read %q into %s as %+v, encoding/json as %+v", body, fs.typeName, got, want)
	}
}

// decodeReference is Decode with the stream decoder for every type, the
// way Decode reads the types decodeJSON does not take.
func decodeReference(data []byte, v any) error {
	if len(data) > MaxRequestBytes {
		return Errorf(CodeBadRequest, "body is %d bytes, the limit is %d", len(data), MaxRequestBytes)
	}
	if !utf8.Valid(data) {
		return Errorf(CodeBadRequest, "body is not valid UTF-8")
	}
	if err := decodeStream(data, v); err != nil {
		return err
	}
	if fs := fieldsOf(v); fs != nil {
		seen, err := checkFields(data, fs)
		if err != nil {
			return err
		}
		if p, ok := v.(interface{ checkPresent(presence) error }); ok {
			if err := p.checkPresent(presence{fs, seen}); err != nil {
				return err
			}
		}
	}
	if val, ok := v.(interface{ Validate() error }); ok {
		return val.Validate()
	}
	return nil
}

// checkSameAsReference checks that Decode gives body the verdict, the
// error text and the value decodeReference gives it.
func checkSameAsReference(t *testing.T, body []byte, newV func() any) {
	t.Helper()
	got, want := newV(), newV()
	gerr, werr := Decode(body, got), decodeReference(body, want)
	if fmt.Sprint(gerr) != fmt.Sprint(werr) {
		t.Fatalf("Decode(%q) into %T = %v, the stream decoder gives %v", body, got, gerr, werr)
	}
	if gerr == nil && !reflect.DeepEqual(got, want) {
		t.Fatalf("Decode(%q) = %+v, the stream decoder gives %+v", body, got, want)
	}
}

// TestDecodeSameAsStreamDecoder holds Decode's fast paths to the verdicts
// and error texts of the stream decoder.
func TestDecodeSameAsStreamDecoder(t *testing.T) {
	for _, body := range append(append([]string(nil), flatBodies...), seedBodies...) {
		for _, newV := range flatTypes {
			checkSameAsReference(t, []byte(body), newV)
		}
	}
}

// FuzzDecodeSameAsStreamDecoder is TestDecodeSameAsStreamDecoder on any
// body.
func FuzzDecodeSameAsStreamDecoder(f *testing.F) {
	for _, s := range append(append([]string(nil), flatBodies...), seedBodies...) {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, newV := range flatTypes {
			checkSameAsReference(t, body, newV)
		}
	})
}
