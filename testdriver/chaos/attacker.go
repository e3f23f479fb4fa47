package chaos

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/internal/harness"
)

// attacker is a hostile client on a plain NATS connection, without the
// cluster key: it learns the cluster id and the stream position from what
// servers publish, and floods the server subjects with forged replication
// updates (puts and deletes of real keys) and epoch markers, forged acks of
// every put and delete (unsigned, and with a signature of its own key
// naming the real cluster), real signed messages (deletes among them)
// replayed onto the same and other subjects, garbage, and writes with
// malformed conditions (if_revision negative, past 2^53, a string, on a
// create; a delete with a value) on the write subjects, which every server
// must refuse.
type attacker struct {
	nc      *nats.Conn
	subj    bus.Subjects
	servers []string
	stop    chan struct{}
	wg      sync.WaitGroup
	once    sync.Once

	mu      sync.Mutex
	fake    *bus.Signer // its own key, naming the victim's cluster id
	last    bus.Update  // the newest real put or marker seen
	realUp  *nats.Msg   // a real signed replication message
	realAck *nats.Msg   // a real signed ack
	realDel *nats.Msg   // a real signed delete
	sent    int
	n       int // forgeries made, for unique forged values
	// inbox gets the answers to the malformed writes; answers counts them
	// by code ("ok" for an accepted one), accepted keeps the bodies
	// accepted.
	inbox    string
	answers  map[string]int
	accepted []string
	pending  map[string]string // reply subject -> body, for accepted
}

// startAttack connects the attacker, waits until it has seen a signed
// message of the cluster (at most 10 s), and starts publishing about rate
// forgeries a second besides the forged acks of every put.
func (e *runEnv) startAttack(ctx context.Context, rate int) (*attacker, error) {
	nc, err := nats.Connect(e.cl.NATSURL(), nats.Name("chaos attacker"))
	if err != nil {
		return nil, fmt.Errorf("attacker: %w", err)
	}
	a := &attacker{nc: nc, subj: bus.Subjects{Prefix: e.prefix}, servers: nodeIDs, stop: make(chan struct{}),
		inbox: nats.NewInbox(), answers: map[string]int{}, pending: map[string]string{}}
	if _, err = nc.Subscribe(a.subj.Replication(), a.onUpdate); err == nil {
		_, err = nc.Subscribe(a.subj.Ack(), a.onAck)
	}
	if err == nil {
		_, err = nc.Subscribe(a.inbox+".*", a.onWriteAnswer)
	}
	if err == nil {
		err = nc.Flush()
	}
	if err == nil {
		wctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err = harness.WaitFor(wctx, 20*time.Millisecond, func() error {
			a.mu.Lock()
			defer a.mu.Unlock()
			if a.fake == nil || a.realUp == nil {
				return errors.New("no signed replication message seen yet")
			}
			return nil
		})
		cancel()
	}
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("attacker: %w", err)
	}
	a.wg.Go(func() { a.flood(ctx, rate) })
	return a, nil
}

// onUpdate learns from a replication message and forges an ack of every
// put and delete that asks for acks, in the name of every server.
func (a *attacker) onUpdate(m *nats.Msg) {
	if m.Header.Get(bus.HeaderCluster) == "" {
		return // its own unsigned forgeries come back too
	}
	ups, err := bus.DecodeReplication(m.Data)
	if err != nil {
		return
	}
	for _, u := range ups {
		a.onOneUpdate(m, u)
	}
}

// onOneUpdate keeps u (of message m) for replays and forges acks for it.
func (a *attacker) onOneUpdate(m *nats.Msg, u bus.Update) {
	if strings.HasPrefix(u.Value, ForgedPrefix) || strings.HasPrefix(u.RequestID, ForgedPrefix) {
		return // and those signed with its own key
	}
	write := u.Kind == bus.KindPut || u.Kind == bus.KindDelete
	a.mu.Lock()
	if a.fake == nil {
		a.fake, _ = bus.NewSigner(m.Header.Get(bus.HeaderCluster), []byte(strings.Repeat("x", bus.MinClusterKeyBytes)))
	}
	if a.realUp == nil || u.Kind == bus.KindPut {
		a.realUp = m
	}
	if u.Kind == bus.KindDelete {
		a.realDel = m
	}
	if u.Kind != bus.KindHeartbeat {
		a.last = u
	}
	a.mu.Unlock()
	if write && u.Ack {
		for _, id := range a.servers {
			a.forge(a.subj.Ack(), bus.Encode(bus.Ack{Node: id, Epoch: u.Epoch, Seq: u.Seq}))
			// and a run of acks, as a replica confirms a batch
			a.forge(a.subj.Ack(), bus.Encode(bus.Ack{Node: id, Epoch: u.Epoch, From: u.Seq, Seq: u.Seq + 3}))
		}
	}
}

