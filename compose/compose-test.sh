#!/usr/bin/env bash
# The end-to-end test of the docker compose deployment (make compose-test):
#
#   1. brings compose/docker-compose.yml up under a new project name, with
#      every published port picked by docker (so nothing on the host clashes);
#   2. waits until each ZooKeeper member answers srvr as leader or follower
#      and each kvserver answers /readyz with 200 on its published port;
#   3. runs `testdriver run --cluster compose` with the scenarios add-read,
#      leader-election and stale-read, where the leader's container is
#      killed (docker kill) and started again, and zookeeper-loss (docker
#      kill of the ZooKeeper leader, then of the kvserver leader: the two
#      remaining servers must elect a leader and take writes);
#   4. saves every container's log (docker logs) to logs/<timestamp>/compose/
#      and removes the project (down -v), also when a step fails or on Ctrl-C.
#
# It exits non-zero when anything fails. The images must exist (make images).
#
#   compose/compose-test.sh        the test
#   compose/compose-test.sh up     bring the project up (COMPOSE_PROJECT_NAME,
#                                  default zkv, default ports) and wait for it
#   compose/compose-test.sh down   remove that project (down -v)
#
# Environment: COMPOSE (the compose command; default `docker compose` when
# it answers, else docker-compose), ZKV_DRIVER=service to run the driver
# inside the compose network (compose/driver.yml) instead of on the host,
# ZKV_SCENARIO (the scenarios, default all four), ZKV_WAIT_TIMEOUT (seconds
# to wait for health, default 180), and the image variables of the compose
# file (ZKV_KVSERVER_IMAGE, ...).
set -euo pipefail
cd "$(dirname "$0")/.."

FILE=compose/docker-compose.yml
DRIVER_FILE=compose/driver.yml
WAIT_TIMEOUT=${ZKV_WAIT_TIMEOUT:-180}
SCENARIOS=${ZKV_SCENARIO:-add-read,leader-election,stale-read,zookeeper-loss}
ZOOKEEPER_SERVICES=(zoo1 zoo2 zoo3)
NODE_SERVICES=(n1 n2 n3)

