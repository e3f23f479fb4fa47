package node

import (
	"encoding/json"
	"errors"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/zkvstore/zkv/bus"
)

// decodePage decodes a snapshot page reply: a catch-up's largest cost is
// decoding a million entries, and encoding/json's reflection spends most of
// the time there. It parses the shape the leader sends (bus.SnapshotReply:
// numbers, booleans, strings and the entries array) by hand and falls back
// to bus.DecodeReply for anything else (an error body, escapes it does not
// take, unknown fields, null, exotic numbers), so it accepts exactly what
// bus.DecodeReply accepts and decodes it the same way.
func decodePage(data []byte) (bus.SnapshotReply, error) {
	if p, ok := fastPage(data); ok {
		return p, nil
	}
	var p bus.SnapshotReply
	err := bus.DecodeReply(data, &p)
	return p, err
}

// errSlowPath sends a page to bus.DecodeReply.
var errSlowPath = errors.New("not the fast path")

type pageParser struct {
	b []byte
	i int
}

func fastPage(data []byte) (p bus.SnapshotReply, ok bool) {
	if !utf8.Valid(data) {
		return p, false
	}
	ps := &pageParser{b: data}
	if err := ps.page(&p); err != nil {
		return bus.SnapshotReply{}, false
	}
	ps.ws()
	return p, ps.i == len(ps.b)
}

func (ps *pageParser) ws() {
	for ps.i < len(ps.b) {
		switch ps.b[ps.i] {
		case ' ', '\t', '\n', '\r':
			ps.i++
		default:
			return
		}
	}
}

// consume skips whitespace and then c, or fails.
func (ps *pageParser) consume(c byte) error {
	ps.ws()
	if ps.i >= len(ps.b) || ps.b[ps.i] != c {
		return errSlowPath
	}
	ps.i++
	return nil
}

// peek skips whitespace and reports the next byte (0 at the end).
func (ps *pageParser) peek() byte {
	ps.ws()
	if ps.i >= len(ps.b) {
		return 0
	}
	return ps.b[ps.i]
}

// object calls field for each member of an object.
func (ps *pageParser) object(field func(name string) error) error {
	if err := ps.consume('{'); err != nil {
		return err
	}
	if ps.peek() == '}' {
		ps.i++
		return nil
	}
	for {
		name, err := ps.str()
		if err != nil {
			return err
		}
		if err := ps.consume(':'); err != nil {
			return err
		}
		if err := field(name); err != nil {
			return err
		}
		switch ps.peek() {
		case ',':
			ps.i++
		case '}':
			ps.i++
			return nil
		default:
			return errSlowPath
		}
	}
}

func (ps *pageParser) page(p *bus.SnapshotReply) error {
	return ps.object(func(name string) error {
		var err error
		switch name {
		case "epoch":
			p.Epoch, err = ps.uint()
		case "revision":
			p.Revision, err = ps.uint()
		case "more":
			p.More, err = ps.bool()
		case "leader":
			p.Leader, err = ps.str()
		case "entries":
			p.Entries, err = ps.entries()
		default: // "error" and anything unknown
			err = errSlowPath
		}
		return err
	})
}

func (ps *pageParser) entries() ([]bus.SnapshotEntry, error) {
	if err := ps.consume('['); err != nil {
		return nil, err
	}
	out := make([]bus.SnapshotEntry, 0, bus.MaxSnapshotPage)
	if ps.peek() == ']' {
		ps.i++
		return out, nil
	}
	for {
		var e bus.SnapshotEntry
		err := ps.object(func(name string) error {
			var err error
			switch name {
			case "key":
				e.Key, err = ps.str()
			case "value":
				e.Value, err = ps.str()
			case "revision":
				e.Revision, err = ps.uint()
			case "expires":
				var u uint64
				u, err = ps.uint()
				if u > math.MaxInt64 {
					err = errSlowPath
				}
				e.Expires = int64(u)
			default:
				err = errSlowPath
			}
			return err
		})
		if err != nil {
			return nil, err
		}
		out = append(out, e)
		switch ps.peek() {
		case ',':
			ps.i++
		case ']':
			ps.i++
			return out, nil
		default:
			return nil, errSlowPath
		}
	}
}

