package bus

import (
	"bytes"
	"encoding"
	"encoding/json"
	"reflect"
	"strconv"
	"strings"
	"sync"
)

// encoding/json matches object keys to fields case-insensitively, lets a
// later duplicate key overwrite an earlier one, treats null as "leave the
// field alone" and cannot tell a missing field from a zero one. Decode
// closes those holes with checkFields, one pass over the top-level object
// of a body encoding/json has already accepted.
//
// The rules come from the json tags of the message type:
//   - a key must equal a field's json name exactly (after JSON unescaping);
//   - a key may appear once;
//   - no value may be null;
//   - a field whose tag has no omitempty (or omitzero) is required: it is
//     what Encode always writes, so every body this package encodes passes.

// maxStrictFields bounds the fields of a message type checkFields handles
// (one bit each in a uint64).
const maxStrictFields = 64

// fieldSet is the top-level JSON fields of one message type.
type fieldSet struct {
	typeName string
	names    []string       // json names, in field order
	fields   []int          // struct field index of names[i]
	index    map[string]int // json name -> position in names
	required uint64         // bit i set: names[i] must be present
	// flat says every field is a scalar (or a pointer to one) and the
	// type decodes itself in no custom way, so checkFields sees every
	// object key a body of the type can hold.
	flat bool
}

// presence is the fields checkFields found in a body, for the rules a
// message type checks beyond its tags.
type presence struct {
	fs   *fieldSet
	seen uint64
}

// has reports whether the body had the field of json name name.
func (p presence) has(name string) bool {
	n, ok := p.fs.index[name]
	return ok && p.seen&(1<<n) != 0
}

// fieldSets caches a *fieldSet (or nil for a type that is not a struct)
// per reflect.Type.
var fieldSets sync.Map

// fieldsOf returns the fields of the struct v points to, or nil when v is
// not a pointer to a struct.
func fieldsOf(v any) *fieldSet {
	t := reflect.TypeOf(v)
	if fs, ok := fieldSets.Load(t); ok {
		return fs.(*fieldSet)
	}
	var fs *fieldSet
	if t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Struct {
		fs = newFieldSet(t.Elem())
	}
	fieldSets.Store(t, fs)
	return fs
}

// newFieldSet reads t's json tags. Message types have no embedded structs,
// whose fields encoding/json would lift to the top level.
func newFieldSet(t reflect.Type) *fieldSet {
	fs := &fieldSet{typeName: t.Name(), index: make(map[string]int), flat: !customDecoder(t)}
	for i := range t.NumField() {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if !isScalar(f.Type) || f.Anonymous {
			fs.flat = false
		}
		tag := f.Tag.Get("json")
		if tag == "-" {
			continue
		}
		name, opts, _ := strings.Cut(tag, ",")
		if name == "" {
			name = f.Name
		}
		if hasOption(opts, "string") {
			fs.flat = false
		}
		n := len(fs.names)
		fs.names = append(fs.names, name)
		fs.fields = append(fs.fields, i)
		fs.index[name] = n
		if n < maxStrictFields && !hasOption(opts, "omitempty") && !hasOption(opts, "omitzero") {
			fs.required |= 1 << n
		}
	}
	return fs
}

// isScalar reports whether t is a JSON scalar type (or a pointer to one)
// that decodes in no custom way: it holds no object whose keys
// checkFields would not see.
func isScalar(t reflect.Type) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if customDecoder(t) {
		return false
	}
	switch t.Kind() {
	case reflect.Bool, reflect.String,
		reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return true
	}
	return false
}

// customDecoder reports whether t, or a pointer to it, decodes itself.
func customDecoder(t reflect.Type) bool {
	p := reflect.PointerTo(t)
	return p.Implements(jsonUnmarshaler) || p.Implements(textUnmarshaler)
}

var (
	jsonUnmarshaler = reflect.TypeFor[json.Unmarshaler]()
	textUnmarshaler = reflect.TypeFor[encoding.TextUnmarshaler]()
)

func hasOption(opts, want string) bool {
	for opts != "" {
		var o string
		o, opts, _ = strings.Cut(opts, ",")
		if o == want {
			return true
		}
	}
	return false
}

