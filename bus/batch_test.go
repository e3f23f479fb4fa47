package bus

import (
	"errors"
	"testing"
)

func batchOf(ups ...Update) [][]byte {
	var enc [][]byte
	for _, u := range ups {
		enc = append(enc, Encode(u))
	}
	return enc
}

func put(seq uint64) Update {
	return Update{Kind: KindPut, Epoch: 3, Seq: seq, Key: "k", Value: "v", Leader: "n1", Time: 1}
}

func TestBatchRoundTrip(t *testing.T) {
	want := []Update{put(7), put(8), {Kind: KindDelete, Epoch: 3, Seq: 9, Key: "k", Leader: "n1", Time: 2, Ack: true}}
	got, err := DecodeReplication(EncodeBatch(3, "n1", batchOf(want...)))
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("got %d updates, want %d", len(got), len(want))
	}
	for i := range want {
		if got[i] != want[i] {
			t.Errorf("update %d: got %+v, want %+v", i, got[i], want[i])
		}
	}
	single, err := DecodeReplication(Encode(put(5)))
	if err != nil || len(single) != 1 || single[0] != put(5) {
		t.Fatalf("single update: %+v, %v", single, err)
	}
}

func TestBatchRefused(t *testing.T) {
	other := put(8)
	other.Leader = "n2"
	older := put(8)
	older.Epoch = 2
	marker := Update{Kind: KindEpoch, Epoch: 3, Seq: 8, Leader: "n1"}
	bad := put(8)
	bad.Key = ""
	many := make([]Update, MaxBatchUpdates+1)
	for i := range many {
		many[i] = put(uint64(i + 1))
	}
	cases := map[string][]byte{
		"gap":            EncodeBatch(3, "n1", batchOf(put(7), put(9))),
		"repeat":         EncodeBatch(3, "n1", batchOf(put(7), put(7))),
		"other leader":   EncodeBatch(3, "n1", batchOf(put(7), other)),
		"other epoch":    EncodeBatch(3, "n1", batchOf(put(7), older)),
		"marker":         EncodeBatch(3, "n1", batchOf(put(7), marker)),
		"invalid update": EncodeBatch(3, "n1", batchOf(put(7), bad)),
		"empty":          EncodeBatch(3, "n1", nil),
		"too many":       EncodeBatch(3, "n1", batchOf(many...)),
		"bad leader":     EncodeBatch(3, "n 1", batchOf(put(7))),
		"unknown field":  []byte(`{"kind":"batch","epoch":3,"leader":"n1","updates":[],"x":1}`),
		"nested unknown": []byte(`{"kind":"batch","epoch":3,"leader":"n1","updates":[{"kind":"put","epoch":3,"seq":1,"key":"k","leader":"n1","time":1,"y":2}]}`),
		"not json":       []byte(`{"kind":"batch"`),
		"nested repeat":  []byte(`{"kind":"batch","epoch":3,"leader":"n1","updates":[{"kind":"put","epoch":3,"seq":1,"key":"k","key":"j","leader":"n1","time":1}]}`),
		"nested case":    []byte(`{"kind":"batch","epoch":3,"leader":"n1","updates":[{"kind":"put","epoch":3,"seq":1,"Key":"k","leader":"n1","time":1}]}`),
		"nested missing": []byte(`{"kind":"batch","epoch":3,"leader":"n1","updates":[{"kind":"put","epoch":3,"seq":1,"key":"k","leader":"n1"}]}`),
		"nested null":    []byte(`{"kind":"batch","epoch":3,"leader":"n1","updates":[{"kind":"put","epoch":3,"seq":1,"key":"k","value":null,"leader":"n1","time":1}]}`),
	}
	for name, data := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := DecodeReplication(data)
			var e *Error
			if !errors.As(err, &e) {
				t.Fatalf("got %v, want a wire error", err)
			}
		})
	}
}

func TestAckRange(t *testing.T) {
	ok := []Ack{{Node: "n2", Epoch: 1, Seq: 5}, {Node: "n2", Epoch: 1, From: 2, Seq: 5}, {Node: "n2", Epoch: 1, From: 1, Seq: MaxBatchUpdates}}
	for _, a := range ok {
		if err := a.Validate(); err != nil {
			t.Errorf("%+v: %v", a, err)
		}
	}
	bad := []Ack{{Node: "n2", Epoch: 1, From: 6, Seq: 5}, {Node: "n2", Epoch: 1, From: 1, Seq: MaxBatchUpdates + 1}}
	for _, a := range bad {
		if err := a.Validate(); err == nil {
			t.Errorf("%+v: accepted", a)
		}
	}
}
