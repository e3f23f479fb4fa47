package node

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/zkvstore/zkv/bus"
)

// slowPage is the reference: what bus.DecodeReply makes of data.
func slowPage(data []byte) (bus.SnapshotReply, error) {
	var p bus.SnapshotReply
	err := bus.DecodeReply(data, &p)
	return p, err
}

func checkPage(t *testing.T, data []byte) {
	t.Helper()
	got, gerr := decodePage(data)
	want, werr := slowPage(data)
	if (gerr == nil) != (werr == nil) || !reflect.DeepEqual(normalize(got), normalize(want)) {
		t.Fatalf("decodePage(%q) = %+v, %v; bus.DecodeReply: %+v, %v", data, got, gerr, want, werr)
	}
	var be, we *bus.Error
	if errors.As(gerr, &be) != errors.As(werr, &we) || be != nil && be.Code != we.Code {
		t.Fatalf("decodePage(%q) error %v, bus.DecodeReply %v", data, gerr, werr)
	}
}

// normalize treats a nil and an empty entries list alike.
func normalize(p bus.SnapshotReply) bus.SnapshotReply {
	if len(p.Entries) == 0 {
		p.Entries = nil
	}
	return p
}

func TestDecodePageMatchesEncodingJSON(t *testing.T) {
	for _, data := range []string{
		`{"epoch":3,"revision":12,"entries":[{"key":"a","value":"1","revision":4}],"more":true,"leader":"n1"}`,
		` { "epoch" : 3 , "entries" : [ ] , "more" : false } `,
		`{"entries":[{"key":"a\"b\\c\u00e9\n","value":"\u003c\u2028\ud83d\ude00","revision":1}]}`,
		`{"error":{"code":"unavailable","message":"node n1: budget snapshot_pages is full (4 in flight)"}}`,
		`{"error":{"code":"not_leader","message":"x"},"epoch":3}`,
		`{"Epoch":3}`, `{"epoch":3,"extra":[1,{"a":null}]}`, `{"epoch":null}`, `{"entries":null}`,
		`{"epoch":-1}`, `{"epoch":1.5}`, `{"epoch":1e3}`, `{"epoch":18446744073709551615}`, `{"epoch":18446744073709551616}`,
		`{"epoch":01}`, `{"more":tru}`, `{"epoch":3}x`, `{"epoch":3`, `{"entries":[{"key":"a"},]}`, `{"key":"a` + "\x01" + `"}`,
		`{"leader":"` + "\xff" + `"}`, `[]`, ``, `{}`, `{"entries":[{"key":"a","key":"b"}],"entries":[]}`,
	} {
		checkPage(t, []byte(data))
	}
}

// Random pages as the leader encodes them, and random corruptions of them.
func TestDecodePageRandom(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	alphabet := []rune("ab\"\\/<>&\n\t\u00e9\u2028\U0001F600 z0")
	str := func() string {
		r := make([]rune, rng.IntN(12))
		for i := range r {
			r[i] = alphabet[rng.IntN(len(alphabet))]
		}
		return string(r)
	}
	for range 2000 {
		p := bus.SnapshotReply{Epoch: rng.Uint64(), Revision: rng.Uint64N(1000), More: rng.IntN(2) == 0, Leader: str(), Entries: []bus.SnapshotEntry{}}
		for range rng.IntN(5) {
			p.Entries = append(p.Entries, bus.SnapshotEntry{Key: str(), Value: str(), Revision: rng.Uint64()})
		}
		data := bus.Encode(p)
		if enc := encodePage(p); string(enc) != string(data) {
			t.Fatalf("encodePage = %s\nbus.Encode = %s", enc, data)
		}
		if got, err := decodePage(data); err != nil || !reflect.DeepEqual(normalize(got), normalize(p)) {
			t.Fatalf("decodePage(%q) = %+v, %v; want %+v", data, got, err, p)
		}
		if _, ok := fastPage(data); !ok {
			t.Fatalf("a page as the leader encodes it took the slow path: %q", data)
		}
		bad := append([]byte(nil), data...)
		for range 1 + rng.IntN(3) {
			const junk = "{}[],:\"\\0 9x-"
			bad[rng.IntN(len(bad))] = junk[rng.IntN(len(junk))]
		}
		checkPage(t, bad)
	}
}

func TestEncodePageEdgeCases(t *testing.T) {
	for _, p := range []bus.SnapshotReply{
		{},
		{Entries: []bus.SnapshotEntry{}},
		{Epoch: 1<<64 - 1, Entries: []bus.SnapshotEntry{{Key: "\x7f\x00<&>", Value: "\xff", Revision: 0}}, Leader: "n1"},
	} {
		if enc, want := encodePage(p), bus.Encode(p); string(enc) != string(want) {
			t.Errorf("encodePage = %s, bus.Encode = %s", enc, want)
		}
	}
}

func FuzzDecodePage(f *testing.F) {
	f.Add([]byte(`{"epoch":3,"revision":12,"entries":[{"key":"a","value":"1","revision":4}],"more":true,"leader":"n1"}`))
	f.Add([]byte(`{"error":{"code":"unavailable","message":"x"}}`))
	f.Add([]byte(fmt.Sprintf(`{"entries":[{"key":%q,"value":"\u003c","revision":1}]}`, "a\"b")))
	f.Fuzz(func(t *testing.T, data []byte) { checkPage(t, data) })
}