// checkFields applies the strict rules to data, a body that encoding/json
// already decoded as one JSON value followed by nothing but whitespace. It
// returns the fields present, bit i for names[i].
func checkFields(data []byte, fs *fieldSet) (uint64, error) {
	if len(fs.names) > maxStrictFields {
		return 0, Errorf(CodeInternal, "message type %s has %d fields, strict decoding handles %d", fs.typeName, len(fs.names), maxStrictFields)
	}
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return 0, Errorf(CodeBadRequest, "body is not a JSON object")
	}
	i++
	var seen uint64
	for {
		i = skipSpace(data, i)
		if i < len(data) && data[i] == ',' {
			i = skipSpace(data, i+1)
		}
		if i >= len(data) {
			return 0, Errorf(CodeBadRequest, "body is not a valid JSON object")
		}
		if data[i] == '}' {
			break
		}
		end := stringEnd(data, i)
		if data[i] != '"' || end < 0 {
			return 0, Errorf(CodeBadRequest, "body is not a valid JSON object")
		}
		raw := data[i+1 : end-1]
		n, ok := fs.index[string(raw)]
		if !ok && bytes.IndexByte(raw, '\\') >= 0 {
			var name string
			if json.Unmarshal(data[i:end], &name) == nil {
				n, ok = fs.index[name]
				raw = []byte(name)
			}
		}
		if !ok {
			return 0, unknownField(fs, string(raw))
		}
		if seen&(1<<n) != 0 {
			return 0, Errorf(CodeBadRequest, "duplicate field %q", fs.names[n])
		}
		seen |= 1 << n
		i = skipSpace(data, end)
		if i >= len(data) || data[i] != ':' {
			return 0, Errorf(CodeBadRequest, "body is not a valid JSON object")
		}
		i = skipSpace(data, i+1)
		if i < len(data) && data[i] == 'n' {
			return 0, Errorf(CodeBadRequest, "field %q is null; omit it or give a value", fs.names[n])
		}
		if i = skipValue(data, i); i < 0 {
			return 0, Errorf(CodeBadRequest, "body is not a valid JSON object")
		}
	}
	if missing := fs.required &^ seen; missing != 0 {
		for n, name := range fs.names {
			if missing&(1<<n) != 0 {
				return 0, Errorf(CodeBadRequest, "missing required field %q", name)
			}
		}
	}
	return seen, nil
}

