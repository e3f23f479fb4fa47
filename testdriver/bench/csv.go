package bench

import (
	"encoding/csv"
	"fmt"
	"io"
	"os"
	"strconv"
	"time"
)

// electionHeader is the header of the election CSV. Durations are in
// milliseconds with microsecond precision; -1 means not seen.
var electionHeader = []string{
	"zk", "stop", "session_timeout_ms", "run", "negotiated_ms", "tick_ms",
	"zk_rtt_ms", "zk_write_rtt_ms", "nats_rtt_ms", "old_leader", "new_leader", "old_epoch", "new_epoch",
	"znode_gone_ms", "leader_seen_ms", "first_write_ms", "error", "fast_failover",
}

func msField(d time.Duration) string {
	if d < 0 {
		return "-1"
	}
	return strconv.FormatFloat(float64(d)/float64(time.Millisecond), 'f', 3, 64)
}

func parseMsField(s string) (time.Duration, error) {
	f, err := strconv.ParseFloat(s, 64)
	if err != nil {
		return 0, err
	}
	if f < 0 {
		return -1, nil
	}
	return time.Duration(f * float64(time.Millisecond)), nil
}

func (r ElectionRun) record() []string {
	return []string{
		r.ZK, r.Stop, msField(r.SessionTimeout), strconv.Itoa(r.Run), msField(r.Negotiated), msField(r.TickTime),
		msField(r.ZKRTT), msField(r.ZKWriteRTT), msField(r.NATSRTT), r.OldLeader, r.NewLeader,
		strconv.FormatUint(r.OldEpoch, 10), strconv.FormatUint(r.NewEpoch, 10),
		msField(r.ZnodeGone), msField(r.LeaderSeen), msField(r.FirstWrite), r.Err, r.Fast,
	}
}

// WriteElectionCSV writes a header and the runs.
func WriteElectionCSV(w io.Writer, runs []ElectionRun) error {
	cw := csv.NewWriter(w)
	if err := cw.Write(electionHeader); err != nil {
		return err
	}
	for _, r := range runs {
		if err := cw.Write(r.record()); err != nil {
			return err
		}
	}
	cw.Flush()
	return cw.Error()
}

// ReadElectionCSV parses what WriteElectionCSV wrote.
func ReadElectionCSV(rd io.Reader) ([]ElectionRun, error) {
	cr := csv.NewReader(rd)
	rows, err := cr.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("election csv: %w", err)
	}
	if len(rows) == 0 {
		return nil, nil
	}
	// Files written before the fast_failover column ran without it.
	legacy := len(rows[0]) == len(electionHeader)-1
	if (len(rows[0]) != len(electionHeader) && !legacy) || rows[0][0] != electionHeader[0] {
		return nil, fmt.Errorf("election csv: unexpected header %v", rows[0])
	}
	var out []ElectionRun
	for i, row := range rows[1:] {
		var r ElectionRun
		var errs []error
		dur := func(s string) time.Duration {
			d, err := parseMsField(s)
			errs = append(errs, err)
			return d
		}
		num := func(s string) uint64 {
			n, err := strconv.ParseUint(s, 10, 64)
			errs = append(errs, err)
			return n
		}
		r.ZK, r.Stop = row[0], row[1]
		r.SessionTimeout = dur(row[2])
		r.Run = int(num(row[3]))
		r.Negotiated, r.TickTime = dur(row[4]), dur(row[5])
		r.ZKRTT, r.ZKWriteRTT, r.NATSRTT = dur(row[6]), dur(row[7]), dur(row[8])
		r.OldLeader, r.NewLeader = row[9], row[10]
		r.OldEpoch, r.NewEpoch = num(row[11]), num(row[12])
		r.ZnodeGone, r.LeaderSeen, r.FirstWrite = dur(row[13]), dur(row[14]), dur(row[15])
		r.Err, r.Fast = row[16], "off"
		if !legacy {
			r.Fast = row[17]
		}
		for _, err := range errs {
			if err != nil {
				return nil, fmt.Errorf("election csv line %d: %w", i+2, err)
			}
		}
		out = append(out, r)
	}
	return out, nil
}

// readElectionFile reads a CSV file; a missing file is no runs.
func readElectionFile(path string) ([]ElectionRun, error) {
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadElectionCSV(f)
}
