# Benchmarks (included by the Makefile). See docs/benchmarks/.
#
#   make bench        reruns the whole study and rewrites docs/benchmarks
#                     (about 45 minutes; needs ZooKeeper like `make test`)
#   make bench-kv     only the kv study (about 8 minutes on 2 cores: 18
#                     operations at 1, 16 and 64 clients in both zkv modes,
#                     then 1M keys loaded for the memory per key)
#   make bench-durable  only the durability study (about 6 minutes: writes
#                     with --fsync always/interval beside JetStream syncing
#                     every write, a restart on 1M keys, a catch-up)
#   make bench-quick  a smoke run of well under a minute per study; writes to
#                     a temporary directory and leaves docs/benchmarks alone

GO        ?= go
BIN       ?= bin
BENCH_OUT ?= docs/benchmarks
BENCH_CMD  = $(BIN)/testdriver bench
BENCH_KV   = --kvserver $(BIN)/kvserver
# Runs per election setting; the session-timeout sweep uses BENCH_SWEEP_RUNS.
BENCH_RUNS       ?= 30
BENCH_SWEEP_RUNS ?= 15

.PHONY: bench bench-quick bench-bin bench-election bench-kv bench-catchup bench-durable bench-go

bench-bin:
	$(GO) build -o $(BIN)/ ./cmd/kvserver ./cmd/testdriver

bench: bench-bin bench-kv bench-election bench-catchup bench-durable bench-go

# BENCH_KV_FLAGS adds flags, e.g. BENCH_KV_FLAGS='--mem-keys 100000'.
BENCH_KV_FLAGS ?=

bench-kv: bench-bin
	$(BENCH_CMD) kv $(BENCH_KV) --out $(BENCH_OUT) $(BENCH_KV_FLAGS)

# Fast failover (kvserver --fast-failover) on, then SIGKILL with it off on
# a cluster of its own, then the session-timeout sweep with both.
bench-election: bench-bin
	$(BENCH_CMD) election $(BENCH_KV) --out $(BENCH_OUT) --runs $(BENCH_RUNS) \
		--zk standalone,ensemble,remote --stop sigterm,sigkill,pause --session-timeout 2s --fast-failover on
	$(BENCH_CMD) election $(BENCH_KV) --out $(BENCH_OUT) --append --runs $(BENCH_RUNS) \
		--zk standalone,ensemble,remote --stop sigkill --session-timeout 2s --fast-failover off
	$(BENCH_CMD) election $(BENCH_KV) --out $(BENCH_OUT) --append --runs $(BENCH_SWEEP_RUNS) \
		--zk standalone --stop sigkill --session-timeout 1s,4s --fast-failover on,off

# An empty follower catching up on 1M keys (about 2 minutes, most of it loading).
bench-catchup: bench-bin
	$(BENCH_CMD) catchup $(BENCH_KV) --out $(BENCH_OUT)

# Durability: writes with --fsync always and interval beside JetStream KV
# R1/R3 with sync_interval always, restart-to-ready on 1M keys, catch-up
# after 10 s away under write load. BENCH_DURABLE_FLAGS adds flags.
BENCH_DURABLE_FLAGS ?=

bench-durable: bench-bin
	$(BENCH_CMD) durable $(BENCH_KV) --out $(BENCH_OUT) $(BENCH_DURABLE_FLAGS)

# Go micro-benchmarks of the store and the codec, in benchstat's format.
bench-go:
	$(GO) test -run '^$$' -bench . -benchmem -count 6 -benchtime 200ms ./store ./bus \
		| tee $(BENCH_OUT)/data/go-bench.txt

bench-quick: bench-bin
	$(BENCH_CMD) kv $(BENCH_KV) --quick --quiet
	$(BENCH_CMD) election $(BENCH_KV) --quick --quiet
	$(BENCH_CMD) catchup $(BENCH_KV) --quick --quiet
	$(BENCH_CMD) durable $(BENCH_KV) --quick --quiet
	$(GO) test -run '^$$' -bench . -benchtime 1x ./store ./bus >/dev/null