// unknownField names a key that is no field of fs, and the field it
// differs from only by case, if any.
func unknownField(fs *fieldSet, key string) error {
	for _, name := range fs.names {
		if strings.EqualFold(name, key) {
			return Errorf(CodeBadRequest, "field %q: field names are case-sensitive, want %q", key, name)
		}
	}
	return Errorf(CodeBadRequest, "unknown field %q", key)
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// stringEnd returns the index just past the JSON string starting at
// data[i], or -1 if it does not end.
func stringEnd(data []byte, i int) int {
	j := i + 1
	for {
		k := bytes.IndexByte(data[j:], '"')
		if k < 0 {
			return -1
		}
		k += j
		// The quote is escaped if an odd run of backslashes precedes it.
		b := k - 1
		for b > i && data[b] == '\\' {
			b--
		}
		if (k-1-b)%2 == 0 {
			return k + 1
		}
		j = k + 1
	}
}

// skipValue returns the index just past the JSON value starting at data[i],
// or -1 if it does not end.
func skipValue(data []byte, i int) int {
	if i >= len(data) {
		return -1
	}
	switch data[i] {
	case '"':
		return stringEnd(data, i)
	case '{', '[':
		depth := 0
		for i < len(data) {
			switch data[i] {
			case '"':
				if i = stringEnd(data, i); i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	}
	for i < len(data) {
		switch data[i] {
		case ',', '}', ']', ' ', '\t', '\n', '\r':
			return i
		}
		i++
	}
	return i
}

// decodeFlat decodes data, valid UTF-8, into v, a pointer to a struct
// whose fields fs describes (fs.flat), when the body is plain: an object whose keys are
// exact field names without escapes, each once, whose values are strings
// without escapes or control characters, integers without fraction or
// exponent, or true or false, each of the field's kind, followed by
// nothing but whitespace. Then it reports true and v holds what
// encoding/json would have decoded. On anything else it reports false,
// having set some fields of v or none, and the caller decodes with
// encoding/json, which gives the verdict and the error.
func decodeFlat(data []byte, v any, fs *fieldSet) bool {
	rv := reflect.ValueOf(v).Elem()
	i := skipSpace(data, 0)
	if i >= len(data) || data[i] != '{' {
		return false
	}
	i = skipSpace(data, i+1)
	if i < len(data) && data[i] == '}' {
		return skipSpace(data, i+1) == len(data)
	}
	var seen uint64
	for {
		key, next, ok := plainString(data, i)
		if !ok {
			return false
		}
		n, known := fs.index[string(key)]
		if !known || n >= maxStrictFields || seen&(1<<n) != 0 {
			return false
		}
		seen |= 1 << n
		i = skipSpace(data, next)
		if i >= len(data) || data[i] != ':' {
			return false
		}
		if i, ok = setPlain(rv.Field(fs.fields[n]), data, skipSpace(data, i+1)); !ok {
			return false
		}
		i = skipSpace(data, i)
		switch {
		case i < len(data) && data[i] == ',':
			i = skipSpace(data, i+1)
		case i < len(data) && data[i] == '}':
			return skipSpace(data, i+1) == len(data)
		default:
			return false
		}
	}
}

// plainString returns the contents of the JSON string at data[i] and the
// index past it, if it has no escapes or control characters.
func plainString(data []byte, i int) (s []byte, next int, ok bool) {
	if i >= len(data) || data[i] != '"' {
		return nil, 0, false
	}
	for j := i + 1; j < len(data); j++ {
		switch c := data[j]; {
		case c == '"':
			return data[i+1 : j], j + 1, true
		case c == '\\' || c < 0x20:
			return nil, 0, false
		}
	}
	return nil, 0, false
}

// setPlain decodes the plain value at data[i] into f and returns the
// index past it.
func setPlain(f reflect.Value, data []byte, i int) (int, bool) {
	if f.Kind() == reflect.Pointer {
		p := reflect.New(f.Type().Elem())
		next, ok := setPlain(p.Elem(), data, i)
		if ok {
			f.Set(p)
		}
		return next, ok
	}
	switch f.Kind() {
	case reflect.String:
		s, next, ok := plainString(data, i)
		if ok {
			f.SetString(string(s))
		}
		return next, ok
	case reflect.Bool:
		switch {
		case bytes.HasPrefix(data[i:], []byte("true")):
			f.SetBool(true)
			return i + 4, true
		case bytes.HasPrefix(data[i:], []byte("false")):
			f.SetBool(false)
			return i + 5, true
		}
		return 0, false
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		num, next := plainInteger(data, i)
		n, err := strconv.ParseInt(string(num), 10, 64)
		if len(num) == 0 || err != nil || f.OverflowInt(n) {
			return 0, false
		}
		f.SetInt(n)
		return next, true
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		num, next := plainInteger(data, i)
		n, err := strconv.ParseUint(string(num), 10, 64)
		if len(num) == 0 || err != nil || f.OverflowUint(n) {
			return 0, false
		}
		f.SetUint(n)
		return next, true
	}
	return 0, false
}

// plainInteger returns the JSON integer at data[i] (no fraction or
// exponent: "-"? and "0" or digits not starting with 0) and the index
// past it, or nothing if data[i:] does not start with one.
func plainInteger(data []byte, i int) (num []byte, next int) {
	j := i
	if j < len(data) && data[j] == '-' {
		j++
	}
	start := j
	for j < len(data) && data[j] >= '0' && data[j] <= '9' {
		j++
	}
	if j == start || data[start] == '0' && j > start+1 {
		return nil, i
	}
	if j < len(data) {
		switch data[j] {
		case '.', 'e', 'E':
			return nil, i
		}
	}
	return data[i:j], j
}
