package harness

import (
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"testing"
	"time"
)

// envFakeKVServer makes the test binary act as a stand-in for kvserver, so
// that the Node code can be tested before and independently of
// cmd/kvserver.
const envFakeKVServer = "ZKV_HARNESS_FAKE_KVSERVER"

func TestMain(m *testing.M) {
	if os.Getenv(envFakeKVServer) == "1" {
		os.Exit(fakeKVServer(os.Args[1:]))
	}
	os.Exit(m.Run())
}

// fakeKVServer accepts kvserver's flags, serves /healthz and /readyz
// (ready once the ZooKeeper and NATS addresses accept TCP connections), and
// exits with --exit-code on SIGTERM or SIGINT. --fail makes it exit at once
// with status 3 after logging the reason.
func fakeKVServer(args []string) int {
	fs := flag.NewFlagSet("kvserver", flag.ContinueOnError)
	id := fs.String("id", "", "")
	host := fs.String("host", "127.0.0.1", "")
	port := fs.Int("port", 0, "")
	zkAddr := fs.String("zookeeper", "", "")
	natsURL := fs.String("nats", "", "")
	fs.Duration("session-timeout", time.Second, "")
	fs.String("election-path", "/election", "")
	fs.String("subject-prefix", "kv", "")
	fs.String("log-level", "info", "")
	exitCode := fs.Int("exit-code", 0, "")
	fail := fs.String("fail", "", "")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	fmt.Fprintf(os.Stderr, "fake kvserver %s starting with %q\n", *id, args)
	if *fail != "" {
		fmt.Fprintf(os.Stderr, "fatal: %s\n", *fail)
		return 3
	}
	l, err := net.Listen("tcp", net.JoinHostPort(*host, fmt.Sprint(*port)))
	if err != nil {
		fmt.Fprintf(os.Stderr, "listen: %v\n", err)
		return 1
	}
	reachable := func(addr string) error {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return err
		}
		return c.Close()
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		var errs []error
		for _, a := range strings.Split(*zkAddr, ",") {
			errs = append(errs, reachable(a))
		}
		errs = append(errs, reachable(strings.TrimPrefix(*natsURL, "nats://")))
		if err := errors.Join(errs...); err != nil {
			http.Error(w, err.Error(), http.StatusServiceUnavailable)
		}
	})
	go http.Serve(l, mux)
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	s := <-sig
	fmt.Fprintf(os.Stderr, "fake kvserver %s: got %v, exiting %d\n", *id, s, *exitCode)
	return *exitCode
}
