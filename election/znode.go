package election

import (
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
)

// Prefix is the name prefix of every election znode: server_NNNNNNNNNN.
const Prefix = "server_"

// ErrNotElectionNode means a child name is not an election znode.
var ErrNotElectionNode = errors.New("not an election znode")

// ParseSeq returns the sequence number of an election znode name such as
// "server_0000000042", a protected name such as
// "_c_3f1c...-server_0000000042", or one whose counter went past ten digits
// or overflowed to a negative number.
func ParseSeq(name string) (int64, error) {
	i := strings.LastIndex(name, Prefix)
	if i < 0 {
		return 0, fmt.Errorf("%w: %q", ErrNotElectionNode, name)
	}
	n, err := strconv.ParseInt(name[i+len(Prefix):], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%w: %q: %v", ErrNotElectionNode, name, err)
	}
	return n, nil
}

// EpochOf is the epoch of a leader whose znode has sequence number seq:
// seq+1, because ZooKeeper numbers children from 0 and epoch 0 means "no
// leader known". Epochs grow with every new leader, like the numbers.
func EpochOf(seq int64) uint64 { return uint64(seq) + 1 }

// Candidate is one election znode.
type Candidate struct {
	Name string // child name, e.g. server_0000000042
	Seq  int64  // parsed sequence number
}

// Sort parses names and returns the election znodes ordered by sequence
// number, smallest (the leader) first. Names that are not election znodes
// are left out.
func Sort(names []string) []Candidate {
	out := make([]Candidate, 0, len(names))
	for _, n := range names {
		seq, err := ParseSeq(n)
		if err != nil {
			continue
		}
		out = append(out, Candidate{Name: n, Seq: seq})
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Seq != out[j].Seq {
			return out[i].Seq < out[j].Seq
		}
		return out[i].Name < out[j].Name
	})
	return out
}

// Predecessor returns the candidate just before name in sorted (as returned
// by Sort). ok is false when name leads (it is first) or is not in sorted;
// found says whether name is in sorted at all.
func Predecessor(sorted []Candidate, name string) (pred Candidate, ok, found bool) {
	for i, c := range sorted {
		if c.Name == name {
			if i == 0 {
				return Candidate{}, false, true
			}
			return sorted[i-1], true, true
		}
	}
	return Candidate{}, false, false
}

// NodeData is the JSON data of an election znode: who registered it.
type NodeData struct {
	ID    string `json:"id"`
	Addr  string `json:"addr,omitempty"`
	Token string `json:"token"`
}

// LeaderData is the JSON data of the leader znode.
type LeaderData struct {
	ID    string `json:"id"`
	Addr  string `json:"addr,omitempty"`
	Epoch uint64 `json:"epoch"`
	// Revision is the leader's store revision when it took over.
	Revision uint64 `json:"revision"`
	Znode    string `json:"znode"`
	// Subject is the write subject only this leader's epoch answers
	// (bus.Subjects.EpochWrite), for servers and clients that forward to
	// the leader they know rather than to whoever answers the shared one.
	Subject string `json:"subject,omitempty"`
}

func decodeLeader(b []byte) (LeaderData, error) {
	var d LeaderData
	if err := json.Unmarshal(b, &d); err != nil {
		return d, fmt.Errorf("decode leader znode %q: %w", b, err)
	}
	return d, nil
}
