package bus

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats.go"
)

func TestSignerVerify(t *testing.T) {
	key := []byte(strings.Repeat("k", MinClusterKeyBytes))
	sg, err := NewSigner("c1", key)
	if err != nil {
		t.Fatal(err)
	}
	other, _ := NewSigner("c1", []byte(strings.Repeat("o", MinClusterKeyBytes)))
	foreign, _ := NewSigner("c2", key)
	body := []byte(`{"kind":"put"}`)
	good := sg.Header(DomainBus, "kv.replication", body)

	tests := []struct {
		name    string
		subject string
		header  nats.Header
		body    []byte
		want    error
	}{
		{"signed", "kv.replication", good, body, nil},
		{"unsigned", "kv.replication", nil, body, ErrUnsigned},
		{"other body", "kv.replication", good, []byte(`{"kind":"epoch"}`), ErrBadSignature},
		{"other subject", "kv.ack", good, body, ErrBadSignature},
		{"a reply's signature", "kv.replication", sg.Header(DomainReply, "kv.replication", body), body, ErrBadSignature},
		{"other key, same cluster id", "kv.replication", other.Header(DomainBus, "kv.replication", body), body, ErrBadSignature},
		{"another cluster", "kv.replication", foreign.Header(DomainBus, "kv.replication", body), body, ErrForeignCluster},
		{"MAC without cluster", "kv.replication", nats.Header{HeaderMAC: good[HeaderMAC]}, body, ErrForeignCluster},
		{"cluster without MAC", "kv.replication", nats.Header{HeaderCluster: []string{"c1"}}, body, ErrBadSignature},
		{"MAC not base64", "kv.replication", nats.Header{HeaderCluster: []string{"c1"}, HeaderMAC: []string{"!!"}}, body, ErrBadSignature},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := sg.Verify(DomainBus, tt.subject, tt.header, tt.body)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("Verify = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestNewSignerRejectsWeakKeys(t *testing.T) {
	if _, err := NewSigner("c", make([]byte, MinClusterKeyBytes-1)); err == nil {
		t.Error("a short key was accepted")
	}
	if _, err := NewSigner("", make([]byte, MinClusterKeyBytes)); err == nil {
		t.Error("an empty cluster id was accepted")
	}
}

func BenchmarkSignVerify(b *testing.B) {
	sg, _ := NewSigner("c1", []byte(strings.Repeat("k", MinClusterKeyBytes)))
	body := []byte(`{"kind":"put","epoch":3,"seq":12345,"key":"some-key","value":"some value of a typical size","leader":"n1","time":1}`)
	b.ReportAllocs()
	for b.Loop() {
		h := sg.Header(DomainBus, "kv.replication", body)
		if err := sg.Verify(DomainBus, "kv.replication", h, body); err != nil {
			b.Fatal(err)
		}
	}
}