// onAck keeps a real signed ack for replays.
func (a *attacker) onAck(m *nats.Msg) {
	if m.Header.Get(bus.HeaderMAC) == "" {
		return
	}
	a.mu.Lock()
	a.realAck = m
	a.mu.Unlock()
}

// forge publishes body on subject twice: unsigned, and signed with the
// attacker's own key under the real cluster id.
func (a *attacker) forge(subject string, body []byte) {
	a.publish(&nats.Msg{Subject: subject, Data: body})
	a.mu.Lock()
	fake := a.fake
	a.mu.Unlock()
	a.publish(fake.Msg(subject, body))
}

func (a *attacker) publish(m *nats.Msg) {
	if a.nc.PublishMsg(m) == nil {
		a.mu.Lock()
		a.sent++
		a.mu.Unlock()
	}
}

// flood publishes one round of forgeries every 1/rate s until Stop or
// until ctx ends.
func (a *attacker) flood(ctx context.Context, rate int) {
	t := time.NewTicker(time.Second / time.Duration(max(rate, 1)))
	defer t.Stop()
	for round := 0; ; round++ {
		select {
		case <-a.stop:
			return
		case <-ctx.Done():
			return
		case <-t.C:
		}
		a.round(round)
	}
}

// onWriteAnswer counts a server's answer to a malformed write.
func (a *attacker) onWriteAnswer(m *nats.Msg) {
	var reply bus.WriteReply
	code := "ok"
	if err := bus.DecodeReply(m.Data, &reply); err != nil {
		code = string(bus.AsError(err).Code)
	} else if !reply.OK {
		code = "not_ok"
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	a.answers[code]++
	if code == "ok" {
		a.accepted = append(a.accepted, a.pending[m.Subject])
	}
	delete(a.pending, m.Subject)
}

// malformedWrites are write requests every server must refuse with
// bad_request; %[1]q is a real key, %[2]q a forged value.
var malformedWrites = []string{
	`{"key":%[1]q,"value":%[2]q,"if_revision":-1}`,
	`{"key":%[1]q,"value":%[2]q,"if_revision":9007199254740993}`,
	`{"key":%[1]q,"value":%[2]q,"if_revision":18446744073709551616}`,
	`{"key":%[1]q,"value":%[2]q,"if_revision":1e300}`,
	`{"key":%[1]q,"value":%[2]q,"if_revision":"7"}`,
	`{"key":%[1]q,"value":%[2]q,"if_revision":1.5}`,
	`{"key":%[1]q,"value":%[2]q,"if_revision":null,"if_revision":-3}`,
	`{"op":"create","key":%[1]q,"value":%[2]q,"if_revision":0}`,
	`{"op":"create","key":%[1]q,"value":%[2]q,"if_revision":"0"}`,
	`{"op":"delete","key":%[1]q,"if_revision":-1}`,
	`{"op":"delete","key":%[1]q,"if_revision":"0"}`,
	`{"op":"delete","key":%[1]q,"if_revision":9007199254740993}`,
	`{"op":"delete","key":%[1]q,"value":%[2]q}`,
	`{"op":"DELETE","key":%[1]q}`,
	`{"op":"cas","key":%[1]q,"value":%[2]q,"if_revision":1}`,
}

// malformedWrite sends the malformed write number n to the leader
// subject or to one server's write subject, asking for an answer.
func (a *attacker) malformedWrite(n int, key, value string) {
	body := fmt.Sprintf(malformedWrites[n%len(malformedWrites)], key, value)
	subject := a.subj.Write()
	if id := (n / len(malformedWrites)) % (len(a.servers) + 1); id < len(a.servers) {
		subject = a.subj.NodeWrite(a.servers[id])
	}
	reply := fmt.Sprintf("%s.%d", a.inbox, n)
	a.mu.Lock()
	a.pending[reply] = body
	if len(a.pending) > 1000 { // answers that never came
		clear(a.pending)
	}
	a.mu.Unlock()
	a.publish(&nats.Msg{Subject: subject, Reply: reply, Data: []byte(body)})
}

// WriteAnswers returns the answers to the malformed writes by code ("ok":
// accepted) and the bodies that were accepted.
func (a *attacker) WriteAnswers() (map[string]int, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return maps.Clone(a.answers), slices.Clone(a.accepted)
}

// round sends the forgery number i of the cycle.
func (a *attacker) round(i int) {
	a.mu.Lock()
	last, realUp, realAck, realDel := a.last, a.realUp, a.realAck, a.realDel
	a.n++
	n := a.n
	value := fmt.Sprintf("%s%d", ForgedPrefix, a.n)
	a.mu.Unlock()
	if realDel == nil {
		realDel = realUp
	}
	rid := fmt.Sprintf("%s%d", ForgedPrefix, n)
	key := last.Key
	if key == "" {
		key = "k00"
	}
	repl := a.subj.Replication()
	switch i % 14 {
	case 0: // the next revision of the current epoch, asking for acks
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindPut, Epoch: last.Epoch, Seq: last.Seq + 1, Key: key, Value: value, Leader: last.Leader, Ack: true}))
	case 1: // far ahead
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindPut, Epoch: last.Epoch, Seq: last.Seq + 1000, Key: key, Value: value, Leader: last.Leader}))
	case 2: // a huge epoch
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindPut, Epoch: 1 << 40, Seq: 1, Key: key, Value: value, Leader: "ghost"}))
	case 3: // a marker of a huge epoch at the largest sequence number
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindEpoch, Epoch: 1 << 40, Seq: bus.MaxSeq, Leader: "ghost"}))
	case 4: // a marker of the current epoch at the largest sequence number
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindEpoch, Epoch: last.Epoch, Seq: bus.MaxSeq, Leader: last.Leader}))
	case 5: // a heartbeat of a huge epoch
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindHeartbeat, Epoch: 1 << 40, Seq: bus.MaxSeq, Leader: "ghost"}))
	case 6: // a real signed update replayed onto the ack subject
		a.publish(&nats.Msg{Subject: a.subj.Ack(), Data: realUp.Data, Header: realUp.Header})
	case 7: // a real signed ack replayed onto the replication subject
		if realAck != nil {
			a.publish(&nats.Msg{Subject: repl, Data: realAck.Data, Header: realAck.Header})
		}
	case 8: // a real header on a forged body
		a.publish(&nats.Msg{Subject: repl, Header: realUp.Header,
			Data: bus.Encode(bus.Update{Kind: bus.KindPut, Epoch: last.Epoch, Seq: last.Seq + 1, Key: key, Value: value, Leader: last.Leader})})
	case 9: // garbage
		junk := make([]byte, 64)
		_, _ = rand.Read(junk)
		a.forge(repl, junk)
		a.forge(a.subj.Ack(), []byte(`{"node":`))
	case 10: // a delete of a real key at the next revision, asking for acks
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindDelete, Epoch: last.Epoch, Seq: last.Seq + 1, Key: key, Leader: last.Leader, Ack: true, RequestID: rid}))
	case 11: // a delete far ahead, and one of a huge epoch
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindDelete, Epoch: last.Epoch, Seq: last.Seq + 1000, Key: key, Leader: last.Leader, RequestID: rid}))
		a.forge(repl, bus.Encode(bus.Update{Kind: bus.KindDelete, Epoch: 1 << 40, Seq: 1, Key: key, Leader: "ghost", RequestID: rid}))
	case 12: // a real signed delete replayed, on its subject and on the ack
		// subject, and a real header on a forged delete
		a.publish(&nats.Msg{Subject: repl, Data: realDel.Data, Header: realDel.Header})
		a.publish(&nats.Msg{Subject: a.subj.Ack(), Data: realDel.Data, Header: realDel.Header})
		a.publish(&nats.Msg{Subject: repl, Header: realDel.Header,
			Data: bus.Encode(bus.Update{Kind: bus.KindDelete, Epoch: last.Epoch, Seq: last.Seq + 1, Key: key, Leader: last.Leader, RequestID: rid})})
	case 13: // a write with a malformed condition
		a.malformedWrite(n, key, value)
	}
}

// Sent returns how many messages the attacker published.
func (a *attacker) Sent() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.sent
}

// Stop ends the flood and closes the connection. It is idempotent.
func (a *attacker) Stop() {
	a.once.Do(func() {
		close(a.stop)
		a.wg.Wait()
		a.nc.Close()
	})
}
