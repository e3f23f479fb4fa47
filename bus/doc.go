// Package bus is zkv's wire contract over NATS: the subjects of a cluster,
// the JSON messages sent on them, the error codes, and a Client that speaks
// them.
//
// Writes go to Subjects.Write, which only the leader answers (through a
// queue group, so a takeover never yields two answers), or to a node's own
// Subjects.NodeWrite, which a follower forwards to the leader. Reads go to a
// node's Subjects.NodeRead and are answered from that node's copy, even if
// stale. The leader publishes every applied write as an Update on
// Subjects.Replication, which every node subscribes to without a queue
// group. docs/protocol.md describes the protocol for people.
//
// Every error travels as {"error":{"code":"...","message":"..."}} with a
// stable Code; a decoded *Error matches its sentinel with errors.Is.
package bus

// ProtocolVersion is the version of zkv's wire protocol and release: servers
// report it in their NATS micro services, clients in their requests. See
// docs/protocol.md, "Compatibility".
const ProtocolVersion = "0.3.0"
