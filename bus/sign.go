package bus

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"sync"

	"github.com/nats-io/nats.go"
)

// Headers that every message only servers may send carries: the cluster
// id of the sender and an HMAC-SHA256 over the domain, the cluster id, the
// message's subject and its body, keyed with the cluster key. See
// docs/protocol.md.
const (
	HeaderCluster = "Zkv-Cluster"
	HeaderMAC     = "Zkv-Mac"
)

// Domain says what a signature is for, so that one kind of signed message
// can never pass for another: a server answers requests on any reply
// subject a requester names, and that answer must not be taken for a
// message of the bus.
type Domain string

// The signature domains.
const (
	// DomainBus signs what servers publish for each other: updates,
	// markers, heartbeats and acks.
	DomainBus Domain = "bus"
	// DomainReply signs a server's reply to a request.
	DomainReply Domain = "reply"
)

// MinClusterKeyBytes is the shortest cluster key accepted.
const MinClusterKeyBytes = 32

// Errors of Verify. Callers branch on them with errors.Is.
var (
	// ErrUnsigned means the message carries no cluster headers.
	ErrUnsigned = errors.New("message is not signed")
	// ErrForeignCluster means the message names another cluster id: a
	// second cluster shares these subjects (or someone claims so).
	ErrForeignCluster = errors.New("message names another cluster")
	// ErrBadSignature means the message names this cluster but its MAC
	// does not verify: it was forged, altered, or sent to another subject.
	ErrBadSignature = errors.New("message signature does not verify")
)

// ForeignClusterError is a message from another cluster; it matches
// ErrForeignCluster with errors.Is.
type ForeignClusterError struct{ Cluster string }

func (e *ForeignClusterError) Error() string {
	return fmt.Sprintf("message names cluster %q, not this one", e.Cluster)
}

// Is makes errors.Is(err, ErrForeignCluster) true.
func (e *ForeignClusterError) Is(target error) bool { return target == ErrForeignCluster }

// Signer signs and verifies the messages of one cluster. It is safe for
// concurrent use.
type Signer struct {
	cluster string
	pool    sync.Pool // of hash.Hash keyed with the cluster key
}

// NewSigner returns a Signer for cluster id cluster with key, which must
// hold at least MinClusterKeyBytes random bytes.
func NewSigner(cluster string, key []byte) (*Signer, error) {
	if cluster == "" {
		return nil, errors.New("signer: empty cluster id")
	}
	if len(key) < MinClusterKeyBytes {
		return nil, fmt.Errorf("signer: cluster key is %d bytes, want at least %d", len(key), MinClusterKeyBytes)
	}
	k := append([]byte(nil), key...)
	s := &Signer{cluster: cluster}
	s.pool.New = func() any { return hmac.New(sha256.New, k) }
	return s, nil
}

// Cluster is the cluster id this Signer signs for.
func (s *Signer) Cluster() string { return s.cluster }

// mac computes the MAC of (domain, cluster, subject, data). Each part is
// length-prefixed, so no two different tuples hash alike.
func (s *Signer) mac(d Domain, cluster, subject string, data []byte) []byte {
	h := s.pool.Get().(hash.Hash)
	defer s.pool.Put(h)
	h.Reset()
	var n [8]byte
	for _, part := range [][]byte{[]byte(d), []byte(cluster), []byte(subject), data} {
		binary.BigEndian.PutUint64(n[:], uint64(len(part)))
		h.Write(n[:])
		h.Write(part)
	}
	return h.Sum(nil)
}

// Header returns the headers that sign data sent on subject for domain d.
func (s *Signer) Header(d Domain, subject string, data []byte) nats.Header {
	return nats.Header{
		HeaderCluster: []string{s.cluster},
		HeaderMAC:     []string{base64.RawStdEncoding.EncodeToString(s.mac(d, s.cluster, subject, data))},
	}
}

// Msg returns a message of data on subject, signed for the bus.
func (s *Signer) Msg(subject string, data []byte) *nats.Msg {
	return &nats.Msg{Subject: subject, Data: data, Header: s.Header(DomainBus, subject, data)}
}

// Verify checks that h signs data sent on subject for domain d by a
// member of this cluster. It returns ErrUnsigned, a *ForeignClusterError
// or ErrBadSignature otherwise.
func (s *Signer) Verify(d Domain, subject string, h nats.Header, data []byte) error {
	cluster, mac := h.Get(HeaderCluster), h.Get(HeaderMAC)
	if cluster == "" && mac == "" {
		return ErrUnsigned
	}
	if cluster != s.cluster {
		return &ForeignClusterError{Cluster: Truncate([]byte(cluster), 64)}
	}
	got, err := base64.RawStdEncoding.DecodeString(mac)
	if err != nil || !hmac.Equal(got, s.mac(d, cluster, subject, data)) {
		return ErrBadSignature
	}
	return nil
}

// VerifyMsg is Verify of a received message.
func (s *Signer) VerifyMsg(d Domain, m *nats.Msg) error {
	return s.Verify(d, m.Subject, m.Header, m.Data)
}
