#!/usr/bin/env bash
# A private certificate authority and a PostgreSQL server certificate signed by it, for TLS
# between the services and PostgreSQL with sslmode=verify-full (the compose stack uses
# deploy/compose/tls). Keeps files that exist: delete the directory to start over.
#
#   deploy/scripts/db-certs.sh [DIR] [HOSTNAME...]     # defaults: deploy/compose/tls postgres
#
# DIR gets ca.pem (give it to clients: sslrootcert=…), ca.key (keep it offline once you are
# done), server.crt and server.key (PostgreSQL's ssl_cert_file and ssl_key_file). The
# server certificate names every HOSTNAME (DNS names or IP addresses): clients connect by
# one of them. Needs openssl.
set -euo pipefail
dir="${1:-deploy/compose/tls}"
shift || true
names=("$@")
[ ${#names[@]} -gt 0 ] || names=(postgres)

mkdir -p "$dir"
cd "$dir"
umask 077
if [ ! -f ca.pem ]; then
  openssl req -x509 -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout ca.key -out ca.pem -days 3650 -subj "/CN=threesigma database CA" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" \
    2>/dev/null
  chmod 0644 ca.pem
  echo "made $dir/ca.pem"
fi
if [ ! -f server.crt ]; then
  san=""
  for name in "${names[@]}"; do
    if [[ "$name" =~ ^[0-9.]+$ || "$name" == *:* ]]; then kind=IP; else kind=DNS; fi
    san="${san:+$san,}$kind:$name"
  done
  openssl req -new -nodes -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 \
    -keyout server.key -out server.csr -subj "/CN=${names[0]}" 2>/dev/null
  openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial \
    -out server.crt -days 825 2>/dev/null \
    -extfile <(printf 'subjectAltName=%s\nbasicConstraints=critical,CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n' "$san")
  rm -f server.csr ca.srl
  chmod 0644 server.crt
  echo "made $dir/server.crt for $san"
fi
