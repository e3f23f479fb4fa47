# docker compose targets, included by the Makefile. See compose/README.md.
#
#   make images          build every image of compose/docker-compose.yml offline
#   make compose-test    bring a fresh project up, run the scenarios with real
#                        container kills and a ZooKeeper member loss, tear down
#   make compose-up      bring the project $(COMPOSE_PROJECT) up and wait for it
#   make compose-driver  run the driver service inside that project's network
#   make compose-down    remove that project (containers, network, volumes)

# The Debian mirror debootstrap uses for the ZooKeeper base image; empty
# means the one of this machine's apt sources.
DEBIAN_MIRROR   ?=
COMPOSE_PROJECT ?= zkv
COMPOSE_FILES   := -f compose/docker-compose.yml -f compose/driver.yml
COMPOSE         ?= $(shell docker compose version >/dev/null 2>&1 && echo docker compose || echo docker-compose)

.PHONY: images compose-test compose-up compose-driver compose-down

## images: zkv/kvserver, zkv/kvctl, zkv/testdriver, nats and zookeeper images, built offline.
images:
	DEBIAN_MIRROR="$(DEBIAN_MIRROR)" GO="$(GO)" compose/build-images.sh

## compose-test: the scenarios against the compose deployment, with docker kill.
compose-test: images
	COMPOSE="$(COMPOSE)" compose/compose-test.sh test

compose-up: images
	COMPOSE="$(COMPOSE)" COMPOSE_PROJECT_NAME="$(COMPOSE_PROJECT)" compose/compose-test.sh up

compose-driver:
	$(COMPOSE) -p $(COMPOSE_PROJECT) $(COMPOSE_FILES) run --rm driver

compose-down:
	COMPOSE="$(COMPOSE)" COMPOSE_PROJECT_NAME="$(COMPOSE_PROJECT)" compose/compose-test.sh down
