package client_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"time"

	"github.com/zkvstore/zkv/client"
)

// natsURL is the NATS server of the cluster the examples run against (the
// tests start one; a program would use its own).
var natsURL = "nats://127.0.0.1:4222"

func Example() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	w, err := kv.Put(ctx, "example/greeting", "hello")
	if err != nil {
		log.Fatal(err)
	}
	// Read your own write from any server: wait until its copy has it.
	e, err := kv.Get(ctx, "example/greeting", client.WithMinRevision(w.Revision, time.Second))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Value, e.Revision == w.Revision)
	// Output: hello true
}

func ExampleClient_Get() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	if _, err := kv.Put(ctx, "example/get", "1"); err != nil {
		log.Fatal(err)
	}
	// The leader's answer reflects every acknowledged write.
	e, err := kv.Get(ctx, "example/get", client.WithLeaderRead())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(e.Value, e.Role)

	_, err = kv.Get(ctx, "example/missing", client.WithLeaderRead())
	fmt.Println(errors.Is(err, client.ErrNotFound))
	// Output:
	// 1 leader
	// true
}

func ExampleClient_Update() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	first, err := kv.Create(ctx, "example/counter", "1")
	if err != nil {
		log.Fatal(err)
	}
	_, err = kv.Create(ctx, "example/counter", "1")
	fmt.Println("create again:", errors.Is(err, client.ErrExists))

	// A compare-and-set: only if nobody wrote since first.
	if _, err := kv.Update(ctx, "example/counter", "2", first.Revision); err != nil {
		log.Fatal(err)
	}
	_, err = kv.Update(ctx, "example/counter", "3", first.Revision)
	cur, _ := client.CurrentRevision(err)
	fmt.Println("stale update:", errors.Is(err, client.ErrConflict), cur > first.Revision)
	// Output:
	// create again: true
	// stale update: true true
}

func ExampleClient_Delete() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	for _, k := range []string{"example/del/a", "example/del/b", "example/del/c"} {
		if _, err := kv.Put(ctx, k, "x"); err != nil {
			log.Fatal(err)
		}
	}
	d, err := kv.Delete(ctx, "example/del/a")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted:", d.Deleted)
	p, err := kv.DeletePrefix(ctx, "example/del/")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("deleted by prefix:", p.Count)
	// Output:
	// deleted: true
	// deleted by prefix: 2
}

func ExampleClient_History() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	var last uint64
	for _, v := range []string{"red", "green", "blue"} {
		w, err := kv.Put(ctx, "example/color", v)
		if err != nil {
			log.Fatal(err)
		}
		last = w.Revision
	}
	node := ""
	if st, err := kv.Statuses(ctx); err == nil {
		for _, s := range st {
			if s.Role == "leader" {
				node = s.Node
			}
		}
	}
	h, err := kv.History(ctx, "example/color", client.FromNode(node))
	if err != nil {
		log.Fatal(err)
	}
	for _, v := range h.Versions {
		fmt.Println(v.Value)
	}
	// The key as it was one write ago.
	e, err := kv.Get(ctx, "example/color", client.FromNode(node), client.WithRevision(last-1))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("before:", e.Value)
	// Output:
	// red
	// green
	// blue
	// before: green
}

func ExampleClient_ListAll() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	var last uint64
	for _, k := range []string{"example/ls/1", "example/ls/2", "example/ls/3"} {
		w, err := kv.Put(ctx, k, "v")
		if err != nil {
			log.Fatal(err)
		}
		last = w.Revision
	}
	// Make sure the copy that answers holds the writes.
	e, _ := kv.Read(ctx, "example/ls/3", client.WithMinRevision(last, time.Second))
	for entry, err := range kv.ListAll(ctx, "example/ls/", client.FromNode(e.Node), client.WithLimit(2)) {
		if err != nil {
			log.Fatal(err)
		}
		fmt.Println(entry.Key)
	}
	// Output:
	// example/ls/1
	// example/ls/2
	// example/ls/3
}

func ExampleClient_Watch() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	first, err := kv.Put(ctx, "example/watch/a", "1")
	if err != nil {
		log.Fatal(err)
	}
	// Replay from the first write, then follow new ones.
	w, err := kv.Watch(ctx, "example/watch/", client.FromRevision(first.Revision))
	if err != nil {
		log.Fatal(err)
	}
	defer w.Stop()
	if _, err := kv.Put(ctx, "example/watch/b", "2"); err != nil {
		log.Fatal(err)
	}
	if _, err := kv.Delete(ctx, "example/watch/a"); err != nil {
		log.Fatal(err)
	}
	for range 3 {
		u := <-w.Updates()
		fmt.Println(u.Kind, u.Key, u.Value)
	}
	// Output:
	// put example/watch/a 1
	// put example/watch/b 2
	// delete example/watch/a
}

func ExampleWithTTL() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	if _, err := kv.Put(ctx, "example/session", "token", client.WithTTL(200*time.Millisecond)); err != nil {
		log.Fatal(err)
	}
	for {
		_, err := kv.Get(ctx, "example/session", client.WithLeaderRead())
		if errors.Is(err, client.ErrNotFound) {
			fmt.Println("expired")
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	// Output: expired
}

func ExampleClient_Statuses() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	kv, err := client.Connect(natsURL)
	if err != nil {
		log.Fatal(err)
	}
	defer kv.Close()

	st, err := kv.Statuses(ctx)
	if err != nil {
		log.Fatal(err)
	}
	leaders := 0
	for _, s := range st {
		if s.Role == "leader" {
			leaders++
		}
	}
	fmt.Println(len(st), "servers,", leaders, "leader")
	// Output: 3 servers, 1 leader
}
