package main

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"

	"github.com/zkvstore/zkv/bus"
	"github.com/zkvstore/zkv/client"
)

// formatPut is the line put prints: "OK a revision=12 epoch=3 leader=n1",
// followed by " acks=all confirmed=3/3" when the write waited for replicas,
// " expires=<time>" for a time to live, what a delete, purge, create or
// compact did, and " (duplicate)" when it was a retry of an applied
// request.
func formatPut(r bus.WriteReply) string {
	key := quote(r.Key) + " "
	if r.Op == bus.OpCompact {
		key = ""
	}
	line := fmt.Sprintf("OK %srevision=%d epoch=%d leader=%s", key, r.Revision, r.Epoch, orDash(r.Leader))
	if r.Acks != "" {
		line += fmt.Sprintf(" acks=%s confirmed=%d/%d", r.Acks, r.Confirmed, r.Members)
	}
	if r.Expires != 0 {
		line += " expires=" + formatMS(r.Expires)
	}
	switch {
	case r.Op == bus.OpCompact && r.Compacted > 0:
		line += fmt.Sprintf(" compacted below revision %d", r.Compacted)
	case r.Op == bus.OpCompact:
		line += " (nothing to compact)"
	case r.Count > 0:
		line += fmt.Sprintf(" deleted %d keys", r.Count)
	case r.Op == bus.OpPurge && r.Deleted:
		line += " purged"
	case r.Op == bus.OpPurge:
		line += " (not found: nothing purged)"
	case r.Deleted:
		line += " deleted"
	case r.Op == bus.OpDelete:
		line += " (not found: nothing deleted)"
	case r.Op == bus.OpCreate:
		line += " created"
	}
	if r.Duplicate {
		line += " (duplicate)"
	}
	return line
}

// formatUpdate is the line watch prints for u: "epoch=3 seq=12 a=1" (with
// " (expires <time>)" for a time to live), "epoch=3 seq=13 a (deleted)",
// "... a/ (deleted by prefix)", "... a (expired)", "... a (purged)", or
// "epoch=4 seq=12 leader=n2 (new epoch)" for an epoch marker.
func formatUpdate(u bus.Update) string {
	head := fmt.Sprintf("epoch=%d seq=%d", u.Epoch, u.Seq)
	switch {
	case u.Kind == bus.KindEpoch:
		return fmt.Sprintf("%s leader=%s (new epoch)", head, orDash(u.Leader))
	case u.Kind == bus.KindPurge:
		return fmt.Sprintf("%s %s (purged)", head, quote(u.Key))
	case u.Kind == bus.KindDelete && u.Prefix:
		return fmt.Sprintf("%s %s (deleted by prefix)", head, quote(u.Key))
	case u.Kind == bus.KindDelete && u.Expired:
		return fmt.Sprintf("%s %s (expired)", head, quote(u.Key))
	case u.Kind == bus.KindDelete:
		return fmt.Sprintf("%s %s (deleted)", head, quote(u.Key))
	case u.Kind == bus.KindCompact:
		return fmt.Sprintf("%s (history compacted below revision %d)", head, u.Compact)
	}
	line := fmt.Sprintf("%s %s=%s", head, quote(u.Key), quote(u.Value))
	if u.Expires != 0 {
		line += " (expires " + formatMS(u.Expires/int64(time.Millisecond)) + ")"
	}
	return line
}

// formatMS is a time in Unix milliseconds, in UTC to the millisecond.
func formatMS(ms int64) string {
	return time.UnixMilli(ms).UTC().Format("2006-01-02T15:04:05.000Z07:00")
}

// copyNote describes the copy that answered: "n2 (follower, epoch 3,
// stale: no)".
func copyNote(node, role string, epoch uint64, stale bool) string {
	return fmt.Sprintf("%s (%s, epoch %d, stale: %s)", orDash(node), orDash(role), epoch, yesNo(stale))
}

// answeredBy is the note get prints on stderr under a value: which node
// answered and whether its copy is stale, and the key's revision (and
// deadline).
func answeredBy(r bus.ReadReply) string {
	line := fmt.Sprintf("kvctl: %s answered: revision %d", copyNote(r.Node, r.Role, r.Epoch, r.Stale), r.Revision)
	if r.AtRevision != 0 {
		line += fmt.Sprintf(" as of revision %d", r.AtRevision)
	}
	if r.Expires != 0 {
		line += ", expires " + formatMS(r.Expires)
	}
	return line
}

// notFound is the note get prints on stderr for a missing key.
func notFound(r bus.ReadReply) string {
	line := fmt.Sprintf("kvctl: key %s not found on %s (%s, epoch %d)", strconv.Quote(r.Key), orDash(r.Node), orDash(r.Role), r.Epoch)
	if r.AtRevision != 0 {
		line += fmt.Sprintf(" at revision %d", r.AtRevision)
	}
	if r.Stale {
		line += "; its copy is stale (it missed updates): another node may have it"
	}
	return line
}

// writeHistoryTable writes a key's versions, oldest first, as a table:
// REVISION, VALUE (or "(deleted)"), EXPIRES.
func writeHistoryTable(w io.Writer, h bus.HistoryReply) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "REVISION\tVALUE\tEXPIRES")
	for _, v := range h.Versions {
		value, expires := quote(v.Value), "-"
		switch {
		case v.Deleted:
			value = "(deleted)"
		case strings.HasPrefix(value, "("):
			value = strconv.Quote(v.Value) // not to be read as a note
		}
		if v.Expires != 0 {
			expires = formatMS(v.Expires)
		}
		fmt.Fprintf(tw, "%d\t%s\t%s\n", v.Revision, value, expires)
	}
	return tw.Flush()
}

// behind says how far a copy is below the cluster record: revisions it
// lacks, or, for a leader, the acknowledged revisions it took over
// without ("lost N").
func behind(s bus.Status) string {
	if s.LostRevisions > 0 {
		return fmt.Sprintf("lost %d", s.LostRevisions)
	}
	return strconv.FormatUint(s.BehindRecord, 10)
}

// statusWarnings are the lines status prints on stderr under the table:
// what makes a node unready, and trust problems.
func statusWarnings(statuses []bus.Status) []string {
	var out []string
	for _, s := range statuses {
		if s.Role == client.RoleUnreachable {
			continue
		}
		if s.NotReady != "" {
			out = append(out, fmt.Sprintf("%s: not ready: %s", s.Node, s.NotReady))
		}
		if n := s.RejectedUnsigned + s.RejectedForged; n > 0 {
			out = append(out, fmt.Sprintf("%s: dropped %d unsigned or forged server messages", s.Node, n))
		}
		if s.LostRevisions > 0 {
			out = append(out, fmt.Sprintf("%s: took over without %d acknowledged revisions (the cluster record is at %d): those writes are lost", s.Node, s.LostRevisions, s.RecordRevision))
		}
	}
	return out
}

// quote returns s as is if it is one printable word without '=' or '"',
// else Go-quoted, so that a key=value line always reads back unambiguously.
func quote(s string) string {
	if s == "" {
		return `""`
	}
	for _, r := range s {
		if r == '=' || r == '"' || unicode.IsSpace(r) || !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return s
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}
