package main

import (
	"fmt"
	"io"
	"strconv"
	"text/tabwriter"
	"unicode"

	"zkv/bus"
)

// formatPut is the line put prints: "OK a revision=12 epoch=3 leader=n1",
// followed by " acks=all confirmed=3/3" when the write waited for replicas
// and " (duplicate)" when it was a retry of an applied request.
func formatPut(r bus.WriteReply) string {
	line := fmt.Sprintf("OK %s revision=%d epoch=%d leader=%s", quote(r.Key), r.Revision, r.Epoch, orDash(r.Leader))
	if r.Acks != "" {
		line += fmt.Sprintf(" acks=%s confirmed=%d/%d", r.Acks, r.Confirmed, r.Members)
	}
	switch {
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

// formatUpdate is the line watch prints for u: "epoch=3 seq=12 a=1", or
// "epoch=4 seq=12 leader=n2 (new epoch)" for an epoch marker.
func formatUpdate(u bus.Update) string {
	if u.Kind == bus.KindEpoch {
		return fmt.Sprintf("epoch=%d seq=%d leader=%s (new epoch)", u.Epoch, u.Seq, orDash(u.Leader))
	}
	if u.Kind == bus.KindDelete {
		return fmt.Sprintf("epoch=%d seq=%d %s (deleted)", u.Epoch, u.Seq, quote(u.Key))
	}
	return fmt.Sprintf("epoch=%d seq=%d %s=%s", u.Epoch, u.Seq, quote(u.Key), quote(u.Value))
}

// notFound is the note get prints on stderr for a missing key.
func notFound(r bus.ReadReply) string {
	return fmt.Sprintf("kvctl: key %s not found on %s (%s, epoch %d)", strconv.Quote(r.Key), orDash(r.Node), orDash(r.Role), r.Epoch)
}

// writeStatusTable writes statuses as a table with a header line.
func writeStatusTable(w io.Writer, statuses []bus.Status) error {
	tw := tabwriter.NewWriter(w, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "NODE\tROLE\tEPOCH\tLEADER\tAPPLIED\tKEYS\tSTALE\tBEHIND\tREADY\tZOOKEEPER\tNATS")
	for _, s := range statuses {
		if s.Role == bus.RoleUnreachable {
			fmt.Fprintf(tw, "%s\t%s\t-\t-\t-\t-\t-\t-\t-\t-\t-\n", s.Node, s.Role)
			continue
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\n",
			s.Node, orDash(s.Role), s.Epoch, orDash(s.Leader), s.AppliedSeq, s.Keys,
			yesNo(s.Stale), behind(s), yesNo(s.Ready), orDash(s.ZooKeeper), orDash(s.NATS))
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
		if s.Role == bus.RoleUnreachable {
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

// unreachable lists the nodes that did not answer.
func unreachable(statuses []bus.Status) []string {
	var ids []string
	for _, s := range statuses {
		if s.Role == bus.RoleUnreachable {
			ids = append(ids, s.Node)
		}
	}
	return ids
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