say() { printf '== %s\n' "$*"; }
die() { printf 'compose-test: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker Engine does not answer (docker info failed)"
if [ -n "${COMPOSE:-}" ]; then
  read -r -a COMPOSE_CMD <<<"$COMPOSE"
elif docker compose version >/dev/null 2>&1; then
  COMPOSE_CMD=(docker compose)
elif command -v docker-compose >/dev/null; then
  COMPOSE_CMD=(docker-compose)
else
  die "neither 'docker compose' nor docker-compose is installed"
fi

# compose runs the compose command on the project's file.
compose() { "${COMPOSE_CMD[@]}" -p "$PROJECT" -f "$FILE" "$@"; }

# container SERVICE prints the ID of the service's container in the project
# (docker's own CLI: much faster than asking compose in a polling loop).
container() {
  docker ps -aq --filter "label=com.docker.compose.project=$PROJECT" \
    --filter "label=com.docker.compose.service=$1" | head -n 1
}

# published SERVICE PORT prints host:port that docker published for the
# service's container port, with 127.0.0.1 for an unspecified address.
published() {
  local id a
  id=$(container "$1")
  [ -n "$id" ] || return 1
  a=$(docker port "$id" "$2/tcp" 2>/dev/null | head -n 1)
  [ -n "$a" ] || return 1
  a=${a/0.0.0.0:/127.0.0.1:}
  a=${a/\[::\]:/127.0.0.1:}
  printf '%s\n' "$a"
}

# zk_mode HOST:PORT prints the mode srvr reports (leader, follower,
# standalone), or fails.
zk_mode() {
  local host=${1%:*} port=${1##*:} mode
  # shellcheck disable=SC2016 # expanded by the inner bash
  mode=$(timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf srvr >&3 && cat <&3' "$host" "$port" 2>/dev/null |
    sed -n 's/^Mode: //p') || return 1
  [ -n "$mode" ] && printf '%s\n' "$mode"
}

# http_status HOST:PORT PATH prints the HTTP status code of a GET.
http_status() {
  local host=${1%:*} port=${1##*:}
  # shellcheck disable=SC2016 # expanded by the inner bash
  timeout 3 bash -c 'exec 3<>"/dev/tcp/$0/$1" && printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$2" "$0" >&3 && head -n 1 <&3' \
    "$host" "$port" "$2" 2>/dev/null | awk '{print $2}'
}

# wait_healthy waits until every ZooKeeper member is leader or follower and
# every kvserver answers /readyz with 200, printing what it found.
wait_healthy() {
  local deadline=$((SECONDS + WAIT_TIMEOUT)) svc addr mode code pending
  while :; do
    pending=()
    for svc in "${ZOOKEEPER_SERVICES[@]}"; do
      addr=$(published "$svc" 2181) || { pending+=("$svc:unpublished"); continue; }
      mode=$(zk_mode "$addr") || mode=""
      case "$mode" in
        leader | follower) ;;
        *) pending+=("$svc:${mode:-no answer}") ;;
      esac
    done
    for svc in "${NODE_SERVICES[@]}"; do
      addr=$(published "$svc" "$(node_port "$svc")") || { pending+=("$svc:unpublished"); continue; }
      code=$(http_status "$addr" /readyz) || code=""
      [ "$code" = 200 ] || pending+=("$svc:readyz ${code:-no answer}")
    done
    [ "${#pending[@]}" = 0 ] && break
    if [ "$SECONDS" -ge "$deadline" ]; then
      compose ps >&2 || true
      die "not healthy after ${WAIT_TIMEOUT}s: ${pending[*]}"
    fi
    sleep 1
  done
  for svc in "${ZOOKEEPER_SERVICES[@]}"; do
    addr=$(published "$svc" 2181)
    printf '   %-5s ZooKeeper %-9s on %s\n' "$svc" "$(zk_mode "$addr")" "$addr"
  done
  for svc in "${NODE_SERVICES[@]}"; do
    printf '   %-5s kvserver  ready     on http://%s\n' "$svc" "$(published "$svc" "$(node_port "$svc")")"
  done
  printf '   nats  NATS                on nats://%s\n' "$(published nats 4222)"
}

# node_port SERVICE is the container port of a kvserver (ZKV_PORT of n1..n3).
node_port() { echo $((8000 + ${1#n})); }

# require_images fails unless every image of the compose file exists.
require_images() {
  local img missing=()
  for img in $(compose config | awk '$1 == "image:" {print $2}' | tr -d "'\"" | sort -u); do
    docker image inspect "$img" >/dev/null 2>&1 || missing+=("$img")
  done
  [ "${#missing[@]}" = 0 ] || die "missing images: ${missing[*]} (run: make images)"
}

# save_logs DIR writes each container's log of the project to DIR/<service>.log.
save_logs() {
  local dir=$1 name svc
  mkdir -p "$dir"
  docker ps -a --filter "label=com.docker.compose.project=$PROJECT" \
    --format '{{.Names}} {{.Label "com.docker.compose.service"}}' |
    while read -r name svc; do
      docker logs -t "$name" >"$dir/${svc:-$name}.log" 2>&1 || true
    done
}

cmd_up() {
  PROJECT=${COMPOSE_PROJECT_NAME:-zkv}
  require_images
  say "compose project $PROJECT: up"
  compose up -d
  say "waiting for ZooKeeper (srvr) and the kvservers (/readyz)"
  wait_healthy
  cat <<EOF
== up. Try:
   kvctl --nats nats://$(published nats 4222) status
   docker kill \$(${COMPOSE_CMD[*]} -p $PROJECT -f $FILE ps -q n1)
   ${COMPOSE_CMD[*]} -p $PROJECT -f $FILE -f $DRIVER_FILE run --rm driver
   make compose-down COMPOSE_PROJECT=$PROJECT
EOF
}

cmd_down() {
  PROJECT=${COMPOSE_PROJECT_NAME:-zkv}
  compose -f "$DRIVER_FILE" down -v --remove-orphans
}

cmd_test() {
  local begin=$SECONDS stamp
  stamp=$(date +%Y%m%d-%H%M%S)
  LOG_DIR=logs/$stamp/compose
  PROJECT=zkvtest$(date +%s)$$
  mkdir -p "$LOG_DIR"
  require_images
  # Every published port is picked by docker: the test does not clash with
  # a project brought up by hand, nor with anything else on the host.
  export ZKV_ZOO1_PORT='' ZKV_ZOO2_PORT='' ZKV_ZOO3_PORT='' ZKV_NATS_PORT='' ZKV_N1_PORT='' ZKV_N2_PORT='' ZKV_N3_PORT=''
  trap cleanup EXIT
  trap 'exit 130' INT TERM

  say "compose project $PROJECT (${COMPOSE_CMD[*]}), logs in $LOG_DIR"
  compose up -d 2>&1 | tee "$LOG_DIR/up.log"
  say "waiting for ZooKeeper (srvr) and the kvservers (/readyz)"
  wait_healthy
  say "healthy after $((SECONDS - begin)) s"

  # The driver writes driver.log and summary.json next to the containers'
  # logs, which this script saves itself (also when the driver fails).
  local driver=compose/.build/bin/testdriver rc=0
  local args=(--scenario "$SCENARIOS" --run-log-dir "$LOG_DIR" --container-logs=false)
  case "${ZKV_DRIVER:-host}" in
    host)
      if [ ! -x "$driver" ]; then
        CGO_ENABLED=0 ${GO:-go} build -o "$driver" ./cmd/testdriver
      fi
      say "testdriver run --cluster compose on the host (docker kill through the Engine API)"
      "$driver" run --cluster compose --compose-project "$PROJECT" --compose-http published "${args[@]}" || rc=$?
      ;;
    service)
      say "testdriver run --cluster compose in the driver service, inside the compose network"
      compose -f "$DRIVER_FILE" run --rm driver "${args[@]}" || rc=$?
      ;;
    *) die "ZKV_DRIVER=$ZKV_DRIVER: want host or service" ;;
  esac
  if [ "$rc" != 0 ]; then
    say "FAIL: the driver exited with status $rc"
    exit "$rc"
  fi
  say "PASS: compose-test in $((SECONDS - begin)) s"
}

# cleanup saves the logs and removes the project, whatever happened.
cleanup() {
  local rc=$?
  trap - EXIT INT TERM
  say "saving container logs to $LOG_DIR"
  save_logs "$LOG_DIR"
  compose ps >"$LOG_DIR/ps.txt" 2>&1 || true
  say "removing compose project $PROJECT (down -v)"
  compose -f "$DRIVER_FILE" down -v --remove-orphans >"$LOG_DIR/down.log" 2>&1 ||
    { cat "$LOG_DIR/down.log" >&2; [ "$rc" != 0 ] || rc=1; }
  exit "$rc"
}

case "${1:-test}" in
  test) cmd_test ;;
  up) cmd_up ;;
  down) cmd_down ;;
  *) die "usage: $0 [test|up|down]" ;;
esac
