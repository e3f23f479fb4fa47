#!/usr/bin/env bash
# Builds every image compose/docker-compose.yml uses, offline: nothing is
# pulled from a registry.
#
#   zkv/kvserver, zkv/kvctl                  static Go binaries of this module, FROM scratch
#   zkv/testdriver                           testdriver (run --cluster compose) and kvctl, FROM scratch
#   nats:2                                   nats-server built from its Go module, FROM scratch
#   zookeeper:3.8                            Debian's zookeeper package on a debootstrap root
#
# The images get the names the compose file uses by default, so `docker-compose
# up` finds them. Each name can be changed with the same variable the compose
# file reads (ZKV_KVSERVER_IMAGE, ZKV_NATS_IMAGE, ZKV_ZOOKEEPER_IMAGE, ...).
#
# The ZooKeeper base (debootstrap + docker import, about a minute and
# ~300 MB) is made only when the image ZKV_ZOOKEEPER_BASE_IMAGE is missing;
# ZKV_REBUILD_BASE=1 makes it again. DEBIAN_MIRROR is the mirror it
# downloads from; by default the one of this machine's apt sources.
set -euo pipefail
cd "$(dirname "$0")/.."

GO=${GO:-go}
KVSERVER_IMAGE=${ZKV_KVSERVER_IMAGE:-zkv/kvserver:latest}
KVCTL_IMAGE=${ZKV_KVCTL_IMAGE:-zkv/kvctl:latest}
TESTDRIVER_IMAGE=${ZKV_TESTDRIVER_IMAGE:-zkv/testdriver:latest}
NATS_IMAGE=${ZKV_NATS_IMAGE:-nats:2}
ZOOKEEPER_IMAGE=${ZKV_ZOOKEEPER_IMAGE:-zookeeper:3.8}
ZOOKEEPER_BASE_IMAGE=${ZKV_ZOOKEEPER_BASE_IMAGE:-zkv/zookeeper-base:bookworm}
SUITE=${DEBIAN_SUITE:-bookworm}
BUILD_DIR=${ZKV_IMAGE_BUILD_DIR:-compose/.build}

# The legacy builder needs no buildx plugin and works with any engine.
export DOCKER_BUILDKIT=${DOCKER_BUILDKIT:-0}

log() { printf '== [%3d s] %s\n' "$SECONDS" "$*" >&2; }
die() { printf 'build-images: %s\n' "$*" >&2; exit 1; }

command -v docker >/dev/null || die "docker is not installed"
docker info >/dev/null 2>&1 || die "the Docker Engine does not answer (is dockerd running, may you use its socket?)"

# debian_mirror prints the first Debian mirror of this machine's apt sources
# that serves $SUITE (one-line .list files and deb822 .sources files).
debian_mirror() {
  local f
  for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '$1 == "deb" {
        i = 2; if ($i ~ /^\[/) { while ($i !~ /\]$/) i++; i++ }
        if ($(i+1) == suite) { print $i; exit }
      }' "$f"
  done
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      function flush() { if (types ~ /(^| )deb( |$)/ && (" " suites " ") ~ (" " suite " ") && uri != "") { print uri; found = 1 } types = ""; suites = ""; uri = "" }
      /^[ \t]*$/ { flush(); if (found) exit; next }
      /^Types:/ { sub(/^Types:[ \t]*/, ""); types = $0 }
      /^Suites:/ { sub(/^Suites:[ \t]*/, ""); suites = $0 }
      /^URIs:/ { uri = $2 }
      END { if (!found) flush() }' "$f"
  done
}

# image_exists tells whether the engine has image $1.
image_exists() { docker image inspect "$1" >/dev/null 2>&1; }

build_go_images() {
  local bin="$BUILD_DIR/bin"
  mkdir -p "$bin"
  local cmds=(./cmd/kvserver ./cmd/kvctl ./cmd/testdriver)
  local driver=(testdriver kvctl)
  log "go build (static): ${cmds[*]} nats-server"
  CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$bin/" "${cmds[@]}"
  CGO_ENABLED=0 "$GO" build -trimpath -ldflags='-s -w' -o "$bin/nats-server" github.com/nats-io/nats-server/v2

  build_scratch "$KVSERVER_IMAGE" Dockerfile.kvserver kvserver
  build_scratch "$KVCTL_IMAGE" Dockerfile.kvctl kvctl
  build_scratch "$NATS_IMAGE" Dockerfile.nats nats-server
  build_scratch "$TESTDRIVER_IMAGE" Dockerfile.testdriver "${driver[@]}"
}

