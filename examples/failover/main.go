// Command failover is a program outside zkv's module that uses its Go
// client the way any service would: it writes a run of keys, reads each
// back, and watches them, and it keeps going through a leader failover.
//
//	go run . -nats nats://127.0.0.1:4222 -n 200
//
// It prints "ready" once the watch is set up (so a test can kill the
// leader meanwhile), then one line per hundred writes, then a summary,
// and exits 1 if any write was lost, any read or watched update was wrong,
// or the watch missed or repeated an update.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/zkvstore/zkv/client"
)

func main() {
	url := flag.String("nats", envOr("ZKV_NATS", "nats://127.0.0.1:4222"), "NATS URL of the cluster")
	n := flag.Int("n", 200, "writes to make")
	pause := flag.Duration("pause", 10*time.Millisecond, "pause between writes")
	timeout := flag.Duration("timeout", 2*time.Minute, "give up after this long")
	flag.Parse()
	if err := run(*url, *n, *pause, *timeout); err != nil {
		log.Fatal(err)
	}
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func run(url string, n int, pause, timeout time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	kv, err := client.Connect(url)
	if err != nil {
		return err
	}
	defer kv.Close()

	prefix := fmt.Sprintf("failover-%d/", time.Now().UnixNano())
	first, err := kv.Put(ctx, prefix+"start", "0", client.WithAcks("majority"))
	if err != nil {
		return fmt.Errorf("first write: %w", err)
	}
	w, err := kv.Watch(ctx, prefix, client.FromRevision(first.Revision))
	if err != nil {
		return fmt.Errorf("watch: %w", err)
	}
	defer w.Stop()
	fmt.Println("ready")

	written := map[uint64]string{first.Revision: prefix + "start"}
	epochs := map[uint64]bool{first.Epoch: true}
	var last uint64
	for i := 1; i <= n; i++ {
		key := fmt.Sprintf("%sk%04d", prefix, i)
		// Majority acks: a write acknowledged before a crash of the
		// leader survives it. Put retries through the election.
		r, err := kv.Put(ctx, key, fmt.Sprint(i), client.WithAcks("majority"))
		if err != nil {
			return fmt.Errorf("write %s: %w", key, err)
		}
		written[r.Revision], last = key, r.Revision
		epochs[r.Epoch] = true
		// Read it back from any server once its copy holds it.
		e, err := kv.Get(ctx, key, client.WithMinRevision(r.Revision, 5*time.Second))
		if err != nil && !errors.Is(err, client.ErrNotFound) {
			return fmt.Errorf("read %s: %w", key, err)
		}
		if e.Value != fmt.Sprint(i) {
			return fmt.Errorf("read %s from %s: %q, want %d", key, e.Node, e.Value, i)
		}
		if i%100 == 0 {
			fmt.Printf("wrote %d (revision %d, epoch %d)\n", i, r.Revision, r.Epoch)
		}
		time.Sleep(pause)
	}

	// The watch delivers every write once, in revision order.
	seen := 0
	var prev uint64
	for seen < len(written) {
		select {
		case u, ok := <-w.Updates():
			if !ok {
				return fmt.Errorf("watch ended after %d of %d updates: %v", seen, len(written), w.Err())
			}
			if u.Seq <= prev {
				return fmt.Errorf("watch: revision %d after %d", u.Seq, prev)
			}
			prev = u.Seq
			if key, ok := written[u.Seq]; !ok || key != u.Key {
				return fmt.Errorf("watch: revision %d is %s %q, not a write of this run", u.Seq, u.Kind, u.Key)
			}
			seen++
		case <-ctx.Done():
			return fmt.Errorf("watch saw %d of %d writes (last revision %d)", seen, len(written), last)
		}
	}
	fmt.Printf("ok: %d writes read back and watched in order across %d epochs\n", len(written), len(epochs))
	return nil
}
