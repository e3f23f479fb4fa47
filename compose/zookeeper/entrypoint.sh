#!/bin/bash
# Entrypoint of zkv's ZooKeeper image. It keeps the contract of the official
# `zookeeper` image, so the compose file runs unchanged with either:
#
#   ZOO_MY_ID       this member's id, written to $ZOO_DATA_DIR/myid (default 1)
#   ZOO_SERVERS     space-separated server lines, e.g.
#                   "server.1=0.0.0.0:2888:3888;2181 server.2=zoo2:2888:3888;2181 ..."
#                   empty: a standalone server on port 2181
#   ZOO_TICK_TIME   tickTime in ms (default 2000); also ZOO_INIT_LIMIT,
#                   ZOO_SYNC_LIMIT, ZOO_MAX_CLIENT_CNXNS, ZOO_STANDALONE_ENABLED,
#                   ZOO_4LW_COMMANDS_WHITELIST, ZOO_CFG_EXTRA as in the official image
#   ZOO_CONF_DIR, ZOO_DATA_DIR, ZOO_DATA_LOG_DIR   (default /conf, /data, /datalog)
#   JVMFLAGS        extra flags for java
#
# Like the official image, zoo.cfg is written only when it does not exist yet
# (a restarted container keeps its configuration), and myid only when it is
# missing. With no arguments, or with the official image's command
# "zkServer.sh start-foreground", it runs ZooKeeper in the foreground as PID 1's
# exec; any other command is run as given.
set -euo pipefail

: "${ZOO_CONF_DIR:=/conf}"
: "${ZOO_DATA_DIR:=/data}"
: "${ZOO_DATA_LOG_DIR:=/datalog}"
: "${ZOO_TICK_TIME:=2000}"
: "${ZOO_INIT_LIMIT:=5}"
: "${ZOO_SYNC_LIMIT:=2}"
: "${ZOO_MAX_CLIENT_CNXNS:=60}"
: "${ZOO_STANDALONE_ENABLED:=true}"
: "${ZOO_4LW_COMMANDS_WHITELIST:=srvr,ruok,mntr,stat}"
: "${ZOO_SERVERS:=}"
: "${ZOO_CFG_EXTRA:=}"
: "${JVMFLAGS:=-Xmx256m -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -XX:-UsePerfData}"

mkdir -p "$ZOO_CONF_DIR" "$ZOO_DATA_DIR" "$ZOO_DATA_LOG_DIR"
cfg="$ZOO_CONF_DIR/zoo.cfg"
if [ ! -f "$cfg" ]; then
  {
    echo "dataDir=$ZOO_DATA_DIR"
    echo "dataLogDir=$ZOO_DATA_LOG_DIR"
    echo "tickTime=$ZOO_TICK_TIME"
    echo "initLimit=$ZOO_INIT_LIMIT"
    echo "syncLimit=$ZOO_SYNC_LIMIT"
    echo "maxClientCnxns=$ZOO_MAX_CLIENT_CNXNS"
    echo "admin.enableServer=false"
    echo "4lw.commands.whitelist=$ZOO_4LW_COMMANDS_WHITELIST"
    echo "preAllocSize=1024"
    echo "standaloneEnabled=$ZOO_STANDALONE_ENABLED"
    if [ -z "$ZOO_SERVERS" ]; then
      echo "clientPort=2181"
    else
      for server in $ZOO_SERVERS; do
        echo "$server"
      done
    fi
    for extra in $ZOO_CFG_EXTRA; do
      echo "$extra"
    done
  } >"$cfg"
fi
if [ ! -f "$ZOO_DATA_DIR/myid" ]; then
  echo "${ZOO_MY_ID:-1}" >"$ZOO_DATA_DIR/myid"
fi

if [ "$#" -eq 0 ] || [ "$1" = "zkServer.sh" ]; then
  echo "zookeeper: id ${ZOO_MY_ID:-1}, config $cfg:" >&2
  sed 's/^/  /' "$cfg" >&2
  # shellcheck disable=SC2086 # JVMFLAGS is a list of flags
  exec java $JVMFLAGS \
    -Dzookeeper.admin.enableServer=false \
    -Dorg.slf4j.simpleLogger.showDateTime=true \
    -Dorg.slf4j.simpleLogger.dateTimeFormat=HH:mm:ss.SSS \
    -cp /usr/share/java/zookeeper.jar:/usr/share/java/slf4j-simple.jar \
    org.apache.zookeeper.server.quorum.QuorumPeerMain "$cfg"
fi
exec "$@"