# build_scratch IMAGE DOCKERFILE BINARY... builds IMAGE from a context that
# holds only the Dockerfile and the binaries (in bin/), so nothing else of
# the tree is sent to the engine.
build_scratch() {
  local image=$1 dockerfile=$2
  shift 2
  local ctx="$BUILD_DIR/ctx/${dockerfile#Dockerfile.}"
  rm -rf "$ctx"
  # data/: an empty directory the kvserver image owns as /data (its
  # volume then belongs to the server's user).
  mkdir -p "$ctx/bin" "$ctx/data"
  cp "compose/$dockerfile" "$ctx/Dockerfile"
  local b
  for b in "$@"; do cp "$BUILD_DIR/bin/$b" "$ctx/bin/"; done
  docker_build "$image" "$ctx"
}

# docker_build IMAGE CONTEXT [ARGS...] runs docker build quietly, printing
# its output only when it fails.
docker_build() {
  local image=$1 ctx=$2
  shift 2
  log "docker build $image"
  local out before after
  before=$(docker image inspect -f '{{.Id}}' "$image" 2>/dev/null || true)
  if ! out=$(docker build -q "$@" -t "$image" "$ctx" 2>&1); then
    printf '%s\n' "$out" >&2
    die "docker build $image failed"
  fi
  # The image this one replaces would stay behind untagged: remove it
  # (docker refuses while a container still uses it, which is fine).
  after=$(docker image inspect -f '{{.Id}}' "$image")
  if [ -n "$before" ] && [ "$before" != "$after" ]; then
    docker rmi "$before" >/dev/null 2>&1 || true
  fi
}

build_zookeeper_base() {
  if image_exists "$ZOOKEEPER_BASE_IMAGE" && [ "${ZKV_REBUILD_BASE:-0}" != 1 ]; then
    log "$ZOOKEEPER_BASE_IMAGE exists (cached; ZKV_REBUILD_BASE=1 makes it again)"
    return
  fi
  local mirror=${DEBIAN_MIRROR:-}
  if [ -z "$mirror" ]; then
    mirror=$(debian_mirror | head -n 1)
  fi
  mirror=${mirror:-http://deb.debian.org/debian}
  if ! command -v debootstrap >/dev/null; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
      log "installing debootstrap"
      DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null ||
        { apt-get update -q >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q debootstrap >/dev/null; }
    else
      die "debootstrap is missing: install it (apt-get install debootstrap) and run again"
    fi
  fi
  [ "$(id -u)" = 0 ] || die "debootstrap needs root to make the ZooKeeper base image"
  local root
  root=$(mktemp -d "${TMPDIR:-/tmp}/zkv-rootfs.XXXXXX")
  # shellcheck disable=SC2064 # expand $root now
  trap "rm -rf '$root'" EXIT
  log "debootstrap $SUITE from $mirror (openjdk-17-jre-headless, zookeeper)"
  if ! debootstrap --variant=minbase --include=openjdk-17-jre-headless,zookeeper \
    "$SUITE" "$root" "$mirror" >"$root.log" 2>&1; then
    tail -n 30 "$root.log" >&2
    rm -f "$root.log"
    die "debootstrap failed (DEBIAN_MIRROR=$mirror)"
  fi
  rm -f "$root.log"
  # What an image does not need: package caches, lists, documentation.
  rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/* \
    "$root"/usr/share/doc "$root"/usr/share/man "$root"/usr/share/info "$root"/usr/share/locale
  [ -f "$root/usr/share/java/zookeeper.jar" ] || die "debootstrap made no /usr/share/java/zookeeper.jar"
  log "docker import $ZOOKEEPER_BASE_IMAGE"
  tar -C "$root" -c . | docker import \
    -c 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    -m "debootstrap --variant=minbase $SUITE + openjdk-17-jre-headless, zookeeper" \
    - "$ZOOKEEPER_BASE_IMAGE" >/dev/null
  rm -rf "$root"
  trap - EXIT
}

build_zookeeper_image() {
  local ctx="$BUILD_DIR/ctx/zookeeper"
  rm -rf "$ctx"
  mkdir -p "$ctx"
  cp compose/Dockerfile.zookeeper "$ctx/Dockerfile"
  cp compose/zookeeper/entrypoint.sh "$ctx/entrypoint.sh"
  docker_build "$ZOOKEEPER_IMAGE" "$ctx" --build-arg "BASE=$ZOOKEEPER_BASE_IMAGE"
}

SECONDS=0
build_go_images
build_zookeeper_base
build_zookeeper_image
log "images ready:"
docker image ls --format '   {{.Repository}}:{{.Tag}}  {{.Size}}' |
  grep -F -e "$KVSERVER_IMAGE" -e "$KVCTL_IMAGE" -e "$TESTDRIVER_IMAGE" -e "$NATS_IMAGE" \
    -e "$ZOOKEEPER_IMAGE" -e "$ZOOKEEPER_BASE_IMAGE" >&2 || true
