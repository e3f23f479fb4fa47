# zkv: a replicated key-value store with a ZooKeeper-elected leader and
# NATS replication. `make demo` runs the three scenarios on a local
# cluster; `make test` runs vet and the race-enabled tests.

GO      ?= go
BIN     ?= bin
export CGO_ENABLED ?= 0

.PHONY: all build demo cluster test vet fmt fuzz clean zookeeper

all: build

# build says what it builds and how long it took: the first build of a
# fresh clone downloads and compiles every module, a minute or more.
build:
	@mkdir -p $(BIN)
	@echo "building kvserver, kvctl and testdriver (./cmd/...) and nats-server into $(BIN)/ (the first build fetches and compiles the modules: a minute or more)"
	@start=$$(date +%s) && \
	$(GO) build -o $(BIN)/ ./cmd/... && \
	$(GO) build -o $(BIN)/nats-server github.com/nats-io/nats-server/v2 && \
	echo "built $(BIN)/kvserver $(BIN)/kvctl $(BIN)/testdriver $(BIN)/nats-server in $$(( $$(date +%s) - start ))s"

zookeeper:
	@scripts/ensure-zookeeper.sh

## demo: a local 3-server cluster runs the three scenarios, step by step.
demo: zookeeper build
	$(BIN)/testdriver run

## cluster: a local 3-server cluster that stays up until Ctrl-C.
cluster: zookeeper build
	$(BIN)/testdriver up

## test: go vet and the race-enabled unit and integration tests.
test: zookeeper vet
	CGO_ENABLED=1 $(GO) test -race -count=1 -p 1 -timeout 15m ./...

vet:
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || { echo "gofmt needed:"; gofmt -l .; exit 1; }

fmt:
	gofmt -w .

## fuzz: run every fuzz target for FUZZTIME each.
FUZZTIME ?= 30s
fuzz:
	@for t in $$($(GO) test -list 'Fuzz.*' ./bus | grep ^Fuzz); do \
		echo "== $$t"; $(GO) test -run '^$$' -fuzz "^$$t$$" -fuzztime $(FUZZTIME) ./bus || exit 1; done

clean:
	rm -rf $(BIN)

# docker compose targets: images, compose-up, compose-down, compose-test.
-include compose/compose.mk

# benchmark targets: bench, bench-quick.
-include bench.mk

# fault suite targets: chaos, chaos-quick.
-include chaos.mk
