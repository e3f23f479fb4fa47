package bus

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

// field is one key and raw JSON value of a test body.
type field struct{ name, value string }

func objectOf(fields ...field) string {
	parts := make([]string, len(fields))
	for i, f := range fields {
		parts[i] = `"` + f.name + `":` + f.value
	}
	return "{" + strings.Join(parts, ",") + "}"
}

// strictTypes is every message type Decode reads, with a body giving every
// field a valid value and the names of the required fields.
var strictTypes = []struct {
	name     string
	into     func() any
	full     []field
	required []string
}{
	{
		name: "WriteRequest",
		into: func() any { return new(WriteRequest) },
		full: []field{{"op", `"put"`}, {"key", `"a"`}, {"value", `"1"`}, {"if_revision", `3`},
			{"request_id", `"r1"`}, {"acks", `"all"`}, {"prefix", `false`}, {"ttl_ms", `5`}, {"revision", `0`}, {"age_ms", `0`}},
		// "key" and "value" are required by checkPresent, not by their
		// tags: a compact has no key, a delete no value
		// (TestDecodeStrictExamples).
		required: nil,
	},
	{
		name:     "ReadRequest",
		into:     func() any { return new(ReadRequest) },
		full:     []field{{"key", `"a"`}, {"consistency", `"min_revision"`}, {"min_revision", `3`}, {"wait_ms", `10`}, {"revision", `2`}},
		required: []string{"key"},
	},
	{
		name: "Update",
		into: func() any { return new(Update) },
		full: []field{{"kind", `"put"`}, {"epoch", `3`}, {"seq", `12`}, {"key", `"a"`}, {"value", `"1"`},
			{"leader", `"n1"`}, {"time", `1`}, {"request_id", `"r1"`}, {"ack", `true`}, {"prefix", `false`}, {"expired", `false`},
			{"expires", `7`}, {"compact", `0`}},
		required: []string{"kind", "epoch", "seq", "leader", "time"},
	},
	{
		name:     "HistoryRequest",
		into:     func() any { return new(HistoryRequest) },
		full:     []field{{"key", `"a"`}, {"limit", `3`}},
		required: []string{"key"},
	},
	{
		name:     "ChangesRequest",
		into:     func() any { return new(ChangesRequest) },
		full:     []field{{"after", `3`}, {"after_epoch", `2`}, {"prefix", `"a"`}, {"limit", `3`}, {"wait_ms", `10`}},
		required: []string{"after"},
	},
	{
		name:     "Ack",
		into:     func() any { return new(Ack) },
		full:     []field{{"node", `"n2"`}, {"epoch", `3`}, {"seq", `12`}},
		required: []string{"node", "epoch", "seq"},
	},
	{
		name: "SnapshotRequest",
		into: func() any { return new(SnapshotRequest) },
		full: []field{{"after", `"k"`}, {"limit", `10`}},
	},
}