// str reads a string. One with an escape is unquoted by encoding/json.
func (ps *pageParser) str() (string, error) {
	if err := ps.consume('"'); err != nil {
		return "", err
	}
	start, escaped := ps.i, false
	for ; ps.i < len(ps.b); ps.i++ {
		switch c := ps.b[ps.i]; {
		case c == '"':
			ps.i++
			if !escaped {
				return string(ps.b[start : ps.i-1]), nil
			}
			var s string
			if err := json.Unmarshal(ps.b[start-1:ps.i], &s); err != nil {
				return "", errSlowPath
			}
			return s, nil
		case c == '\\':
			escaped = true
			ps.i++ // the escaped byte cannot end the string
		case c < 0x20:
			return "", errSlowPath
		}
	}
	return "", errSlowPath
}

// uint reads a non-negative integer without sign, fraction or exponent.
func (ps *pageParser) uint() (uint64, error) {
	ps.ws()
	start := ps.i
	var v uint64
	for ; ps.i < len(ps.b) && ps.b[ps.i] >= '0' && ps.b[ps.i] <= '9'; ps.i++ {
		d := uint64(ps.b[ps.i] - '0')
		if v > (1<<64-1-d)/10 {
			return 0, errSlowPath
		}
		v = v*10 + d
	}
	n := ps.i - start
	if n == 0 || n > 1 && ps.b[start] == '0' {
		return 0, errSlowPath
	}
	if ps.i < len(ps.b) {
		switch ps.b[ps.i] {
		case '.', 'e', 'E':
			return 0, errSlowPath
		}
	}
	return v, nil
}

func (ps *pageParser) bool() (bool, error) {
	ps.ws()
	rest := ps.b[ps.i:]
	switch {
	case len(rest) >= 4 && string(rest[:4]) == "true":
		ps.i += 4
		return true, nil
	case len(rest) >= 5 && string(rest[:5]) == "false":
		ps.i += 5
		return false, nil
	}
	return false, errSlowPath
}

// encodePage is bus.Encode(p), byte for byte, without reflection: the
// leader encodes a page for every catch-up request, and encoding/json spends
// most of that in reflection. Strings that need escaping go through
// encoding/json.
func encodePage(p bus.SnapshotReply) []byte {
	size := 96 + len(p.Leader)
	for _, e := range p.Entries {
		size += 48 + len(e.Key) + len(e.Value)
	}
	b := make([]byte, 0, size)
	b = append(b, `{"epoch":`...)
	b = strconv.AppendUint(b, p.Epoch, 10)
	b = append(b, `,"revision":`...)
	b = strconv.AppendUint(b, p.Revision, 10)
	b = append(b, `,"entries":`...)
	if p.Entries == nil {
		b = append(b, "null"...)
	} else {
		b = append(b, '[')
		for i, e := range p.Entries {
			if i > 0 {
				b = append(b, ',')
			}
			b = append(b, `{"key":`...)
			b = bus.AppendJSONString(b, e.Key)
			b = append(b, `,"value":`...)
			b = bus.AppendJSONString(b, e.Value)
			b = append(b, `,"revision":`...)
			b = strconv.AppendUint(b, e.Revision, 10)
			if e.Expires != 0 {
				b = append(b, `,"expires":`...)
				b = strconv.AppendInt(b, e.Expires, 10)
			}
			b = append(b, '}')
		}
		b = append(b, ']')
	}
	b = append(b, `,"more":`...)
	b = strconv.AppendBool(b, p.More)
	b = append(b, `,"leader":`...)
	b = bus.AppendJSONString(b, p.Leader)
	return append(b, '}')
}
