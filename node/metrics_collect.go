package node

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zkvstore/zkv/bus"
)

// statusCollector reports, at scrape time, what the server's status says:
// its role and position in the stream, its copy, its links to ZooKeeper
// and NATS, and the counters the server keeps anyway. Nothing on a hot
// path is touched for them.
type statusCollector struct {
	s *Server
}

func desc(name, help string, labels ...string) *prometheus.Desc {
	return prometheus.NewDesc("zkv_"+name, help, labels, nil)
}

// The scrape-time metrics.
var (
	descInfo        = desc("node_info", "The node's ID and protocol version (always 1).", "node", "version")
	descRole        = desc("role", "1 for the server's current role, 0 for the others.", "role")
	descEpoch       = desc("epoch", "The epoch this server leads or follows.")
	descRevision    = desc("revision", "The highest revision this copy applied.")
	descKeys        = desc("keys", "Keys in this copy.")
	descBytes       = desc("store_bytes", "Bytes of the keys and values in this copy (not their history).")
	descStale       = desc("stale", "1 while this copy knows it missed updates or holds less than the cluster record.")
	descMissed      = desc("missed_revisions", "Updates this copy knows it missed (0: it saw every update since it started following).")
	descBehind      = desc("behind_record_revisions", "Revisions this copy holds less than the cluster record's acknowledged revision.")
	descLost        = desc("lost_revisions", "Revisions this server started its epoch past without holding them.")
	descRecord      = desc("record_revision", "The cluster record's lower bound on acknowledged revisions, as last read.")
	descLastApply   = desc("last_apply_timestamp_seconds", "When this copy last applied an update from the replication stream (Unix time; 0: never).")
	descDroppedOld  = desc("dropped_old_epoch_total", "Replication messages dropped because they came from an older epoch (a deposed leader).")
	descDropped     = desc("dropped_messages_total", "Messages dropped as not this cluster's: unsigned, forged, of another cluster (foreign), or not decodable (malformed).", "reason")
	descDiverged    = desc("diverged_updates_total", "Updates claiming a revision this copy holds with other content.")
	descPubMessages = desc("replication_messages_total", "Replication messages this server published as leader.")
	descPubUpdates  = desc("replication_updates_total", "Updates this server published on the replication stream as leader, epoch markers and heartbeats included.")
	descLease       = desc("lease_valid", "1 while this server leads under a valid ZooKeeper lease and may acknowledge writes.")
	descZK          = desc("zookeeper_session_state", "1 for the ZooKeeper session's current state, 0 for the others.", "state")
	descConnected   = desc("connected", "1 while this server is connected to ZooKeeper (a usable session) or to NATS.", "to")
	descCutOff      = desc("cut_off_seconds", "How long this server has been unable to reach ZooKeeper or NATS (0 while connected).", "from")
	descReady       = desc("ready", "1 while /readyz answers 200.")
	descCatching    = desc("catchup_running", "1 while a catch-up runs.")
	descBudgetUse   = desc("budget_in_use", "Slots of a request budget taken now.", "budget")
	descBudgetLimit = desc("budget_limit", "Slots of a request budget.", "budget")
	descBudgetRej   = desc("budget_rejected_total", "Requests refused because their budget was full.", "budget")
	descHistoryKeys = desc("history_keys", "Keys with versions kept beyond the current one.")
	descExpiring    = desc("expiring_keys", "Keys with a time to live.")
)

var allDescs = []*prometheus.Desc{descInfo, descRole, descEpoch, descRevision, descKeys, descBytes, descStale, descMissed, descBehind,
	descLost, descRecord, descLastApply, descDroppedOld, descDropped, descDiverged, descPubMessages, descPubUpdates,
	descLease, descZK, descConnected, descCutOff, descReady, descCatching, descBudgetUse, descBudgetLimit, descBudgetRej,
	descHistoryKeys, descExpiring}

// roles and sessionStates are the values the state-set metrics report.
var (
	roles         = []string{bus.RoleLeader, bus.RoleCandidate, bus.RoleFollower, bus.RoleDisconnected}
	sessionStates = []string{"connected", "connecting", "disconnected", "expired"}
)

// Describe sends every metric's description.
func (c statusCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range allDescs {
		ch <- d
	}
}

// Collect reads the server's status and sends its metrics.
func (c statusCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.s
	st := s.Status()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descInfo, 1, st.Node, Version)
	for _, r := range roles {
		gauge(descRole, b2f(st.Role == r), r)
	}
	gauge(descEpoch, float64(st.Epoch))
	gauge(descRevision, float64(st.AppliedSeq))
	gauge(descKeys, float64(st.Keys))
	gauge(descBytes, float64(s.store.Bytes()))
	gauge(descStale, b2f(st.Stale))
	gauge(descMissed, float64(st.Gaps))
	gauge(descBehind, float64(st.BehindRecord))
	gauge(descLost, float64(st.LostRevisions))
	gauge(descRecord, float64(st.RecordRevision))
	gauge(descLastApply, float64(st.LastApplied)/1e9)
	counter(descDroppedOld, st.DroppedOldEpoch)
	counter(descDropped, st.RejectedUnsigned, "unsigned")
	counter(descDropped, st.RejectedForged, "forged")
	counter(descDropped, st.ForeignMessages, "foreign")
	counter(descDropped, s.malformed.Load(), "malformed")
	counter(descDiverged, st.Diverged)
	counter(descPubMessages, st.PublishedMessages)
	counter(descPubUpdates, st.PublishedUpdates)
	gauge(descLease, b2f(st.Role == bus.RoleLeader && s.lease.LeaseValid()))
	for _, z := range sessionStates {
		gauge(descZK, b2f(st.ZooKeeper == z), z)
	}
	now := time.Now()
	for _, l := range s.links.all() {
		gauge(descConnected, b2f(l.up()), l.name)
		gauge(descCutOff, l.cutOffFor(now).Seconds(), l.name)
	}
	gauge(descReady, b2f(st.Ready))
	gauge(descCatching, b2f(st.CatchingUp))
	for _, b := range []struct {
		name string
		st   bus.BudgetStatus
	}{
		{"waiting_reads", st.Budgets.WaitingReads}, {"forwarded_writes", st.Budgets.ForwardedWrites},
		{"leader_reads", st.Budgets.LeaderReads}, {"ack_waits", st.Budgets.AckWaits},
		{"snapshot_pages", st.Budgets.SnapshotPages}, {"lists", st.Budgets.Lists}, {"watches", st.Budgets.Watches},
	} {
		gauge(descBudgetUse, float64(b.st.InUse), b.name)
		gauge(descBudgetLimit, float64(b.st.Limit), b.name)
		counter(descBudgetRej, b.st.Rejected, b.name)
	}
	gauge(descHistoryKeys, float64(st.HistoryKeys))
	gauge(descExpiring, float64(st.ExpiringKeys))
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
