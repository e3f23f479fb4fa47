#!/bin/sh
# secure-setup.sh [DIR]: make the files of compose/secure.yml in DIR
# (default compose/secrets, which git ignores): a CA made now, a server
# certificate for n1, n2, n3, localhost and 127.0.0.1 signed by it, an
# admin password, a reader token, the auth file with both users, and the
# NATS passwords of the servers' and the clients' users.
# Nothing here is committed; run it again to replace everything.
#
# Needs openssl and kvctl (KVCTL, default bin/kvctl from `make build`).
set -eu

here=$(cd "$(dirname "$0")" && pwd)
dir=${1:-$here/secrets}
kvctl=${KVCTL:-bin/kvctl}
case $kvctl in /*) ;; */*) kvctl=$(pwd)/$kvctl ;; esac
command -v openssl >/dev/null || { echo "secure-setup: openssl is needed" >&2; exit 1; }
[ -x "$kvctl" ] || command -v "$kvctl" >/dev/null || { echo "secure-setup: no kvctl at $kvctl (make build, or set KVCTL)" >&2; exit 1; }

mkdir -p "$dir"
cd "$dir"
umask 077
ec="-newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes"
# shellcheck disable=SC2086 # $ec is several words on purpose
openssl req -x509 $ec -days 30 -subj "/CN=zkv compose CA" -keyout ca-key.pem -out ca.pem 2>/dev/null
# shellcheck disable=SC2086
openssl req $ec -subj "/CN=zkv" -keyout server-key.pem -out server.csr 2>/dev/null
printf 'subjectAltName=DNS:n1,DNS:n2,DNS:n3,DNS:localhost,IP:127.0.0.1\nextendedKeyUsage=serverAuth\n' >server.ext
openssl x509 -req -in server.csr -CA ca.pem -CAkey ca-key.pem -CAcreateserial -days 30 -extfile server.ext -out server.pem 2>/dev/null
rm -f server.csr server.ext ca.srl

openssl rand -hex 16 | tr -d '\n' >nats-server.password
openssl rand -hex 16 | tr -d '\n' >nats-client.password
# nats-server reads both passwords from its environment (nats/zkv.conf);
# the kvservers log in as zkv-server.
printf 'ZKV_NATS_SERVER_PASSWORD=%s\nZKV_NATS_CLIENT_PASSWORD=%s\n' "$(cat nats-server.password)" "$(cat nats-client.password)" >nats-server.env
printf 'ZKV_NATS_USER=zkv-server\nZKV_NATS_PASSWORD=%s\n' "$(cat nats-server.password)" >kvserver-nats.env

openssl rand -hex 16 | tr -d '\n' >admin.password
openssl rand -hex 24 | tr -d '\n' >reader.token
"$kvctl" auth hash --role readwrite admin <admin.password >users
"$kvctl" auth hash --token --role read reader <reader.token >>users

# The kvserver image runs as 65534 (nobody): it must read the key and the
# auth file. As root, give them to it; otherwise make them readable.
if [ "$(id -u)" = 0 ]; then
	chown 65534:65534 server-key.pem users
else
	chmod 0644 server-key.pem users
fi
chmod 0644 ca.pem server.pem
chmod 0755 .
echo "secure-setup: wrote $dir: ca.pem, server.pem, server-key.pem, users, admin.password, reader.token, nats-*.password, nats-server.env, kvserver-nats.env"
