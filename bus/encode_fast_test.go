package bus

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// fastEncoded are the message types Encode writes without reflection.
var fastEncoded = []any{ReadReply{}, WriteReply{}, Update{}}

// TestEncodeMatchesEncodingJSON sets each field of each type Encode
// writes itself, one at a time and all together, and checks the bytes
// against encoding/json: a field added to such a type and not to its
// encoder fails here.
func TestEncodeMatchesEncodingJSON(t *testing.T) {
	for _, zero := range fastEncoded {
		typ := reflect.TypeOf(zero)
		all := reflect.New(typ).Elem()
		checkEncode(t, all.Interface())
		for i := range typ.NumField() {
			one := reflect.New(typ).Elem()
			setSample(t, one.Field(i), i)
			setSample(t, all.Field(i), i)
			checkEncode(t, one.Interface())
		}
		checkEncode(t, all.Interface())
	}
}

// setSample gives f a non-zero value of its kind.
func setSample(t *testing.T, f reflect.Value, i int) {
	t.Helper()
	switch f.Kind() {
	case reflect.String:
		f.SetString("s" + string(rune('a'+i)))
	case reflect.Bool:
		f.SetBool(true)
	case reflect.Int, reflect.Int64:
		f.SetInt(int64(-1000 - i))
	case reflect.Uint64:
		f.SetUint(uint64(1<<60 + i))
	default:
		t.Fatalf("field kind %s has no sample; teach setSample and the encoder", f.Kind())
	}
}

// FuzzEncode checks Encode against encoding/json on any strings and
// numbers, escapes and invalid UTF-8 included.
func FuzzEncode(f *testing.F) {
	f.Add("users/42/name", "a value", "n1", int64(7), uint64(12345), true)
	f.Add("<&>\u2028\u2029", "\x00\x1f\"\\\x7f", "\xff\xfe", int64(-1), uint64(0), false)
	f.Add("clé 🙂", "line\nbreak\ttab\b\f\r", "", int64(0), uint64(1<<63), true)
	f.Fuzz(func(t *testing.T, key, value, name string, n int64, u uint64, b bool) {
		checkEncode(t, ReadReply{Found: b, Key: key, Value: value, Revision: u, Node: name, Role: value, Epoch: u, Stale: b, Expires: n, AtRevision: u})
		checkEncode(t, WriteReply{OK: b, Op: name, Key: key, Deleted: b, Count: int(n), Compacted: u, Expires: n, Revision: u, Epoch: u,
			Leader: name, Duplicate: b, Acks: value, Confirmed: int(n), Members: int(n)})
		checkEncode(t, Update{Kind: name, Epoch: u, Seq: u, Key: key, Value: value, Leader: name, Time: n, RequestID: value,
			Ack: b, Prefix: b, Expired: b, Expires: n, Compact: u})
	})
}

func checkEncode(t *testing.T, v any) {
	t.Helper()
	want, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if got := Encode(v); !bytes.Equal(got, want) {
		t.Fatalf("Encode(%T) =\n%s\nencoding/json writes\n%s", v, got, want)
	}
}
