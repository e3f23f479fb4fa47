#!/usr/bin/env bash
# Makes sure ZooKeeper (Debian's `zookeeper` package) and Java are installed,
# installing them with apt-get when run as root on Debian or Ubuntu.
set -euo pipefail
jar=${ZKV_ZOOKEEPER_JAR:-/usr/share/java/zookeeper.jar}
if [ -f "$jar" ] && command -v "${ZKV_JAVA:-java}" >/dev/null 2>&1; then
  exit 0
fi
echo "ZooKeeper is not installed ($jar is missing)."
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "Installing Debian's zookeeper package..."
  apt-get update -q
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q zookeeper
  exit 0
fi
cat >&2 <<'MSG'
Install it and try again:
  sudo apt-get update && sudo apt-get install -y zookeeper
(or point ZKV_ZOOKEEPER_JAR at a zookeeper.jar and ZKV_JAVA at java 11+)
MSG
exit 1
