package bus

import (
	"strings"
	"testing"
)

// Codec benchmarks beyond those in messages_test.go (the request and
// update codecs): the replies a client decodes and the read path.

func BenchmarkDecodeReadRequest(b *testing.B) {
	body := Encode(ReadRequest{Key: "users/42/name"})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var r ReadRequest
		if err := Decode(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeReadReply(b *testing.B) {
	r := ReadReply{Found: true, Key: "users/42/name", Value: strings.Repeat("v", 100), Revision: 12345, Node: "n2", Role: RoleFollower, Epoch: 3}
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(r)
	}
}

func BenchmarkDecodeReplyRead(b *testing.B) {
	body := Encode(ReadReply{Found: true, Key: "users/42/name", Value: strings.Repeat("v", 100), Revision: 12345, Node: "n2", Role: RoleFollower, Epoch: 3})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var r ReadReply
		if err := DecodeReply(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodeWriteReply(b *testing.B) {
	r := WriteReply{OK: true, Key: "users/42/name", Revision: 12345, Epoch: 3, Leader: "n1"}
	b.ReportAllocs()
	for b.Loop() {
		_ = Encode(r)
	}
}

func BenchmarkDecodeReplyWrite(b *testing.B) {
	body := Encode(WriteReply{OK: true, Key: "users/42/name", Revision: 12345, Epoch: 3, Leader: "n1"})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var r WriteReply
		if err := DecodeReply(body, &r); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkDecodeReplyError(b *testing.B) {
	body := EncodeError(Errorf(CodeNotLeader, "node n2 is not the leader; the leader is n1"))
	b.ReportAllocs()
	for b.Loop() {
		var r WriteReply
		if err := DecodeReply(body, &r); err == nil {
			b.Fatal("want an error")
		}
	}
}

// BenchmarkDecodeUpdateLarge is a replica decoding an update carrying the
// largest value.
func BenchmarkDecodeUpdateLarge(b *testing.B) {
	body := Encode(Update{Kind: KindPut, Epoch: 3, Seq: 12345, Key: "users/42/name", Value: strings.Repeat("v", MaxValueBytes), Leader: "n1", Time: 1700000000000000000})
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		var u Update
		if err := Decode(body, &u); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCheckFields is the strict field pass of Decode alone, on the
// bodies of BenchmarkDecodeWriteRequest and BenchmarkDecodeUpdateLarge.
func BenchmarkCheckFields(b *testing.B) {
	bodies := map[string][]byte{
		"WriteRequest": Encode(WriteRequest{Key: "users/42/name", Value: strings.Repeat("v", 100)}),
		"UpdateLarge":  Encode(Update{Kind: KindPut, Epoch: 3, Seq: 12345, Key: "users/42/name", Value: strings.Repeat("v", MaxValueBytes), Leader: "n1", Time: 1700000000000000000}),
	}
	for name, body := range bodies {
		b.Run(name, func(b *testing.B) {
			var v any = new(WriteRequest)
			if name == "UpdateLarge" {
				v = new(Update)
			}
			fs := fieldsOf(v)
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				if _, err := checkFields(body, fs); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
