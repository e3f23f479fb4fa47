# Fault suite (included by the Makefile). See docs/reliability.md.
#
#   make chaos        every case CHAOS_RUNS times, then every fuzz target of
#                     ./bus for CHAOS_FUZZTIME; rewrites docs/reliability.md
#                     (about 25 minutes; needs ZooKeeper like `make test`)
#   make chaos-quick  every case once with shorter phases, for CI (about 3
#                     minutes); the report goes to the log directory
#
# Both exit non-zero on any violation. Logs, histories and results go to
# logs/chaos/<timestamp>/. CHAOS_ARGS adds flags, e.g.
# CHAOS_ARGS='--case pause-leader'.

GO             ?= go
CHAOS_RUNS     ?= 5
CHAOS_FUZZTIME ?= 60s
CHAOS_ARGS     ?=
BIN            ?= bin
CHAOS           = $(BIN)/testdriver chaos

.PHONY: chaos chaos-quick

chaos: zookeeper build
	$(CHAOS) --runs $(CHAOS_RUNS) --fuzz-time $(CHAOS_FUZZTIME) --out docs/reliability.md $(CHAOS_ARGS)

chaos-quick: zookeeper build
	$(CHAOS) --quick $(CHAOS_ARGS)
