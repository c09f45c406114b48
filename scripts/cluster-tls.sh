#!/usr/bin/env bash
# Turns TLS on in a running embedded cluster, with a fresh self-signed certificate for
# the name "localhost" (not for 127.0.0.1, so that verify-full's name check can be seen
# refusing an address the certificate does not name). Prints the certificate's path: the
# sslrootcert of a verify-full URL to localhost.
#
#   scripts/cluster-tls.sh <ATRIUM_DATA_DIR>
set -euo pipefail
data="$1"
cluster="$data/postgres"
cert="$data/tls/server.crt"
key="$cluster/server.key"
mkdir -p "$data/tls"
openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj "/CN=localhost" -addext "subjectAltName=DNS:localhost" \
  -keyout "$key" -out "$cert" 2>/dev/null
cp "$cert" "$cluster/server.crt"
chmod 600 "$key"
chmod 644 "$cert"
# The cluster belongs to the postgres OS user when this runs as root.
owner="$(stat -c %U "$cluster")"
chown "$owner" "$key" "$cluster/server.crt"

port="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["port"])' "$data/database.json")"
password="$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["superuser_password"])' "$data/database.json")"
PGPASSWORD="$password" psql -q -X -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U atrium_superuser -d postgres >/dev/null <<'SQL'
ALTER SYSTEM SET ssl_cert_file = 'server.crt';
ALTER SYSTEM SET ssl_key_file = 'server.key';
ALTER SYSTEM SET ssl = on;
SELECT pg_reload_conf();
SQL
# The reload is asynchronous: wait until a new connection is offered TLS.
for _ in $(seq 1 50); do
  if PGPASSWORD="$password" PGSSLMODE=require psql -q -X -t -h 127.0.0.1 -p "$port" -U atrium_superuser -d postgres \
    -c 'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()' 2>/dev/null | grep -q t; then
    echo "$cert"
    exit 0
  fi
  sleep 0.1
done
echo "TLS did not come up on the test cluster" >&2
exit 1