// TestDecodeStrictFields checks every rule on every field of every message
// type: a body with all fields decodes, one with only the required fields
// decodes, and a case-variant name, a duplicate, a null or a missing
// required field is a bad_request naming the field.
func TestDecodeStrictFields(t *testing.T) {
	for _, typ := range strictTypes {
		t.Run(typ.name, func(t *testing.T) {
			required := map[string]bool{}
			var minimal []field
			for _, f := range typ.full {
				if contains(typ.required, f.name) {
					required[f.name] = true
					minimal = append(minimal, f)
				}
			}
			if got := requiredNames(typ.into()); !reflect.DeepEqual(got, typ.required) {
				t.Fatalf("required fields %q, want %q", got, typ.required)
			}
			// ok checks the strict rules alone: some valid shapes fail the
			// type's own Validate (an update without a key).
			ok := func(name, body string) {
				t.Run(name, func(t *testing.T) {
					if _, err := checkFields([]byte(body), fieldsOf(typ.into())); err != nil {
						t.Errorf("checkFields(%s) = %v", body, err)
					}
				})
			}
			bad := func(name, body, field string) {
				t.Run(name, func(t *testing.T) {
					err := Decode([]byte(body), typ.into())
					if !errors.Is(err, ErrBadRequest) {
						t.Fatalf("Decode(%s) = %v, want bad_request", body, err)
					}
					if !strings.Contains(err.Error(), `"`+field+`"`) {
						t.Errorf("Decode(%s) = %v, want the message to name %q", body, err, field)
					}
				})
			}
			if err := Decode([]byte(objectOf(typ.full...)), typ.into()); err != nil {
				t.Fatalf("Decode(%s) = %v", objectOf(typ.full...), err)
			}
			ok("required fields only", objectOf(minimal...))
			for i, f := range typ.full {
				others := append(append([]field{}, typ.full[:i]...), typ.full[i+1:]...)
				upper := strings.ToUpper(f.name)
				title := strings.ToUpper(f.name[:1]) + f.name[1:]
				bad(f.name+" upper case", objectOf(append(others, field{upper, f.value})...), upper)
				bad(f.name+" title case", objectOf(append(others, field{title, f.value})...), title)
				bad(f.name+" duplicate", objectOf(append(typ.full, f)...), f.name)
				bad(f.name+" null", objectOf(append(others, field{f.name, "null"})...), f.name)
				bad(f.name+" null with spaces", strings.Replace(objectOf(typ.full...), `"`+f.name+`":`+f.value, `"`+f.name+`" :  null `, 1), f.name)
				if required[f.name] {
					bad(f.name+" missing", objectOf(others...), f.name)
				} else {
					ok(f.name+" omitted", objectOf(others...))
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func requiredNames(v any) []string {
	fs := fieldsOf(v)
	var names []string
	for n, name := range fs.names {
		if fs.required&(1<<n) != 0 {
			names = append(names, name)
		}
	}
	return names
}

// TestDecodeStrictExamples are the bodies named in the protocol document.
func TestDecodeStrictExamples(t *testing.T) {
	tests := []struct {
		name string
		body string
		into func() any
		want any    // the decoded value when msg is ""
		msg  string // a part of the bad_request message
	}{
		{name: "explicit empty value", body: `{"key":"a","value":""}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Key: "a"}},
		{name: "escaped field name", body: `{"\u006bey":"a","valu\u0065":"1"}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Key: "a", Value: "1"}},
		{name: "escaped quote before a key", body: `{"value":"x\\\"\\","key":"a"}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Key: "a", Value: `x\"\`}},
		{name: "keys inside values are not fields", body: `{"key":"{\"key\":null}","value":"\"value\":null"}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Key: `{"key":null}`, Value: `"value":null`}},
		{name: "write without value", body: `{"key":"a"}`, into: func() any { return new(WriteRequest) }, msg: `missing required field "value"`},
		{name: "write without key", body: `{"value":"1"}`, into: func() any { return new(WriteRequest) }, msg: `missing required field "key"`},
		{name: "empty object", body: `{}`, into: func() any { return new(WriteRequest) }, msg: `missing required field "key"`},
		{name: "null value", body: `{"key":"a","value":null}`, into: func() any { return new(WriteRequest) }, msg: `field "value" is null`},
		{name: "upper-case key", body: `{"KEY":"a"}`, into: func() any { return new(ReadRequest) }, msg: `field "KEY": field names are case-sensitive, want "key"`},
		{name: "title-case value", body: `{"key":"a","Value":"x"}`, into: func() any { return new(WriteRequest) }, msg: `want "value"`},
		{name: "escaped upper-case key", body: `{"\u004bey":"a","value":"1"}`, into: func() any { return new(WriteRequest) }, msg: `field "Key"`},
		{name: "kelvin sign", body: "{\"\u212aey\":\"a\"}", into: func() any { return new(ReadRequest) }, msg: `want "key"`},
		{name: "duplicate key", body: `{"key":"a","key":"b"}`, into: func() any { return new(ReadRequest) }, msg: `duplicate field "key"`},
		{name: "duplicate through an escape", body: `{"key":"a","value":"1","k\u0065y":"b"}`, into: func() any { return new(WriteRequest) }, msg: `duplicate field "key"`},
		{name: "null body", body: `null`, into: func() any { return new(SnapshotRequest) }, msg: `not a JSON object`},
		{name: "delete without value", body: `{"op":"delete","key":"a"}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Op: OpDelete, Key: "a"}},
		{name: "conditional delete", body: `{"op":"delete","key":"a","if_revision":0}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Op: OpDelete, Key: "a", IfRevision: new(uint64)}},
		{name: "delete with a value", body: `{"op":"delete","key":"a","value":""}`, into: func() any { return new(WriteRequest) }, msg: `a delete has no value`},
		{name: "create without value", body: `{"op":"create","key":"a"}`, into: func() any { return new(WriteRequest) }, msg: `missing required field "value"`},
		{name: "unknown op", body: `{"op":"remove","key":"a","value":"1"}`, into: func() any { return new(WriteRequest) }, msg: `op "remove"`},
		{name: "if_revision on create", body: `{"op":"create","key":"a","value":"1","if_revision":2}`, into: func() any { return new(WriteRequest) }, msg: `if_revision applies to a put or delete`},
		{name: "negative if_revision", body: `{"key":"a","value":"1","if_revision":-1}`, into: func() any { return new(WriteRequest) }, msg: `if_revision`},
		{name: "if_revision as a string", body: `{"key":"a","value":"1","if_revision":"7"}`, into: func() any { return new(WriteRequest) }, msg: `if_revision`},
		{name: "if_revision too large", body: `{"key":"a","value":"1","if_revision":9007199254740993}`, into: func() any { return new(WriteRequest) }, msg: `if_revision`},
		{name: "delete by prefix", body: `{"op":"delete","key":"a/","prefix":true}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Op: OpDelete, Key: "a/", Prefix: true}},
		{name: "prefix on a put", body: `{"key":"a/","value":"1","prefix":true}`, into: func() any { return new(WriteRequest) }, msg: `prefix applies to a delete`},
		{name: "conditional delete by prefix", body: `{"op":"delete","key":"a/","prefix":true,"if_revision":3}`, into: func() any { return new(WriteRequest) }, msg: `no if_revision`},
		{name: "purge", body: `{"op":"purge","key":"a"}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Op: OpPurge, Key: "a"}},
		{name: "compact to a revision", body: `{"op":"compact","revision":9}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Op: OpCompact, Revision: 9}},
		{name: "compact by age", body: `{"op":"compact","age_ms":60000}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Op: OpCompact, AgeMS: 60000}},
		{name: "compact with neither", body: `{"op":"compact"}`, into: func() any { return new(WriteRequest) }, msg: `one of revision or age_ms`},
		{name: "compact with both", body: `{"op":"compact","revision":9,"age_ms":1}`, into: func() any { return new(WriteRequest) }, msg: `one of revision or age_ms`},
		{name: "compact with a key", body: `{"op":"compact","key":"a","revision":9}`, into: func() any { return new(WriteRequest) }, msg: `a compact has no key`},
		{name: "revision on a put", body: `{"key":"a","value":"1","revision":9}`, into: func() any { return new(WriteRequest) }, msg: `apply to a compact`},
		{name: "ttl", body: `{"key":"a","value":"1","ttl_ms":30000}`, into: func() any { return new(WriteRequest) }, want: &WriteRequest{Key: "a", Value: "1", TTLMS: 30000}},
		{name: "negative ttl", body: `{"key":"a","value":"1","ttl_ms":-5}`, into: func() any { return new(WriteRequest) }, msg: `ttl_ms -5`},
		{name: "ttl past ten years", body: `{"key":"a","value":"1","ttl_ms":315360000001}`, into: func() any { return new(WriteRequest) }, msg: `ttl_ms`},
		{name: "ttl on a delete", body: `{"op":"delete","key":"a","ttl_ms":5}`, into: func() any { return new(WriteRequest) }, msg: `ttl_ms applies to a put or create`},
		{name: "read at a revision", body: `{"key":"a","revision":4}`, into: func() any { return new(ReadRequest) }, want: &ReadRequest{Key: "a", Revision: 4}},
		{name: "leader read at a revision", body: `{"key":"a","consistency":"leader","revision":4}`, into: func() any { return new(ReadRequest) }, msg: `local or min_revision`},
		{name: "history limit", body: `{"key":"a","limit":65}`, into: func() any { return new(HistoryRequest) }, msg: `limit 65`},
		{name: "changes wait too long", body: `{"after":1,"wait_ms":30001}`, into: func() any { return new(ChangesRequest) }, msg: `wait_ms 30001`},
		{name: "changes after a negative revision", body: `{"after":-1}`, into: func() any { return new(ChangesRequest) }, msg: `after`},
		{name: "update without leader", body: `{"kind":"put","epoch":3,"seq":12,"key":"a","time":1}`, into: func() any { return new(Update) }, msg: `missing required field "leader"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := tt.into()
			err := Decode([]byte(tt.body), v)
			if tt.msg == "" {
				if err != nil {
					t.Fatalf("Decode = %v", err)
				}
				if !reflect.DeepEqual(v, tt.want) {
					t.Errorf("got %+v, want %+v", v, tt.want)
				}
				return
			}
			if !errors.Is(err, ErrBadRequest) || !strings.Contains(err.Error(), tt.msg) {
				t.Errorf("Decode = %v, want bad_request with %q", err, tt.msg)
			}
		})
	}
}

// DecodeReply stays tolerant: replies from newer servers may carry fields
// this client does not know, or in another case.
func TestDecodeReplyTolerant(t *testing.T) {
	var r WriteReply
	if err := DecodeReply([]byte(`{"ok":true,"Key":"a","revision":2,"extra":null,"revision":3}`), &r); err != nil {
		t.Fatal(err)
	}
	if r.Key != "a" || r.Revision != 3 {
		t.Errorf("got %+v", r)
	}
}
